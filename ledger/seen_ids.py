"""The usage event ids the ledger has accepted, for the late window's duplicate look-back.

A usage event may be re-sent for as long as the late window accepts it. Whether an id
was seen is decided from the ledger's own database: each batch writes the ids it
accepted (with their payload fingerprint and `occurred_at`) in its own transaction, so a
night that failed or was rolled back leaves nothing behind, and the archive on disk is
never consulted for it. The ids are kept as Parquet bytes of up to `IDS_PER_PART` rows
per table row: a ten-million-event night writes ten blobs instead of ten million B-tree
entries, and a look-back reads the window's parts a part at a time.

The look-back of a night is every id accepted by an earlier batch whose `occurred_at` is
at or after the night's late window start (`BusinessDay.late_window_starts_at`): the
same instant that decides whether an event is too late, so the two can never disagree.
Parts from business days that ended before the window start can hold nothing in it and
are removed by the night that no longer needs them.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import date

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import Connection, insert, text

from ledger import schema
from ledger.periods import BusinessDay, business_date_of

IDS_PER_PART = 1_000_000
SEEN_COLUMNS = ["event_id", "payload_hash", "occurred_at"]
_SEEN_SCHEMA = pa.schema([("event_id", pa.string()), ("payload_hash", pa.int64()),
                          ("occurred_at", pa.timestamp("ns", tz="UTC"))])


def record_seen_usage(connection: Connection, batch_id: str, business_date: date,
                      parts: Iterator[pa.Table]) -> int:
    """Store the accepted ids of a batch (tables with `SEEN_COLUMNS`); returns how many."""
    first_part = _next_part_number(connection, batch_id)
    count = 0
    for number, table in enumerate(_bounded_parts(parts), start=first_part):
        buffer = io.BytesIO()
        pq.write_table(table.select(SEEN_COLUMNS).cast(_SEEN_SCHEMA), buffer)
        connection.execute(insert(schema.SeenUsageIds.__table__), [{
            "batch_id": batch_id, "part": number, "business_date": business_date,
            "id_count": table.num_rows, "ids_parquet": buffer.getvalue()}])
        count += table.num_rows
    return count


def seen_usage_parts(connection: Connection, day: BusinessDay, late_window_days: int,
                     timezone: str, among: pa.Array | None = None) -> Iterator[pd.DataFrame]:
    """The look-back of a night, one part at a time: event_id, payload_hash, business_date.

    Only ids whose `occurred_at` is inside the night's late window: an older one can never
    be accepted again (it is too late), so it is neither a duplicate nor a conflict.
    `among`: only these ids (filtered in Arrow, before any becomes a Python object).
    """
    window_starts_at = day.late_window_starts_at(late_window_days)
    first_date = business_date_of(window_starts_at, timezone)
    keys = connection.execute(text(
        "SELECT batch_id, part, business_date FROM seen_usage_ids "
        "WHERE business_date >= :first AND business_date < :day ORDER BY business_date, part"),
        {"first": first_date, "day": day.business_date}).all()
    for batch_id, part, business_date in keys:
        blob = connection.execute(text(
            "SELECT ids_parquet FROM seen_usage_ids WHERE batch_id = :batch_id AND part = :part"),
            {"batch_id": batch_id, "part": part}).scalar_one()
        table = pq.read_table(io.BytesIO(bytes(blob)))
        keep = pc.greater_equal(table["occurred_at"], pa.scalar(
            window_starts_at.value, type=_SEEN_SCHEMA.field("occurred_at").type))
        if among is not None:
            keep = pc.and_(keep, pc.is_in(table["event_id"], value_set=among))
        ids = table.filter(keep).to_pandas()
        if len(ids):
            yield pd.DataFrame({"event_id": ids["event_id"].astype(object),
                                "payload_hash": ids["payload_hash"].astype("int64"),
                                "business_date": pd.Timestamp(business_date).date()})


def forget_before_window(connection: Connection, day: BusinessDay, late_window_days: int,
                         timezone: str) -> None:
    """Remove the parts of business days that ended before this night's window started."""
    first_date = business_date_of(day.late_window_starts_at(late_window_days), timezone)
    connection.execute(text("DELETE FROM seen_usage_ids WHERE business_date < :first"),
                       {"first": first_date})


def _next_part_number(connection: Connection, batch_id: str) -> int:
    return int(connection.execute(text(
        "SELECT COALESCE(MAX(part) + 1, 0) FROM seen_usage_ids WHERE batch_id = :batch_id"),
        {"batch_id": batch_id}).scalar_one())


def _bounded_parts(parts: Iterator[pa.Table]) -> Iterator[pa.Table]:
    """The tables re-cut so that no part holds more than `IDS_PER_PART` ids."""
    for table in parts:
        for offset in range(0, table.num_rows, IDS_PER_PART):
            yield table.slice(offset, IDS_PER_PART)
