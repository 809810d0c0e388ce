"""The archive: accepted source rows as immutable Parquet partitions per business date.

`ARCHIVE/<document>/business_date=YYYY-MM-DD/rows.parquet` holds every row a night
accepted (usage events with their original `occurred_at`, purchases), with its payload
fingerprint and where it came from (file, row). The SQL store keeps aggregates; the
later stages of a night read their input here, auditors read the events here, and later
nights read it for duplicate ids. A partition is written to a temporary name and renamed
into place, so a reader never sees half a file; a re-run after a crash rewrites the same
content.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

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


def partition_path(archive_root: Path, document: str, business_date: date) -> Path:
    return (Path(archive_root) / document / f"business_date={business_date.isoformat()}"
            / "rows.parquet")


def write_partition(archive_root: Path, document: str, business_date: date,
                    rows: pd.DataFrame) -> Path:
    path = _clear_leftovers(archive_root, document, business_date)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix="rows.", suffix=".tmp")
    os.close(descriptor)
    try:
        pq.write_table(archived_table(document, rows), temporary)
        os.replace(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)
    return path


def place_partition(staged: Path, archive_root: Path, document: str, business_date: date) -> Path:
    """Move a partition written elsewhere on the archive's file system into place, whole."""
    path = _clear_leftovers(archive_root, document, business_date)
    os.replace(staged, path)
    return path


def _clear_leftovers(archive_root: Path, document: str, business_date: date) -> Path:
    path = partition_path(archive_root, document, business_date)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A run killed mid-write leaves its temporary file; only one run writes a date at a
    # time (its batch row holds the date), so any found here is such a leftover.
    for leftover in path.parent.glob("rows.*.tmp"):
        leftover.unlink(missing_ok=True)
    return path


def archived_table(document: str, rows: pd.DataFrame) -> pa.Table:
    """The archived columns of `rows` as Arrow, text as plain strings however pandas held it."""
    table = pa.Table.from_pandas(rows[ARCHIVED_COLUMNS[document]], preserve_index=False)
    if not any(pa.types.is_large_string(field.type) for field in table.schema):
        return table
    return table.cast(pa.schema([
        field.with_type(pa.string()) if pa.types.is_large_string(field.type) else field
        for field in table.schema], metadata=table.schema.metadata))


def read_partition(archive_root: Path, document: str, business_date: date,
                   columns: list[str] | None = None) -> pd.DataFrame:
    """The accepted rows of one day; an empty frame with the right columns if none."""
    columns = columns or ARCHIVED_COLUMNS[document]
    table = read_partition_table(archive_root, document, business_date, columns)
    if table is None:
        return pd.DataFrame({column: pd.Series(dtype=object) for column in columns})
    return table.to_pandas()


def read_partition_table(archive_root: Path, document: str, business_date: date,
                         columns: list[str]) -> pa.Table | None:
    """The accepted rows of one day as an Arrow table (for work done in Arrow, without a
    Python object per value); None if the day archived none."""
    path = partition_path(archive_root, document, business_date)
    return pq.read_table(path, columns=columns) if path.exists() else None


def read_partition_where(archive_root: Path, document: str, business_date: date,
                         columns: list[str], keep: Callable[[pa.Table], pa.Array]) -> pd.DataFrame:
    """The rows of one day that `keep` selects, read a row group at a time.

    Only the selected rows are ever held whole: this is how a customer shard reads a day
    too large to hold.
    """
    path = partition_path(archive_root, document, business_date)
    if not path.exists():
        return read_partition(archive_root, document, business_date, columns)
    parquet = pq.ParquetFile(path)
    kept = [group.filter(keep(group)) for group in (
        parquet.read_row_group(number, columns=columns)
        for number in range(parquet.num_row_groups))]
    if not kept:
        return parquet.schema_arrow.empty_table().select(columns).to_pandas()
    return pa.concat_tables(kept).to_pandas()


def archived_fingerprints(archive_root: Path, document: str, before: date,
                          days: int) -> pd.DataFrame:
    """Id, payload_hash and business_date of rows archived in the `days` before `before`."""
    id_column = ARCHIVED_COLUMNS[document][0]
    parts = []
    for offset in range(1, days + 1):
        business_date = before - timedelta(days=offset)
        part = read_partition(archive_root, document, business_date, [id_column, "payload_hash"])
        if len(part):
            parts.append(part.assign(business_date=business_date))
    if not parts:
        return no_fingerprints(document)
    return pd.concat(parts, ignore_index=True)


def no_fingerprints(document: str) -> pd.DataFrame:
    """`archived_fingerprints` when nothing was archived: its columns, typed, and no rows."""
    return pd.DataFrame({ARCHIVED_COLUMNS[document][0]: pd.Series(dtype=object),
                         "payload_hash": pd.Series(dtype="int64"),
                         "business_date": pd.Series(dtype=object)})
