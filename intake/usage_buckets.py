"""A usage file too large to hold: taken in chunk by chunk, de-duplicated by event-id bucket.

The whole-file intake (intake/classification.py) holds a file at once; a day of a hundred million
events does not fit. Here the file is read `chunk_rows` at a time: each chunk is
validated, and its valid rows are spilled to one file per event-id bucket (a stable hash
of the id); the ids the ledger accepted inside the late window (its look-back, read from
the ledger by the caller: `ledger/seen_ids.py`) are spilled the same way. Every row of an
id, today's and earlier ones, then sits in one bucket, so sorting
each bucket with `classify_valid_rows` gives exactly the whole-file answer while holding
one bucket at a time. Accepted rows go to the day's archive partition bucket by bucket,
as row groups of one Parquet file staged beside the archive; the day's usage totals are
summed as they go. Quarantined rows keep their text as read: a validation failure's
from its chunk, a conflict's (rare) from a second read of the file.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from intake.archive import archived_table, no_fingerprints
from intake.classification import PAYLOAD_COLUMNS, classify_valid_rows, counted_intake, raw_rows
from intake.documents import ROW_NUMBER, StreamedFile
from intake.validation import (
    INT64_MAX,
    exact_sum,
    payload_fingerprints,
    require_summable_credits,
    validate_usage,
)
from ledger.domain import QuarantineKind
from ledger.periods import BusinessDay, LateWindow

# Above this many rows a usage file is read in chunks: about 3 GiB at peak for a night,
# and no slower than holding the file (10M events: 104 s chunked, 98 s whole, 7.4 GiB).
DEFAULT_CHUNK_ROWS = 2_000_000
MAX_BUCKETS = 4096
TOTALS_KEYS = ["customer_id", "meter"]


@dataclass(frozen=True)
class StagedUsage:
    """A usage file taken in chunk by chunk: its counts and totals, and its staged archive."""

    document: str
    file_name: str
    sha256: str
    rows_read: int
    accepted_count: int
    duplicate_count: int
    rejected: pd.DataFrame  # as DocumentIntake.rejected
    credits_accepted_micro: int
    daily_totals: pd.DataFrame  # as `usage_totals`, over every accepted row
    staged_archive: Path

    def control_totals(self) -> dict:
        return {"credits_accepted_micro": self.credits_accepted_micro,
                "amounts_accepted_json": json.dumps({})}


def usage_totals(events: pd.DataFrame, day: BusinessDay) -> pd.DataFrame:
    """Events, late events and credits per customer and meter, in key order.

    The int64 sums cannot wrap: the intake has refused a file whose accepted credits pass
    int64 (`require_summable_credits`), and no group's sum is larger than the file's.
    """
    late = (events["occurred_at"] < day.starts_at_utc).astype("int64")
    return events.assign(late=late).groupby(TOTALS_KEYS, as_index=False).agg(
        event_count=("event_id", "size"), late_event_count=("late", "sum"),
        credits_micro=("credits_micro", "sum"))


def take_in_streamed_usage(streamed: StreamedFile, day: BusinessDay, window: LateWindow,
                           look_back: Iterable[pd.DataFrame], staging: Path) -> StagedUsage:
    """Validate, de-duplicate and stage a usage file chunk by chunk (see the module docstring).

    look_back: the ids accepted earlier inside the late window, part by part (event_id,
    payload_hash, business_date).
    """
    bucket_count = _bucket_count(streamed)
    today, earlier = staging / "today", staging / "earlier"
    spilled = _validate_and_spill(streamed, day, window, bucket_count, today)
    raw_by_row, no_rows = spilled.raw_by_row, spilled.no_rows
    for number, part in enumerate(look_back):
        _spill(part, bucket_count, earlier, f"seen-{number:06d}")

    staged_archive = staging / "rows.parquet"
    accepted_count, duplicate_count, credits_micro = 0, 0, 0
    totals = pd.DataFrame()
    conflicts = []
    with _ArchiveWriter(staged_archive) as writer:
        for bucket in range(bucket_count):
            rows = _read_spill(today / _bucket_name(bucket))
            if rows is None:
                continue
            before = _read_spill(earlier / _bucket_name(bucket))
            classified = classify_valid_rows(rows, "event_id",
                                             no_fingerprints("usage") if before is None else before)
            accepted = classified.accepted.assign(source_file=streamed.file_name,
                                                  source_row=classified.accepted[ROW_NUMBER])
            writer.write(accepted)
            accepted_count += len(accepted)
            duplicate_count += classified.duplicate_count
            credits_micro += exact_sum(accepted["credits_micro"])
            totals = _summed(totals, usage_totals(accepted, day))
            conflicts.append(classified.conflicts)
        if writer.is_empty:  # the whole-file intake archives an empty day too
            writer.write_no_rows(no_rows.assign(source_file=streamed.file_name,
                                                source_row=no_rows[ROW_NUMBER]))
    if credits_micro > INT64_MAX:  # the running totals may have wrapped: refuse, naming who
        staged = pq.read_table(staged_archive, columns=["customer_id", "credits_micro"])
        require_summable_credits(streamed.file_name, staged["customer_id"].to_pandas(),
                                 staged["credits_micro"].to_pandas())
    conflicting = pd.concat(conflicts, ignore_index=True) if conflicts else pd.DataFrame()
    if len(conflicting):
        raw_by_row.update(_raw_rows_again(streamed, set(conflicting[ROW_NUMBER])))
    rejected = pd.concat([*spilled.invalid, conflicting], ignore_index=True)
    rejected = rejected.sort_values(ROW_NUMBER).reset_index(drop=True)
    rejected["raw_row"] = [raw_by_row[row] for row in rejected[ROW_NUMBER]]
    if totals.empty:
        totals = usage_totals(no_rows, day)
    return counted_intake(StagedUsage(
        "usage", streamed.file_name, streamed.sha256, spilled.rows_read, accepted_count,
        duplicate_count, rejected, credits_micro, totals, staged_archive))


class _Spilled(NamedTuple):
    rows_read: int
    invalid: list[pd.DataFrame]  # each chunk's rows refused by validation
    raw_by_row: dict[int, str]  # their text as read, by row number
    no_rows: pd.DataFrame  # the valid rows' columns and types, without rows


def _validate_and_spill(streamed: StreamedFile, day: BusinessDay, window: LateWindow,
                        bucket_count: int, directory: Path) -> _Spilled:
    """Validate each chunk; keep what it refused, spill its valid rows to their buckets."""
    rows_read, invalid, raw_by_row, no_rows = 0, [], {}, None
    for chunk_number, chunk in enumerate(streamed.chunks()):
        rows_read += len(chunk)
        validated = validate_usage(chunk, day, window)
        invalid.append(validated.rejected.assign(kind=QuarantineKind.REJECTED.value))
        raw_by_row.update(zip(validated.rejected[ROW_NUMBER],
                              raw_rows(chunk, validated.rejected[ROW_NUMBER]), strict=True))
        valid = validated.accepted.assign(payload_hash=payload_fingerprints(
            validated.accepted, PAYLOAD_COLUMNS["usage"]).to_numpy())
        no_rows = valid.iloc[0:0] if no_rows is None else no_rows
        _spill(valid, bucket_count, directory, f"chunk-{chunk_number:06d}")
    return _Spilled(rows_read, invalid, raw_by_row, no_rows)


def _bucket_count(streamed: StreamedFile) -> int:
    """About one chunk's rows per bucket; the answer does not depend on it, only memory."""
    return min(MAX_BUCKETS, max(1, math.ceil(streamed.rows_estimate / streamed.chunk_rows)))


def _bucket_name(bucket: int) -> str:
    return f"bucket-{bucket:05d}"


def _spill(rows: pd.DataFrame, bucket_count: int, directory: Path, name: str) -> None:
    """Append `rows` to their buckets' directories as one Parquet file each, named `name`."""
    if rows.empty:
        return
    hashes = pd.util.hash_pandas_object(rows["event_id"].astype(str), index=False).to_numpy()
    buckets = (hashes % np.uint64(bucket_count)).astype(np.int64)
    order = np.argsort(buckets, kind="stable")
    bounds = np.searchsorted(buckets[order], np.arange(bucket_count + 1))
    table = pa.Table.from_pandas(rows, preserve_index=False).take(pa.array(order))
    for bucket in np.flatnonzero(np.diff(bounds)):
        target = directory / _bucket_name(int(bucket))
        target.mkdir(parents=True, exist_ok=True)
        pq.write_table(table.slice(bounds[bucket], bounds[bucket + 1] - bounds[bucket]),
                       target / f"{name}.parquet")


def _read_spill(directory: Path) -> pd.DataFrame | None:
    """A bucket's rows in the order they were spilled (file names sort in that order)."""
    files = sorted(directory.glob("*.parquet")) if directory.is_dir() else []
    if not files:
        return None
    frame = pa.concat_tables(pq.read_table(path) for path in files).to_pandas()
    text = [column for column in frame.columns if pd.api.types.is_string_dtype(frame[column])]
    return frame.astype(dict.fromkeys(text, object))


def _summed(running: pd.DataFrame, part: pd.DataFrame) -> pd.DataFrame:
    if running.empty:
        return part
    both = pd.concat([running, part], ignore_index=True)
    return both.groupby(TOTALS_KEYS, as_index=False)[
        ["event_count", "late_event_count", "credits_micro"]].sum()


def _raw_rows_again(streamed: StreamedFile, row_numbers: set[int]) -> dict[int, str]:
    raw = {}
    for chunk in streamed.chunks():
        wanted = chunk[chunk[ROW_NUMBER].isin(row_numbers)]
        raw.update(zip(wanted[ROW_NUMBER], raw_rows(chunk, wanted[ROW_NUMBER]), strict=True))
    return raw


class _ArchiveWriter:
    """Accepted rows appended as row groups of one Parquet file, schema fixed by the first."""

    def __init__(self, path: Path) -> None:
        self.path, self._writer = path, None

    @property
    def is_empty(self) -> bool:
        return self._writer is None

    def write(self, rows: pd.DataFrame) -> None:
        """Append rows. A bucket with none is skipped: its text columns would have no type."""
        if rows.empty:
            return
        table = archived_table("usage", rows)
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, table.schema)
        self._writer.write_table(table.cast(self._writer.schema))

    def write_no_rows(self, rows: pd.DataFrame) -> None:
        """A day with nothing accepted: its partition holds no rows, as a whole file's would."""
        table = archived_table("usage", rows)
        self._writer = pq.ParquetWriter(self.path, table.schema)
        self._writer.write_table(table)

    def __enter__(self) -> _ArchiveWriter:
        return self

    def __exit__(self, *exception) -> None:
        if self._writer is not None:
            self._writer.close()
