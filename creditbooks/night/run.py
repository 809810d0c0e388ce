"""The nightly run: one business day's landing files in, one published batch out.

The stages run in the order of `ledger.domain.Stage`, the burn once per customer shard.
The command line runs them all in one transaction, so
a night is posted completely or not at all; Airflow runs each as its own task and
transaction (creditbooks/pipeline.py, dags/credit_ledger_nightly.py), and publishing last
keeps a half-run night out of every statement. A day is posted once:
running it again with the same files changes nothing ("unchanged"); with different
files it is refused as a conflict, never overwritten.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from creditbooks.actors import resolve_actor
from creditbooks.night.ingest import (
    BatchConflictError,
    LandingDay,
    StrictModeRejectionError,
    ingest,
    read_landing_day,
)
from creditbooks.night.posting import Night, open_night
from creditbooks.night.stages import run_stage, shard_stages
from intake.usage_buckets import DEFAULT_CHUNK_ROWS
from ledger.anchors import anchor_file, write_anchor
from ledger.domain import MAX_SHARDS, Stage, night_tasks
from ledger.locks import share_posting_lock
from ledger.money import format_micro_credits
from ledger.store import Store, read_frame
from rules.policy import Policy

__all__ = ["BatchConflictError", "NightOutcome", "StrictModeRejectionError", "run_night",
           "write_publish_anchor"]


@dataclass(frozen=True)
class DocumentSummary:
    document: str
    file_name: str
    rows_read: int
    accepted: int
    duplicates: int
    rejected: int


@dataclass(frozen=True)
class NightOutcome:
    business_date: date
    status: str  # posted | empty | unchanged
    batch_id: str
    entry_count: int
    documents: tuple[DocumentSummary, ...]
    uncovered_credits_micro: int

    def as_row(self) -> dict:
        totals = {"rows_read": 0, "accepted": 0, "duplicates": 0, "rejected": 0}
        for document in self.documents:
            totals["rows_read"] += document.rows_read
            totals["accepted"] += document.accepted
            totals["duplicates"] += document.duplicates
            totals["rejected"] += document.rejected
        return {"business_date": self.business_date.isoformat(), "status": self.status,
                "batch_id": self.batch_id, "entries": self.entry_count, **totals,
                "uncovered_credits": format_micro_credits(self.uncovered_credits_micro)}


def run_night(store: Store, policy: Policy, landing_root: Path, archive_root: Path,
              business_date: date, strict: bool = False,
              clock: Callable[[], datetime] = lambda: datetime.now(UTC),
              chunk_rows: int | None = DEFAULT_CHUNK_ROWS,
              anchors: Path | None = None, actor: str | None = None) -> NightOutcome:
    """Every stage of one night in one transaction (the command line's way), then, for a
    night that changed the books, its anchor (`write_publish_anchor`; `anchors`: the anchor
    file, else the default beside the archive).

    A usage file of more than `chunk_rows` rows is taken in that many rows at a time and
    burned in customer shards of about as many events: memory is bounded by the chunk,
    not the day, and the books are the same (intake/usage_buckets.py). None holds every
    file whole. actor: who runs it (else $CREDITBOOKS_ACTOR, else `os:` and the
    operating-system user: `creditbooks.actors`), recorded on the batch.
    """
    actor = resolve_actor(actor, "the nightly run", os_fallback=True)
    landing = read_landing_day(landing_root, business_date, chunk_rows, policy.usage_source,
                               purchase_source=policy.purchase_source)
    night = open_night(policy, archive_root, business_date, clock)
    try:
        with store.transaction() as connection:
            share_posting_lock(connection)  # before ingest chooses the posting period
            status = _run_stages(connection, night, landing, strict, chunk_rows, actor)
    except IntegrityError as error:
        raise BatchConflictError(
            f"business date {business_date} could not be posted: another run wrote it first "
            f"or a source id is already posted ({error.orig.__class__.__name__})"
        ) from None
    if status == "unchanged":
        return NightOutcome(business_date, status, night.batch_id, 0, (), 0)
    write_publish_anchor(store, business_date, archive_root, anchors)
    return _outcome(store, night, status)


def write_publish_anchor(store: Store, business_date: date, archive_root: Path,
                         anchors: Path | None = None) -> None:
    """After a night's publish commits, both chains' heads go outside the ledger: one line
    appended to the anchor file (`anchors`, else $CREDITBOOKS_ANCHORS, else beside the
    archive: ledger/anchors.py `anchor_file`). Every way of running a night calls this."""
    write_anchor(store, f"publish {business_date.isoformat()}", anchor_file(anchors, archive_root))


def _run_stages(connection: Connection, night: Night, landing: LandingDay, strict: bool,
                chunk_rows: int | None, actor: str) -> str:
    """The night's plan (`night_tasks`) in its order; returns the batch's status once
    published, or "unchanged" for a day already published from the same files."""
    found = ingest(connection, landing, night.day, night.policy, night.archive_root,
                   night.batch_id, strict, night.recorded_at, actor)
    if found is not None and found.is_published:
        return "unchanged"
    status = None
    for task in night_tasks(_shard_count(connection, night.batch_id, chunk_rows)):
        if task.stage is not Stage.INGEST:  # ran above: the shard count follows from it
            status = run_stage(connection, night, task.stage, task.shard, task.shard_count)
    return status  # publish's, the plan's last task


def _shard_count(connection: Connection, batch_id: str, chunk_rows: int | None) -> int:
    """A night left open (by Airflow) finishes with the shard count it started with; else
    one shard, or with `chunk_rows` enough for each to burn about that many events."""
    shards = shard_stages(connection, batch_id)
    if len(shards):
        return int(shards["shard_count"].iloc[0])
    if chunk_rows is None:
        return 1
    accepted = read_frame(connection, "SELECT COALESCE(SUM(rows_accepted), 0) AS n "
                          "FROM batch_files WHERE batch_id = :batch_id AND document = 'usage'",
                          batch_id=batch_id)["n"].iloc[0]
    return min(MAX_SHARDS, max(1, math.ceil(int(accepted) / chunk_rows)))


def _outcome(store: Store, night: Night, status: str) -> NightOutcome:
    with store.engine.connect() as connection:
        files = read_frame(connection, """
            SELECT document, file_name, rows_read, rows_accepted, rows_duplicate, rows_rejected
            FROM batch_files WHERE batch_id = :batch_id ORDER BY document
        """, batch_id=night.batch_id)
        counts = read_frame(connection, """
            SELECT (SELECT entry_count FROM batches WHERE batch_id = :batch_id) AS entries,
                   (SELECT COALESCE(SUM(credits_micro), 0) FROM uncovered_usage
                    WHERE batch_id = :batch_id) AS uncovered
        """, batch_id=night.batch_id).iloc[0]
    documents = tuple(DocumentSummary(row.document, row.file_name, int(row.rows_read),
                                      int(row.rows_accepted), int(row.rows_duplicate),
                                      int(row.rows_rejected))
                      for row in files.itertuples(index=False))
    return NightOutcome(night.day.business_date, status, night.batch_id, int(counts["entries"]),
                        documents, int(counts["uncovered"]))
