"""The deferred revenue waterfall: when the closing balance is expected to become revenue.

Twelve monthly columns after the period plus "thereafter", two ways:
- contractual expiry: each open lot's remaining value in the month it expires (never
  expiring, or later than twelve months: thereafter). This is when it becomes revenue at
  the latest.
- burn forecast: each customer keeps burning at its trailing 30-day rate (credits per
  day, rounded down to whole micro-credits per month), through its lots in burn order;
  a lot's value follows the same cumulative rule as real usage (rules/lot_state.py, a
  manual journal's change to the lot included), and whatever a lot still holds when it
  expires is breakage in its expiry month.
Both spread each lot's remaining value exactly, so every row sums to the closing balance.
"""

from __future__ import annotations

from datetime import timedelta
from itertools import groupby
from operator import itemgetter

import pandas as pd

from ledger.money import allocate_largest_remainder, format_minor
from ledger.periods import Period
from ledger.store import Store
from reports.line_totals import line_totals, up_to
from reports.subledger import lot_state_frame
from rules.burn import burn_order_ranks
from rules.fx import functional_owed_minor, rates_in_minor
from rules.lot_state import consumed_value_minor
from rules.policy import Policy

MONTHS_AHEAD = 12
TRAILING_DAYS = 30


def _future_months(period: Period) -> list[Period]:
    months, month = [], Period(period)
    for _ in range(MONTHS_AHEAD):
        month = month.next()
        months.append(month)
    return months


def _open_lots(store: Store, period: Period, policy: Policy) -> pd.DataFrame:
    following = Period(period).following_first_day
    lots = lot_state_frame(store, as_of=following - timedelta(days=1))
    lots["credits_remaining"] = lots["credits_remaining_micro"]
    lots = lots[lots["credits_remaining"] > 0].copy()
    expires = pd.to_datetime(lots["expires_at"]).dt.tz_localize("UTC")
    expiry_period = expires.dt.tz_convert(policy.reporting_timezone).dt.strftime("%Y-%m")
    lots["expiry_period"] = expiry_period.astype(object).where(expires.notna(), None)
    lots["expires_at"] = expires
    lots["purchased_at"] = pd.to_datetime(lots["purchased_at"]).dt.tz_localize("UTC")
    lots["value_remaining"] = lots["value_remaining_minor"]
    return lots


def waterfall(store: Store, period: Period, policy: Policy, functional: bool = False) -> list[dict]:
    """The closing deferred balance by when it is expected to become revenue, per method
    and currency; or, with `functional`, in the policy's functional currency (see
    `_in_functional`)."""
    months = _future_months(period)
    lots = _open_lots(store, period, policy)
    columns = [*months, "thereafter"]
    parts = _lot_spreads(store, period, policy, lots, months)
    if functional:
        parts = _in_functional(store, period, policy, parts, lots, columns)
        currencies = [policy.functional_currency] if len(lots) else []
    else:
        currencies = sorted(set(lots["currency"]))
    totals = parts.groupby(["method", "currency", "column"])["value_minor"].sum()
    rows = []
    for method in ("contractual expiry", "burn forecast"):
        for currency in currencies:
            spread = {column: int(totals.get((method, currency, column), 0)) for column in columns}
            rows.append({"method": method, "currency": currency,
                         **{column: format_minor(spread[column], currency) for column in columns},
                         "total": format_minor(sum(spread.values()), currency)})
    return rows


def _lot_spreads(store: Store, period: Period, policy: Policy, lots: pd.DataFrame,
                 months: list[Period]) -> pd.DataFrame:
    """Each open lot's remaining value by the column it is expected in, both methods: one
    row per method, lot and column (method, purchase_id, currency, column, value_minor)."""
    expiry_column = lots["expiry_period"].where(lots["expiry_period"].isin(months), "thereafter")
    contractual = pd.DataFrame({"method": "contractual expiry",
                                "purchase_id": lots["purchase_id"].to_numpy(),
                                "currency": lots["currency"].to_numpy(),
                                "column": expiry_column.to_numpy(),
                                "value_minor": lots["value_remaining"].astype("int64").to_numpy()})
    forecast = _burn_forecast(store, period, policy, lots, months)
    forecast = pd.DataFrame(
        [("burn forecast", purchase_id, currency, column, value)
         for (purchase_id, currency, column), value in forecast.items()],
        columns=["method", "purchase_id", "currency", "column", "value_minor"])
    return pd.concat([contractual, forecast], ignore_index=True).astype(
        {"value_minor": "int64", "column": object})


def _in_functional(store: Store, period: Period, policy: Policy, parts: pd.DataFrame,
                   lots: pd.DataFrame, columns: list) -> pd.DataFrame:
    """Each lot's expected recognition in the functional currency at that lot's own
    purchase-date rate: deferred revenue is non-monetary, carried at the historical rate
    and never remeasured (ASC 830; IAS 21; IFRIC 22), so one average rate per currency
    would misstate when the functional balance leaves.

    Rounding: the same cumulative rule the nights post with (rules/fx.py): a lot holding
    `owed` is carried at round(amount x rate) - round((amount - owed) x rate), half even,
    and each column moves it from what the lot owes before that column to what it owes
    after. A lot's columns therefore add up to exactly its carried functional balance, as
    its own future postings will, with no penny leaking between months.
    """
    functional_currency = policy.functional_currency
    position = {column: index for index, column in enumerate(columns)}
    parts = parts.assign(position=parts["column"].map(position)).sort_values(
        ["method", "purchase_id", "position"], kind="stable")
    lot = lots.set_index("purchase_id")
    rates = store.read_frame("SELECT purchase_id, rate_to_functional FROM lots").set_index(
        "purchase_id")["rate_to_functional"]
    amount_minor = parts["purchase_id"].map(lot["amount_minor"]).to_numpy(dtype=object)
    owed_after = (parts["purchase_id"].map(lot["value_remaining"])
                  - parts.groupby(["method", "purchase_id"])["value_minor"].cumsum())
    owed_before = owed_after + parts["value_minor"]
    rate = rates_in_minor(parts["purchase_id"].map(rates), parts["currency"], functional_currency)
    converted = parts.assign(
        currency=functional_currency,
        value_minor=(functional_owed_minor(amount_minor, owed_before.to_numpy(dtype=object), rate)
                     - functional_owed_minor(amount_minor, owed_after.to_numpy(dtype=object),
                                             rate)).astype("int64"))
    return _tie_to_ledger(store, period, policy, converted, columns)


def _tie_to_ledger(store: Store, period: Period, policy: Policy, converted: pd.DataFrame,
                   columns: list) -> pd.DataFrame:
    """Make each method's functional waterfall add up to the GL's functional closing
    deferred balance, the figure the functional balance sheet shows. The lots' columns
    already do when every deferred line was posted by the nights' rule; a line the lots'
    rates do not explain (a manual journal's functional amount as its preparer translated
    it, a line on no lot) leaves a difference, which is allocated over the columns by
    largest remainder in proportion to their size (or to "thereafter" if all are empty),
    so the disclosure ties without moving any lot's figure by more than its share."""
    lines = up_to(line_totals(store, period), period, published_only=True)
    ledger_minor = -int(lines.loc[lines["account"] == policy.accounts.deferred_revenue,
                                  "functional_minor"].sum())
    adjustments = []
    for method, parts in converted.groupby("method", sort=False):
        difference = ledger_minor - int(parts["value_minor"].sum())
        if not difference:
            continue
        by_column = parts.groupby("column")["value_minor"].sum()
        weights = [abs(int(by_column.get(column, 0))) for column in columns]
        if not any(weights):
            weights = [0] * (len(columns) - 1) + [1]
        adjustments.append(pd.DataFrame({
            "method": method, "purchase_id": "", "currency": policy.functional_currency,
            "column": columns, "value_minor": allocate_largest_remainder(difference, weights)}))
    return pd.concat([converted, *adjustments], ignore_index=True)


def _burn_forecast(store: Store, period: Period, policy: Policy, lots: pd.DataFrame,
                   months: list[Period]) -> dict[tuple[str, str, str], int]:
    """The burn forecast's spread, keyed by (purchase_id, currency, month or
    "thereafter")."""
    following = Period(period).following_first_day
    last_day = following - timedelta(days=1)
    rates = store.read_frame("""
        SELECT customer_id, SUM(credits_micro) AS credits FROM burn_slices
        WHERE business_date > :start AND business_date <= :end GROUP BY customer_id
    """, start=last_day - timedelta(days=TRAILING_DAYS), end=last_day)
    trailing_credits = dict(zip(rates["customer_id"].tolist(),
                                rates["credits"].astype("int64").tolist(), strict=True))
    month_days = [len(month.days()) for month in months]
    if lots.empty:
        return {}
    lots = lots.assign(burn_rank=burn_order_ranks(lots, policy.burn_order))
    ordered = lots.sort_values(["customer_id", "burn_rank"])
    # Plain tuples, one pass: the forecast walks each customer's lots month by month, a
    # short loop per lot (not per event), so it avoids pandas row access inside it.
    records = zip(ordered["customer_id"].tolist(), ordered["purchase_id"].tolist(),
                  ordered["expiry_period"].tolist(),
                  ordered["credits_remaining"].astype("int64").tolist(), strict=True)
    taken: list[tuple[str, str, int]] = []
    for customer_id, customer_lots in groupby(records, key=itemgetter(0)):
        taken.extend(_forecast_customer(list(customer_lots),
                                        trailing_credits.get(customer_id, 0), months,
                                        month_days))
    return _forecast_values(lots, taken, months)


def _forecast_values(lots: pd.DataFrame, taken: list[tuple[str, str, int]],
                     months: list[Period]) -> dict[tuple[str, str, str], int]:
    """Value the forecast's credits as the nights value real use (rules/lot_state.py,
    `consumed_value_minor`: from the amount, or from a manual journal's change on), each
    month's value the cumulative value after it less before it; what the lot still holds
    after forecast use (its deferred balance less that use) lapses in its expiry column,
    so each lot's spread adds up exactly to its deferred balance."""
    lot = lots.set_index("purchase_id")
    spread: dict[tuple[str, str, str], int] = {}
    if taken:
        use = pd.DataFrame(taken, columns=["purchase_id", "column", "taken_micro"])
        facts = lot.loc[use["purchase_id"]].reset_index()
        # Credits already gone (used or refunded) are where the lot's valuation starts.
        consumed_after = (facts["credits_used_micro"] + facts["credits_refunded_micro"]
                          + use.groupby("purchase_id", sort=False)["taken_micro"].cumsum())
        use["value_minor"] = (consumed_value_minor(facts, consumed_after)
                              - consumed_value_minor(facts, consumed_after - use["taken_micro"]))
        for purchase_id, column, value in zip(use["purchase_id"].tolist(),
                                              use["column"].tolist(),
                                              use["value_minor"].tolist(), strict=True):
            key = (purchase_id, lot.at[purchase_id, "currency"], column)
            spread[key] = spread.get(key, 0) + int(value)
        forecast_use = use.groupby("purchase_id")["value_minor"].sum()
    else:
        forecast_use = pd.Series(dtype="int64")
    for purchase_id, currency, expiry_period, deferred in zip(
            lot.index.tolist(), lot["currency"].tolist(), lot["expiry_period"].tolist(),
            lot["value_remaining"].astype("int64").tolist(), strict=True):
        key = (purchase_id, currency, expiry_period if expiry_period in months else "thereafter")
        spread[key] = spread.get(key, 0) + deferred - int(forecast_use.get(purchase_id, 0))
    return spread


def _forecast_customer(customer_lots: list[tuple], trailing_credits: int, months: list[Period],
                       month_days: list[int]) -> list[tuple[str, str, int]]:
    """Burn one customer's forecast demand through its lots in burn order, month by month:
    `trailing_credits` (its last 30 days' burn) / 30 a day. The credits each lot gives each
    month, in month order: (purchase_id, month, credits_micro)."""
    remaining = [lot[3] for lot in customer_lots]
    taken_by_month = []
    for month, days in zip(months, month_days, strict=True):
        demand = trailing_credits * days // TRAILING_DAYS  # rounded down to whole micro-credits
        for index, (_, purchase_id, expiry_period, _) in enumerate(customer_lots):
            if demand == 0:
                break
            if expiry_period is not None and expiry_period < month:
                continue
            taken = min(demand, remaining[index])
            if taken:
                remaining[index] -= taken
                taken_by_month.append((purchase_id, month, taken))
                demand -= taken
    return taken_by_month
