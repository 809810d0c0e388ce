"""The archive: accepted source rows as immutable Parquet partitions per business date.

`ARCHIVE/<document>/business_date=YYYY-MM-DD/<batch>-<ledger>-<sha256 prefix>.parquet` holds
every row a night accepted (usage events with their original `occurred_at`, purchases,
refunds, adjustments), with its payload fingerprint and where it came from (file, row).
The archive is evidence the ledger points to, never state it trusts: each partition is
named by the batch and the ledger that wrote it and recorded, with the SHA-256 of its
bytes, in that batch's transaction (`ledger/archive_index.py`). Readers find a partition only through
that record and refuse one that is missing or whose bytes differ; duplicate ids are
decided from the ledger (`ledger/seen_ids.py`), not from here. A partition is written to a
temporary name and renamed into place, so a reader never sees half a file; files left by
a run that did not commit are ignored (their half-written temporary files are removed when
the day is taken in again), and no finished file is ever removed or replaced by one of
other bytes, whichever ledger wrote it.

The archive may be on object storage (`--archive s3://bucket/prefix`, intake/object_storage.py).
There a partition is written locally, then put as one whole object under the same name (an
object store has no rename, and a reader sees an object whole or not at all), and then
recorded; a reader downloads it once and checks the SHA-256 the batch recorded, as it
checks a local file. Nothing half-written is ever left there, so there is nothing to remove.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Connection

from intake.object_storage import file_system, local_copies, object_storage_url
from ledger.archive_index import (
    RecordedPartition,
    file_sha256,
    recorded_partition,
    row_count_differs,
    totals_differ,
)

ARCHIVED_COLUMNS = {
    "usage": ["event_id", "customer_id", "occurred_at", "meter", "credits_micro",
              "quantity_micro", "payload_hash", "source_file", "source_row"],
    "purchases": ["purchase_id", "customer_id", "purchased_at", "expires_at", "credits_micro",
                  "amount_minor", "tax_minor", "currency", "kind", "product", "priority", "country",
                  "payload_hash", "source_file", "source_row"],
    "refunds": ["refund_id", "purchase_id", "customer_id", "refunded_at", "credits_micro",
                "value_minor", "tax_minor", "currency", "payload_hash"],
    "adjustments": ["adjustment_id", "purchase_id", "customer_id", "adjusted_at", "action",
                    "previous_expires_at", "new_expires_at", "credits_voided_micro", "reason",
                    "payload_hash"],
}


class ArchiveError(RuntimeError):
    """An archive partition is missing, altered or foreign, or the archive cannot be written."""


def day_directory(archive_root: Path, document: str, business_date: date) -> Path:
    return Path(archive_root) / document / f"business_date={business_date.isoformat()}"


@dataclass(frozen=True)
class PartitionWriter:
    """Who writes a day's partitions: the batch, and the ledger it belongs to."""

    archive_root: Path
    batch_id: str
    ledger_id: str
    business_date: date

    @property
    def file_prefix(self) -> str:
        return f"{self.batch_id}-{self.ledger_id}-"

    def remove_leftovers(self, documents: tuple[str, ...]) -> None:
        """Remove the half-written files earlier runs of this batch of this ledger left.

        A finished partition that no batch recorded is never removed: it may be a copy of
        this ledger's (a restored backup shares its identity) that recorded it, and it is
        harmless where it is, since every reader finds partitions only through the ledger's
        record, and a file's name carries its SHA-256, so a new one never replaces it with
        other bytes.
        """
        if object_storage_url(self.archive_root) is not None:
            return  # objects are put whole: none is ever half-written
        for document in documents:
            directory = day_directory(self.archive_root, document, self.business_date)
            for leftover in directory.glob(f"{self.file_prefix}*.tmp"):
                leftover.unlink(missing_ok=True)

    def readable_path(self, partition: RecordedPartition) -> Path:
        """A local file of a partition this writer has just placed, to read back."""
        if object_storage_url(self.archive_root) is not None:
            return verified_path(self.archive_root, partition)
        return Path(self.archive_root) / partition.relative_path

    def _temporary_file(self, document: str) -> tuple[int, str]:
        """A new temporary file beside the partition's place (for object storage, on local
        disk), so that placing it is a rename on the same file system."""
        if object_storage_url(self.archive_root) is not None:
            directory = local_copies()
        else:
            directory = day_directory(self.archive_root, document, self.business_date)
            directory.mkdir(parents=True, exist_ok=True)
        return tempfile.mkstemp(dir=directory, prefix=self.file_prefix, suffix=".tmp")

    def write(self, document: str, rows: pd.DataFrame) -> RecordedPartition:
        """Write the day's accepted rows and name the file by its writer and its bytes."""
        descriptor, temporary = self._temporary_file(document)
        os.close(descriptor)
        try:
            pq.write_table(archived_table(document, rows), temporary)
            return self.place(Path(temporary), document, len(rows))
        finally:
            Path(temporary).unlink(missing_ok=True)

    def copy_in(self, source: Path, document: str, row_count: int, suffix: str) -> RecordedPartition:
        """Archive a file as it is (a source's original export), named by its writer and
        its bytes: copied to a temporary file beside its place (or, for object storage, on
        local disk), then placed whole."""
        descriptor, temporary = self._temporary_file(document)
        try:
            with os.fdopen(descriptor, "wb") as copy, Path(source).open("rb") as original:
                shutil.copyfileobj(original, copy)
            return self.place(Path(temporary), document, row_count, suffix)
        finally:
            Path(temporary).unlink(missing_ok=True)

    def place(self, written: Path, document: str, row_count: int,
              suffix: str = ".parquet") -> RecordedPartition:
        """Move a partition written on the archive's file system into place, whole (on
        object storage: put it as one object, and keep the local file as the verified copy)."""
        sha256 = file_sha256(written)
        url = object_storage_url(self.archive_root)
        if url is not None:
            relative = (f"{document}/business_date={self.business_date.isoformat()}/"
                        f"{self.file_prefix}{sha256[:16]}{suffix}")
            storage, root = file_system(url)
            storage.put_file(str(written), f"{root}/{relative}")
            _keep_verified(written, sha256)
            return RecordedPartition(self.batch_id, document, self.business_date, relative,
                                     sha256, row_count)
        directory = day_directory(self.archive_root, document, self.business_date)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{self.file_prefix}{sha256[:16]}{suffix}"
        os.replace(written, path)
        return RecordedPartition(self.batch_id, document, self.business_date,
                                 path.relative_to(self.archive_root).as_posix(), sha256,
                                 row_count)


# (path, size, modification time) -> SHA-256 already checked by this process: the shards
# and reports of one run read a partition many times, and hash it once.
_VERIFIED: dict[tuple[str, int, int], str] = {}


def verified_path(archive_root: Path, partition: RecordedPartition) -> Path:
    """The partition's file, once its bytes are the ones its batch recorded (on object
    storage: a local copy, downloaded once and checked)."""
    url = object_storage_url(archive_root)
    if url is not None:
        return _verified_copy(url, partition)
    path = Path(archive_root) / partition.relative_path
    where = f"archive partition {path} (batch {partition.batch_id}, {partition.document})"
    try:
        status = path.stat()
    except FileNotFoundError:
        raise ArchiveError(f"{where} is missing: restore the archive the ledger was posted "
                           "with (--archive)") from None
    key = (str(path), status.st_size, status.st_mtime_ns)
    if _VERIFIED.get(key) != partition.sha256:
        if file_sha256(path) != partition.sha256:
            raise ArchiveError(f"{where} is not the file its batch wrote (SHA-256 differs): "
                               "it was altered or written by another ledger")
        _VERIFIED[key] = partition.sha256
    return path


def partition_differs(archive_root: Path, partition: RecordedPartition,
                      batch_counts: dict[tuple[str, str], int],
                      batch_totals: dict[tuple[str, str], tuple[int, dict]]) -> str:
    """Why a recorded partition is not the one its batch wrote ('' when it is): missing,
    other bytes than recorded, or rows that are not its batch's (a Parquet file's own row
    count against its record, and the record against `batch_counts`,
    `ledger.archive_index.batch_row_counts`; its credits and amounts against
    `batch_totals`, `ledger.archive_index.batch_control_totals`)."""
    try:
        path = verified_path(archive_root, partition)
    except ArchiveError as error:
        return str(error)
    url = object_storage_url(archive_root)
    shown = (f"{url}/{partition.relative_path}" if url is not None
             else Path(archive_root) / partition.relative_path)
    where = f"archive partition {shown} (batch {partition.batch_id}, {partition.document})"
    if partition.relative_path.endswith(".parquet"):
        held_rows = pq.ParquetFile(path).metadata.num_rows
        if held_rows != partition.row_count:
            return (f"{where} holds {held_rows} rows, but its record in archive_partitions "
                    f"says {partition.row_count}: the record was altered")
    return (row_count_differs(where, partition, partition.row_count, batch_counts)
            or totals_differ(where, partition, path, batch_totals))


def _verified_copy(url: str, partition: RecordedPartition) -> Path:
    """The local copy of a partition on object storage, named by its recorded SHA-256:
    downloaded when this process has none, and kept only if its bytes are the recorded ones."""
    copy = _copy_path(partition.sha256)
    if copy.exists():
        return copy
    where = (f"archive partition {url}/{partition.relative_path} "
             f"(batch {partition.batch_id}, {partition.document})")
    storage, root = file_system(url)
    descriptor, temporary = tempfile.mkstemp(dir=local_copies(), suffix=".download")
    os.close(descriptor)
    try:
        try:
            storage.get_file(f"{root}/{partition.relative_path}", temporary)
        except FileNotFoundError:
            raise ArchiveError(f"{where} is missing: restore the archive the ledger was posted "
                               "with (--archive)") from None
        if file_sha256(Path(temporary)) != partition.sha256:
            raise ArchiveError(f"{where} is not the file its batch wrote (SHA-256 differs): "
                               "it was altered or written by another ledger")
        os.replace(temporary, copy)
    finally:
        Path(temporary).unlink(missing_ok=True)
    return copy


def _copy_path(sha256: str) -> Path:
    return local_copies() / f"{sha256}.partition"


def _keep_verified(written: Path, sha256: str) -> None:
    """Keep the file just put on object storage as this process's verified copy of it."""
    shutil.move(written, _copy_path(sha256))  # a staged partition may be on another disk


def archived_path(connection: Connection, archive_root: Path, document: str,
                  business_date: date) -> Path | None:
    """The verified partition of the day's batch, or None if the batch archived none."""
    partition = recorded_partition(connection, document, business_date)
    return None if partition is None else verified_path(archive_root, partition)


def archived_path_in(books, archive_root: Path, document: str, business_date: date) -> Path | None:
    """`archived_path` over a connection of its own to `books` (a store, for reports)."""
    with books.engine.connect() as connection:
        return archived_path(connection, archive_root, document, business_date)


def archived_table(document: str, rows: pd.DataFrame) -> pa.Table:
    """The archived columns of `rows` as Arrow, text as plain strings however pandas held it."""
    table = pa.Table.from_pandas(rows[ARCHIVED_COLUMNS[document]], preserve_index=False)
    if not any(pa.types.is_large_string(field.type) for field in table.schema):
        return table
    return table.cast(pa.schema([
        field.with_type(pa.string()) if pa.types.is_large_string(field.type) else field
        for field in table.schema], metadata=table.schema.metadata))


def read_partition(path: Path | None, document: str,
                   columns: list[str] | None = None) -> pd.DataFrame:
    """The accepted rows of a partition (from `archived_path`); an empty frame with the
    right columns if the day archived none."""
    columns = columns or ARCHIVED_COLUMNS[document]
    table = read_partition_table(path, columns)
    if table is None:
        return pd.DataFrame({column: pd.Series(dtype=object) for column in columns})
    return table.to_pandas()


def read_partition_table(path: Path | None, columns: list[str]) -> pa.Table | None:
    """The accepted rows of a partition as an Arrow table (for work done in Arrow, without a
    Python object per value); None if the day archived none."""
    return None if path is None else pq.read_table(path, columns=columns)


def read_partition_where(path: Path | None, document: str, columns: list[str],
                         keep: Callable[[pa.Table], pa.Array]) -> pd.DataFrame:
    """The rows of a partition that `keep` selects, read a row group at a time.

    Only the selected rows are ever held whole: this is how a customer shard reads a day
    too large to hold.
    """
    if path is None:
        return read_partition(None, document, columns)
    parquet = pq.ParquetFile(path)
    kept = [group.filter(keep(group)) for group in (
        parquet.read_row_group(number, columns=columns)
        for number in range(parquet.num_row_groups))]
    if not kept:
        return parquet.schema_arrow.empty_table().select(columns).to_pandas()
    return pa.concat_tables(kept).to_pandas()


def no_fingerprints(document: str) -> pd.DataFrame:
    """A look-back with nothing in it: its columns, typed, and no rows."""
    return pd.DataFrame({ARCHIVED_COLUMNS[document][0]: pd.Series(dtype=object),
                         "payload_hash": pd.Series(dtype="int64"),
                         "business_date": pd.Series(dtype=object)})
