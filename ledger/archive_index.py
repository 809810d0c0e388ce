"""Which archive partition each batch wrote, and the SHA-256 of its bytes.

The archive on disk is evidence, and this index is how the ledger points to it: a night
records each partition it wrote in its own transaction, and every reader finds a
partition only through its row here. A file no row names (left by a run that failed or
was killed before it committed) is never read.

A partition's row count is tied to its batch's files: the rows its document accepted (for
the metering system's original file, every row read), so a partition with a row removed
is refused when a v0.1.0 archive is adopted and named by `verify --archive`.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import Connection, insert, text

from ledger import schema

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


def _partition(row) -> RecordedPartition:
    business_date = row.business_date
    if isinstance(business_date, str):  # SQLite hands a DATE back as text through text()
        business_date = date.fromisoformat(business_date[:10])
    return RecordedPartition(row.batch_id, row.document, business_date, row.relative_path,
                             row.sha256, int(row.row_count))
