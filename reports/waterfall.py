"""The deferred revenue waterfall: when the closing balance is expected to become revenue.

Twelve monthly columns after the period plus "thereafter", two ways:
- contractual expiry: each open lot's remaining value in the month it expires (never
  expiring, or later than twelve months: thereafter). This is when it becomes revenue at
  the latest.
- burn forecast: each customer keeps burning at its trailing 30-day rate (credits per
  day, rounded down to whole micro-credits per month), through its lots in burn order;
  a lot's value follows the same cumulative rule as real usage, and whatever a lot still
  holds when it expires is breakage in its expiry month.
Both spread each lot's remaining value exactly, so every row sums to the closing balance.
"""

from __future__ import annotations

import calendar
from datetime import timedelta
from fractions import Fraction

import pandas as pd

from ledger.money import format_minor, value_to_date_minor
from ledger.periods import parse_period, period_of
from ledger.store import Store
from reports.subledger import lot_state_frame
from rules.burn import burn_order_ranks
from rules.policy import Policy

MONTHS_AHEAD = 12
TRAILING_DAYS = 30


def _future_months(period: str) -> list[str]:
    _, following = parse_period(period)
    months, month = [], following
    for _ in range(MONTHS_AHEAD):
        months.append(period_of(month))
        month = (month.replace(day=28) + timedelta(days=4)).replace(day=1)
    return months


def _open_lots(store: Store, period: str, policy: Policy) -> pd.DataFrame:
    _, following = parse_period(period)
    lots = lot_state_frame(store, as_of=following - timedelta(days=1))
    lots["credits_remaining"] = (lots["credits_micro"] - lots["credits_used_micro"]
                                 - lots["credits_expired_micro"])
    lots = lots[lots["credits_remaining"] > 0].copy()
    expires = pd.to_datetime(lots["expires_at"]).dt.tz_localize("UTC")
    expiry_period = expires.dt.tz_convert(policy.reporting_timezone).dt.strftime("%Y-%m")
    lots["expiry_period"] = expiry_period.astype(object).where(expires.notna(), None)
    lots["expires_at"] = expires
    lots["purchased_at"] = pd.to_datetime(lots["purchased_at"]).dt.tz_localize("UTC")
    lots["value_remaining"] = lots["amount_minor"] - lots["usage_value_minor"] - lots["breakage_minor"]
    return lots


def waterfall(store: Store, period: str, policy: Policy) -> list[dict]:
    months = _future_months(period)
    lots = _open_lots(store, period, policy)
    columns = [*months, "thereafter"]
    spreads = {("contractual expiry", currency): dict.fromkeys(columns, 0)
               for currency in sorted(set(lots["currency"]))}
    spreads |= {("burn forecast", currency): dict.fromkeys(columns, 0)
                for currency in sorted(set(lots["currency"]))}
    for lot in lots.itertuples(index=False):
        column = lot.expiry_period if lot.expiry_period in months else "thereafter"
        spreads[("contractual expiry", lot.currency)][column] += int(lot.value_remaining)
    for (currency, month), value in _burn_forecast(store, period, policy, lots, months).items():
        spreads[("burn forecast", currency)][month] += value
    rows = []
    for (method, currency), spread in spreads.items():
        total = sum(spread.values())
        rows.append({"method": method, "currency": currency,
                     **{column: format_minor(spread[column], currency) for column in columns},
                     "total": format_minor(total, currency)})
    return rows


def _burn_forecast(store: Store, period: str, policy: Policy, lots: pd.DataFrame,
                   months: list[str]) -> dict[tuple[str, str], int]:
    _, following = parse_period(period)
    last_day = following - timedelta(days=1)
    rates = store.read_frame("""
        SELECT customer_id, SUM(credits_micro) AS credits FROM burn_slices
        WHERE business_date > :start AND business_date <= :end GROUP BY customer_id
    """, start=last_day - timedelta(days=TRAILING_DAYS), end=last_day)
    rate_of = {row.customer_id: Fraction(int(row.credits), TRAILING_DAYS)
               for row in rates.itertuples(index=False)}
    month_days = [_days_in(month) for month in months]
    spread: dict[tuple[str, str], int] = {}
    if lots.empty:
        return spread
    lots = lots.assign(burn_rank=burn_order_ranks(lots, policy.burn_order))
    for customer_id, customer_lots in lots.sort_values("burn_rank").groupby("customer_id", sort=True):
        rate = rate_of.get(customer_id, Fraction(0))
        remaining = {lot.purchase_id: int(lot.credits_remaining)
                     for lot in customer_lots.itertuples(index=False)}
        used = {lot.purchase_id: int(lot.credits_used_micro)
                for lot in customer_lots.itertuples(index=False)}
        for month, days in zip(months, month_days, strict=True):
            demand = int(rate * days)  # rounded down to whole micro-credits
            for lot in customer_lots.itertuples(index=False):
                if demand == 0:
                    break
                if lot.expiry_period is not None and lot.expiry_period < month:
                    continue
                taken = min(demand, remaining[lot.purchase_id])
                if taken:
                    before = value_to_date_minor(lot.amount_minor, used[lot.purchase_id], lot.credits_micro)
                    used[lot.purchase_id] += taken
                    remaining[lot.purchase_id] -= taken
                    after = value_to_date_minor(lot.amount_minor, used[lot.purchase_id], lot.credits_micro)
                    key = (lot.currency, month)
                    spread[key] = spread.get(key, 0) + after - before
                    demand -= taken
        for lot in customer_lots.itertuples(index=False):
            leftover = lot.amount_minor - value_to_date_minor(lot.amount_minor, used[lot.purchase_id],
                                                              lot.credits_micro)
            month = lot.expiry_period if lot.expiry_period in months else "thereafter"
            spread[(lot.currency, month)] = spread.get((lot.currency, month), 0) + int(leftover)
    return spread


def _days_in(month: str) -> int:
    first, _ = parse_period(month)
    return calendar.monthrange(first.year, first.month)[1]

