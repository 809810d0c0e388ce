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
Parts are chosen and forgotten by their latest `occurred_at`, an instant, so a change of
reporting timezone cannot hide one. A part whose every id is older than a night's window
is removed by that night, and the ledger then remembers since when it holds every id
(`usage_id_memory`): should a later night's window reach further back (a longer window in
a new policy), events older than that are refused, never taken for new.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import date, datetime

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import Connection, insert, text

from ledger import schema
from ledger.periods import BusinessDay, LateWindow

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
        if not table.num_rows:
            continue
        table = table.select(SEEN_COLUMNS).cast(_SEEN_SCHEMA)
        buffer = io.BytesIO()
        pq.write_table(table, buffer)
        latest = pd.Timestamp(pc.max(table["occurred_at"]).as_py())
        connection.execute(insert(schema.SeenUsageIds.__table__), [{
            "batch_id": batch_id, "part": number, "business_date": business_date,
            "latest_occurred_at": latest.tz_convert("UTC").tz_localize(None).to_pydatetime(),
            "id_count": table.num_rows, "ids_parquet": buffer.getvalue()}])
        count += table.num_rows
    return count


def late_window(connection: Connection, day: BusinessDay, late_window_days: int) -> LateWindow:
    """The night's late window: the policy's rule, and since when the ledger holds every id."""
    remembered_from = connection.execute(text(
        "SELECT remembered_from FROM usage_id_memory")).scalar()
    return LateWindow(late_window_days, day.late_window_starts_at(late_window_days),
                      None if remembered_from is None else _utc(remembered_from))


def seen_usage_parts(connection: Connection, window: LateWindow,
                     among: pa.Array | None = None) -> Iterator[pd.DataFrame]:
    """The look-back of a night, one part at a time: event_id, payload_hash, business_date.

    Only ids whose `occurred_at` is inside the night's late window: an older one can never
    be accepted again (it is too late), so it is neither a duplicate nor a conflict.
    `among`: only these ids (filtered in Arrow, before any becomes a Python object).
    """
    starts_at = window.accepts_from_utc
    keys = connection.execute(text(
        "SELECT batch_id, part, business_date FROM seen_usage_ids "
        "WHERE latest_occurred_at >= :starts_at ORDER BY business_date, part"),
        {"starts_at": _naive(starts_at)}).all()
    for batch_id, part, business_date in keys:
        blob = connection.execute(text(
            "SELECT ids_parquet FROM seen_usage_ids WHERE batch_id = :batch_id AND part = :part"),
            {"batch_id": batch_id, "part": part}).scalar_one()
        table = pq.read_table(io.BytesIO(bytes(blob)))
        keep = pc.greater_equal(table["occurred_at"], pa.scalar(
            starts_at.value, type=_SEEN_SCHEMA.field("occurred_at").type))
        if among is not None:
            keep = pc.and_(keep, pc.is_in(table["event_id"], value_set=among))
        ids = table.filter(keep).to_pandas()
        if len(ids):
            yield pd.DataFrame({"event_id": ids["event_id"].astype(object),
                                "payload_hash": ids["payload_hash"].astype("int64"),
                                "business_date": pd.Timestamp(business_date).date()})


def forget_before_window(connection: Connection, window: LateWindow) -> None:
    """Remove the parts whose every id is older than the night's window, and remember that
    the ledger no longer holds every id from before it."""
    starts_at = _naive(window.starts_at_utc)
    forgotten = connection.execute(text(
        "DELETE FROM seen_usage_ids WHERE latest_occurred_at < :starts_at"),
        {"starts_at": starts_at}).rowcount
    if not forgotten:
        return
    known = connection.execute(text("SELECT remembered_from FROM usage_id_memory")).scalar()
    if known is None:
        connection.execute(insert(schema.UsageIdMemory.__table__),
                           [{"memory_id": 1, "remembered_from": starts_at}])
    elif _utc(known) < window.starts_at_utc:
        connection.execute(text("UPDATE usage_id_memory SET remembered_from = :starts_at"),
                           {"starts_at": starts_at})


def _naive(instant: pd.Timestamp) -> datetime:
    """An instant as the ledger stores it: naive UTC."""
    return instant.tz_convert("UTC").tz_localize(None).to_pydatetime()


def _utc(stored) -> pd.Timestamp:
    return pd.Timestamp(stored).tz_localize("UTC")


def _next_part_number(connection: Connection, batch_id: str) -> int:
    return int(connection.execute(text(
        "SELECT COALESCE(MAX(part) + 1, 0) FROM seen_usage_ids WHERE batch_id = :batch_id"),
        {"batch_id": batch_id}).scalar_one())


def _bounded_parts(parts: Iterator[pa.Table]) -> Iterator[pa.Table]:
    """The tables re-cut so that no part holds more than `IDS_PER_PART` ids."""
    for table in parts:
        for offset in range(0, table.num_rows, IDS_PER_PART):
            yield table.slice(offset, IDS_PER_PART)
