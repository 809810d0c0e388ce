"""The usage archive: accepted raw events as immutable Parquet partitions per business date.

`ARCHIVE/usage/business_date=YYYY-MM-DD/events.parquet` holds every usage event a
night accepted, with its original `occurred_at`, its payload fingerprint and where it
came from (file, row). The SQL store keeps aggregates; auditors and later nights (for
duplicate ids) read the events here. A partition is written to a temporary name and
renamed into place, so a reader never sees half a file.
"""

from __future__ import annotations

import os
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

ARCHIVED_COLUMNS = [
    "event_id", "customer_id", "occurred_at", "meter", "credits_micro", "quantity_micro",
    "payload_hash", "source_file", "source_row",
]


def partition_path(archive_root: Path, business_date: date) -> Path:
    return archive_root / "usage" / f"business_date={business_date.isoformat()}" / "events.parquet"


def write_usage_partition(archive_root: Path, business_date: date, events: pd.DataFrame) -> Path:
    path = partition_path(archive_root, business_date)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".parquet.tmp")
    table = pa.Table.from_pandas(events[ARCHIVED_COLUMNS], preserve_index=False)
    pq.write_table(table, temporary)
    os.replace(temporary, path)
    return path


def read_usage_partition(archive_root: Path, business_date: date,
                         columns: list[str] | None = None) -> pd.DataFrame:
    path = partition_path(archive_root, business_date)
    if not path.exists():
        return pd.DataFrame(columns=columns or ARCHIVED_COLUMNS)
    return pq.read_table(path, columns=columns).to_pandas()


def archived_fingerprints(archive_root: Path, before: date, days: int) -> pd.DataFrame:
    """event_id, payload_hash and business_date of events archived in the `days` before."""
    parts = []
    for offset in range(1, days + 1):
        business_date = before - timedelta(days=offset)
        part = read_usage_partition(archive_root, business_date, ["event_id", "payload_hash"])
        if len(part):
            parts.append(part.assign(business_date=business_date))
    if not parts:
        return pd.DataFrame({"event_id": pd.Series(dtype=object),
                             "payload_hash": pd.Series(dtype="int64"),
                             "business_date": pd.Series(dtype=object)})
    return pd.concat(parts, ignore_index=True)
