"""The reports of a month-end close, each a list of rows of exact decimal strings.

Everything is computed in minor units and micro-credits and formatted last. "In the
period" means posted into it: a batch's `posting_period`, which is its business date's
month unless that month was already locked when the night ran.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from intake.archive import archived_path_in, read_partition_where
from ledger.accounts import ChartOfAccounts
from ledger.domain import EntryKind, ExpiryDestination
from ledger.money import format_micro_credits, format_micro_credits_column, format_minor_column
from ledger.periods import Period, business_day
from ledger.store import Store
from reports.kpis import usage_slices
from reports.line_totals import line_totals, up_to
from reports.statements import (  # noqa: F401 - the statements are close reports too
    ROLLFORWARD_COLUMNS,
    balance_sheet,
    income_statement,
    rollforward_frame,
)
from reports.subledger import lot_state_frame


def _money(frame: pd.DataFrame, columns: list[str]) -> list[dict]:
    """The frame's rows, the money columns (minor units) written in their currency."""
    frame = frame.copy()
    for column in columns:
        frame[column] = format_minor_column(frame[column].tolist(), frame["currency"].tolist())
    return frame.to_dict("records")


def rollforward_by(store: Store, period: Period, dimension: str, accounts: ChartOfAccounts) -> list[dict]:
    """The deferred revenue rollforward per currency and customer, or per currency and product."""
    frame = rollforward_frame(store, period, accounts.deferred_revenue, dimension)
    frame = frame[["currency", dimension, *ROLLFORWARD_COLUMNS]]
    return _money(frame[frame[ROLLFORWARD_COLUMNS].any(axis=1)], ROLLFORWARD_COLUMNS)


def revenue_from_opening_balance(store: Store, period: Period, accounts: ChartOfAccounts) -> list[dict]:
    """Revenue recognised this period out of the deferred balance it opened with: usage
    and breakage of lots whose purchase was posted into an earlier period."""
    lines = up_to(line_totals(store, period), period)
    lines = lines[(lines["period"] == period) & (lines["account"] == accounts.deferred_revenue)]
    earlier = store.read_frame("SELECT entry_id FROM journal_entries WHERE kind = :purchase "
                               "AND period < :period", period=period,
                               purchase=EntryKind.PURCHASE)["entry_id"]
    lines = lines[("purchase/" + lines["purchase_id"].fillna("")).isin(set(earlier))]
    frame = pd.DataFrame({
        "currency": lines["currency"],
        "usage_revenue": lines["amount_minor"].where(lines["kind"] == EntryKind.USAGE, 0),
        "breakage": lines["amount_minor"].where(lines["kind"] == EntryKind.BREAKAGE, 0),
    }).groupby("currency", as_index=False, sort=True).sum()
    frame["total"] = frame["usage_revenue"] + frame["breakage"]
    return _money(frame, ["usage_revenue", "breakage", "total"])


def revenue_by_customer_product_meter(store: Store, period: Period,
                                      usage: pd.DataFrame | None = None) -> list[dict]:
    """Credits burned and usage revenue per customer, product, meter and currency.

    usage: the period's `usage_slices`, when the caller has read them already."""
    usage = usage_slices(store, period) if usage is None else usage
    keys = ["customer_id", "product", "meter", "currency"]
    frame = usage.groupby(keys, as_index=False, dropna=False, sort=True).agg(
        credits=("credits_micro", "sum"), revenue=("value_minor", "sum"))
    frame["credits"] = format_micro_credits_column(frame["credits"].tolist())
    return _money(frame[[*keys, "credits", "revenue"]], ["revenue"])


def breakage_by_lot(store: Store, period: Period) -> list[dict]:
    """Lots that expired in the period: what lapsed, to breakage or to unclaimed property."""
    frame = store.read_frame("""
        SELECT x.purchase_id, o.customer_id, o.product, o.currency, o.expires_at,
               x.business_date AS expired_on, x.credits_micro AS credits_expired,
               CASE WHEN x.destination = :breakage THEN x.value_minor ELSE 0 END AS breakage,
               CASE WHEN x.destination = :escheat THEN x.value_minor ELSE 0 END AS escheat
        FROM lot_expiries x JOIN lots o ON o.purchase_id = x.purchase_id
        JOIN batches b ON b.batch_id = x.batch_id
        WHERE b.posting_period = :period ORDER BY x.purchase_id
    """, period=period, breakage=ExpiryDestination.BREAKAGE, escheat=ExpiryDestination.ESCHEAT)
    frame["credits_expired"] = frame["credits_expired"].map(lambda v: format_micro_credits(int(v)))
    frame["expires_at"] = iso_instants(frame["expires_at"])
    frame["expired_on"] = frame["expired_on"].astype(str)
    return _money(frame, ["breakage", "escheat"])


def iso_instants(stored: pd.Series) -> list[str]:
    """Instants stored as UTC without an offset, as ISO 8601 with theirs; none: blank."""
    instants = pd.to_datetime(stored).dt.tz_localize("UTC")
    return ["" if pd.isna(instant) else instant.isoformat() for instant in instants]


def period_end(period: Period, timezone: str) -> pd.Timestamp:
    following = Period(period).following_first_day
    return business_day(following - timedelta(days=1), timezone).ends_at_utc


def lot_aging(store: Store, period: Period, timezone: str) -> list[dict]:
    """Remaining credits and value at period end, by time left until expiry."""
    following = Period(period).following_first_day
    lots = lot_state_frame(store, as_of=following - timedelta(days=1))
    lots["credits_remaining"] = lots["credits_remaining_micro"]
    lots["value_remaining"] = lots["value_remaining_minor"]
    lots = lots[lots["credits_remaining"] > 0].copy()
    expires = pd.to_datetime(lots["expires_at"]).dt.tz_localize("UTC")
    left = expires - period_end(period, timezone)

    def days(count: int) -> pd.Timedelta:
        return pd.Timedelta(days=count)

    buckets = [("expired", left <= days(0)), ("< 30 days", (left > days(0)) & (left < days(30))),
               ("30-90 days", (left >= days(30)) & (left < days(90))),
               ("90-365 days", (left >= days(90)) & (left < days(365))),
               ("> 365 days", left >= days(365))]
    lots["bucket"] = "never"  # no expiry date
    for name, inside in buckets:
        lots.loc[expires.notna() & inside, "bucket"] = name
    order = {name: index for index, name in enumerate([*(name for name, _ in buckets), "never"])}
    grouped = lots.groupby(["currency", "bucket"], as_index=False).agg(
        lots=("purchase_id", "size"), credits_remaining=("credits_remaining", "sum"),
        value_remaining=("value_remaining", "sum"))
    grouped = grouped.assign(order=grouped["bucket"].map(order)).sort_values(
        ["currency", "order"]).drop(columns="order")
    grouped["credits_remaining"] = grouped["credits_remaining"].map(
        lambda value: format_micro_credits(int(value)))
    return _money(grouped, ["value_remaining"])


def late_items(store: Store, period: Period) -> list[dict]:
    """Entries posted into the period from nights dated in an earlier (locked) period."""
    first = Period(period).first_day
    frame = store.read_frame("""
        SELECT e.business_date, e.entry_id, e.kind, e.customer_id, l.currency,
               SUM(CASE WHEN l.amount_minor > 0 THEN l.amount_minor ELSE 0 END) AS amount
        FROM journal_entries e JOIN journal_lines l ON l.entry_id = e.entry_id
        WHERE e.period = :period AND e.business_date < :first
        GROUP BY e.business_date, e.entry_id, e.kind, e.customer_id, l.currency
        ORDER BY e.business_date, e.entry_id
    """, period=period, first=first)
    frame["business_date"] = frame["business_date"].astype(str)
    return _money(frame, ["amount"])


def late_usage(store: Store, period: Period, archive_root: Path, timezone: str) -> list[dict]:
    """Usage that occurred in an earlier period but was first seen by a night of this one."""
    first = Period(period).first_day
    starts_at = business_day(first, timezone).starts_at_utc
    days = store.read_frame("SELECT business_date FROM batches WHERE posting_period = :period "
                            "ORDER BY business_date", period=period)["business_date"]
    before_period = pa.scalar(starts_at.to_pydatetime(), type=pa.timestamp("us", tz="UTC"))
    parts = []
    for business_date in days:
        # Only the late rows leave Arrow: a day's events are compared there, a row group
        # at a time (Arrow's kernels let go of the interpreter, for the other reports).
        events = read_partition_where(
            archived_path_in(store, archive_root, "usage", pd.Timestamp(business_date).date()),
            "usage", ["event_id", "customer_id", "occurred_at", "meter", "credits_micro"],
            lambda table: pc.less(table["occurred_at"], before_period))
        occurred = pd.to_datetime(events["occurred_at"], utc=True)
        late = events.assign(business_date=str(business_date))
        late["occurred_period"] = occurred.dt.tz_convert(timezone).dt.strftime("%Y-%m")
        parts.append(late)
    if not parts or not sum(len(part) for part in parts):
        return []
    late = pd.concat(parts, ignore_index=True).groupby(
        ["business_date", "customer_id", "meter", "occurred_period"], as_index=False).agg(
        events=("event_id", "size"), credits=("credits_micro", "sum"))
    late["credits"] = late["credits"].map(lambda value: format_micro_credits(int(value)))
    return late.to_dict("records")
