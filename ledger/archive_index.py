"""Which archive partition each batch wrote, and the SHA-256 of its bytes.

The archive on disk is evidence, and this index is how the ledger points to it: a night
records each partition it wrote in its own transaction, and every reader finds a
partition only through its row here. A file no row names (left by a run that failed or
was killed before it committed) is never read.

A partition's row count is tied to its batch's files: the rows its document accepted (for
the metering system's original file, every row read), so a partition with a row removed
is refused when a v0.1.0 archive is adopted and named by `verify --archive`. So are its
totals: the credits its rows sum to (usage, purchases, refunds) against the batch's
`credits_accepted_micro`, and a purchases partition's amounts by currency against the
batch's `amounts_accepted_json`, so that a row changed in place (the same count) is named.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import Connection, insert, text

from ledger import schema
from ledger.money import format_minor

# The documents whose accepted rows a night archives (the others are kept in tables only).
ARCHIVED_DOCUMENTS = ("usage", "purchases", "refunds", "adjustments")
# The rows of each archived document's partition, as its batch's files count them: the
# document's accepted rows, or, for a source's original file (`<document>_source`: a
# metering system's usage or a Stripe export, intake/sources.py archive_source_file),
# every row its file read.
_COUNTED_AS = {**{document: (document, "rows_accepted") for document in ARCHIVED_DOCUMENTS},
               **{f"{document}_source": (document, "rows_read")
                  for document in ("usage", "purchases", "refunds")}}


@dataclass(frozen=True)
class RecordedPartition:
    """A partition as the ledger recorded it: relative to the archive root."""

    batch_id: str
    document: str
    business_date: date
    relative_path: str
    sha256: str
    row_count: int


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def ledger_id(connection: Connection) -> str:
    """The ledger's identity, made by the first call on a ledger that has none yet."""
    known = connection.execute(text("SELECT ledger_id FROM ledger_identity")).scalar()
    if known is not None:
        return known
    made = uuid.uuid4().hex[:12]
    connection.execute(insert(schema.LedgerIdentity.__table__), [{
        "ledger_id": made, "created_at": datetime.now(UTC).replace(tzinfo=None)}])
    return made


def record_partition(connection: Connection, partition: RecordedPartition) -> None:
    connection.execute(insert(schema.ArchivedPartition.__table__), [{
        "batch_id": partition.batch_id, "document": partition.document,
        "business_date": partition.business_date, "relative_path": partition.relative_path,
        "sha256": partition.sha256, "row_count": partition.row_count}])


def recorded_partition(connection: Connection, document: str,
                       business_date: date) -> RecordedPartition | None:
    """The partition of `document` the batch of `business_date` wrote, if it wrote one."""
    row = connection.execute(text(
        "SELECT batch_id, document, business_date, relative_path, sha256, row_count "
        "FROM archive_partitions WHERE document = :document AND business_date = :day"),
        {"document": document, "day": business_date}).first()
    return None if row is None else _partition(row)


def recorded_partitions(connection: Connection,
                        batch_id: str | None = None) -> list[RecordedPartition]:
    """Every recorded partition (of one batch, if named), in date and document order."""
    one_batch = "" if batch_id is None else "WHERE batch_id = :batch_id "
    rows = connection.execute(text(
        "SELECT batch_id, document, business_date, relative_path, sha256, row_count "
        f"FROM archive_partitions {one_batch}ORDER BY business_date, document"),
        {"batch_id": batch_id}).all()
    return [_partition(row) for row in rows]


def batch_row_counts(connection: Connection) -> dict[tuple[str, str], int]:
    """{(batch id, partition document): the rows its partition must hold}, from `batch_files`
    (a batch's rows of one document summed)."""
    rows = connection.execute(text(
        "SELECT batch_id, document, SUM(rows_accepted), SUM(rows_read) FROM batch_files "
        "GROUP BY batch_id, document")).all()
    counted = {(row[0], row[1]): {"rows_accepted": int(row[2]), "rows_read": int(row[3])}
               for row in rows}
    batches = {batch_id for batch_id, _ in counted}
    return {(batch_id, partition_document): counted[(batch_id, document)][column]
            for batch_id in batches for partition_document, (document, column) in _COUNTED_AS.items()
            if (batch_id, document) in counted}


def row_count_differs(where: str, partition: RecordedPartition, held_rows: int,
                      batch_counts: dict[tuple[str, str], int]) -> str:
    """Why a partition (`where`: how a message names it) holding `held_rows` rows does not
    tie to what its batch recorded ('' when it does)."""
    document, column = _COUNTED_AS.get(partition.document, (partition.document, "rows_accepted"))
    expected = batch_counts.get((partition.batch_id, partition.document))
    if expected is None:
        return (f"{where} has no {document} file in batch {partition.batch_id}'s batch_files "
                "to tie its rows to: a partition or a file record was altered")
    if held_rows != expected:
        counted = "rows read" if column == "rows_read" else "accepted rows"
        return (f"{where} holds {held_rows} rows, but batch {partition.batch_id} recorded "
                f"{expected} {counted} of {document}: rows were removed or added")
    return ""


# The documents whose partition's credits (and, with amounts, amounts by currency) the
# batch's file recorded as control totals (intake/classification.py control_totals).
_CREDITS_TIED = ("usage", "purchases", "refunds")
_AMOUNTS_TIED = ("purchases",)
# Exact sums: a decimal of 38 digits holds any sum of int64 values a partition can have.
_EXACT = pa.decimal128(38, 0)


def batch_control_totals(connection: Connection) -> dict[tuple[str, str], tuple[int, dict]]:
    """{(batch id, document): (credits accepted in micro-credits, {currency: amount as
    written})} of the documents whose partitions hold the rows those totals sum."""
    rows = connection.execute(text(
        "SELECT batch_id, document, credits_accepted_micro, amounts_accepted_json "
        "FROM batch_files WHERE document IN ('usage', 'purchases', 'refunds')")).all()
    return {(row[0], row[1]): (int(row[2]), json.loads(row[3] or "{}")) for row in rows}


def partition_totals(path: Path, document: str) -> tuple[int, dict[str, str]]:
    """(the credits a partition's rows sum to, micro; {currency: its amounts summed, as
    written}, for a document whose amounts are tied, else {})."""
    columns = ["credits_micro"] + (["amount_minor", "currency"]
                                   if document in _AMOUNTS_TIED else [])
    table = pq.read_table(path, columns=columns)
    credits = pc.sum(pc.cast(table["credits_micro"], _EXACT)).as_py()
    amounts: dict[str, str] = {}
    if document in _AMOUNTS_TIED:
        summed = table.select(["currency"]).append_column(
            "amount", pc.cast(table["amount_minor"], _EXACT)).group_by("currency").aggregate(
            [("amount", "sum")])
        amounts = {currency: format_minor(int(total), currency) for currency, total in sorted(
            zip(summed["currency"].to_pylist(), summed["amount_sum"].to_pylist(), strict=True))}
    return int(credits or 0), amounts


def totals_differ(where: str, partition: RecordedPartition, path: Path,
                  batch_totals: dict[tuple[str, str], tuple[int, dict]]) -> str:
    """Why the partition file at `path` (`where`: how a message names it) does not sum to
    the totals its batch recorded ('' when it does, or its document records none)."""
    if partition.document not in _CREDITS_TIED or not str(path).endswith(".parquet"):
        return ""
    recorded = batch_totals.get((partition.batch_id, partition.document))
    if recorded is None:
        return (f"{where} has no {partition.document} file in batch {partition.batch_id}'s "
                "batch_files to tie its totals to: a partition or a file record was altered")
    credits_micro, amounts = partition_totals(path, partition.document)
    if credits_micro != recorded[0]:
        return (f"{where} sums to {credits_micro} credits_micro, but batch "
                f"{partition.batch_id} recorded {recorded[0]} accepted credits_micro of "
                f"{partition.document}: rows were changed")
    if partition.document in _AMOUNTS_TIED and amounts != recorded[1]:
        return (f"{where} sums to amounts {json.dumps(amounts, sort_keys=True)}, but batch "
                f"{partition.batch_id} recorded {json.dumps(recorded[1], sort_keys=True)} "
                f"accepted of {partition.document}: rows were changed")
    return ""


def _partition(row) -> RecordedPartition:
    business_date = row.business_date
    if isinstance(business_date, str):  # SQLite hands a DATE back as text through text()
        business_date = date.fromisoformat(business_date[:10])
    return RecordedPartition(row.batch_id, row.document, business_date, row.relative_path,
                             row.sha256, int(row.row_count))
