"""Unit economics of credits: what a credit costs to serve, what it earns, how usage behaves.

Everything comes from the books (burn slices, lots, expiries, the usage aggregates and
the archive) plus the cost lines, so the figures reconcile to the close reports: usage
revenue and credits burned here are the ledger's. "In the period" means posted into it.
Ratios are exact decimals rounded half even at the end; money per credit is in major
units. Definitions (also in the README):

- effective price per credit = usage revenue / paid credits burned
- cost per credit = all costs / credits burned (credits are the unit of service)
- gross margin per credit = price per credit - variable cost per credit; gross margin % =
  gross margin per credit / price per credit; profit per credit = (usage revenue +
  breakage - all costs) / credits burned
- a shared cost line (meter `*`) is split over the meters in proportion to the credits
  each burned on the cost's date (largest remainder, exact)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pandas as pd
import pyarrow.compute as pc

from intake.archive import archived_path_in, read_partition_table
from ledger.domain import CostType, LotKind
from ledger.money import (
    allocate_largest_remainder,
    format_micro_credits,
    format_minor,
    minor_unit_exponent,
)
from ledger.once import computed_once
from ledger.periods import Period, business_day
from ledger.store import Store
from reports.subledger import lot_state_frame
from rules.policy import Policy

RUNWAY_ALERT_DAYS = 14
TRAILING_DAYS = 30
UNALLOCATED = "(no usage that day)"


def _ratio(numerator, denominator, places: int = 4) -> str:
    if not denominator:
        return ""
    return str((Decimal(numerator) / Decimal(denominator)).quantize(Decimal(1).scaleb(-places),
                                                                    ROUND_HALF_EVEN))


def per_credit(amount_minor: int, currency: str, credits_micro: int) -> str:
    """Major units per credit, 6 places: minor / 10**exponent over micro / 10**6."""
    if not credits_micro:
        return ""
    value = Decimal(amount_minor).scaleb(6 - minor_unit_exponent(currency)) / Decimal(credits_micro)
    return str(value.quantize(Decimal("0.000001"), ROUND_HALF_EVEN))


def _shift(period: Period, months: int) -> Period:
    """The period `months` after this one (before it, when negative)."""
    shifted = Period(period)
    for _ in range(abs(months)):
        shifted = shifted.next() if months > 0 else shifted.previous()
    return shifted


def usage_slices(store: Store, period: Period) -> pd.DataFrame:
    """Credits burned in the period and their value, summed over its days per customer,
    meter and lot, with the lot's product, kind and price (amount and credits)."""
    # Joined on the business date too (here and below): a night's slices and usage totals
    # carry its date, the first column of their key, so a period's rows are found by date
    # instead of by a scan of every period's.
    burned = store.read_frame("""
        SELECT s.customer_id, s.meter, s.purchase_id, s.currency,
               SUM(s.credits_micro) AS credits_micro, SUM(s.value_minor) AS value_minor
        FROM burn_slices s JOIN batches b ON b.batch_id = s.batch_id
          AND b.business_date = s.business_date
        WHERE b.posting_period = :period
        GROUP BY s.customer_id, s.meter, s.purchase_id, s.currency
    """, period=period)
    lots = store.read_frame("SELECT purchase_id, product, kind, amount_minor AS lot_amount, "
                            "credits_micro AS lot_credits FROM lots") if len(burned) else \
        pd.DataFrame(columns=["purchase_id", "product", "kind", "lot_amount", "lot_credits"])
    frame = burned.merge(lots, on="purchase_id", how="inner", validate="many_to_one")
    return frame[["customer_id", "meter", "product", "kind", "currency", "credits_micro",
                  "value_minor", "lot_amount", "lot_credits", "purchase_id"]].astype(
        {"credits_micro": "int64", "value_minor": "int64", "lot_amount": "int64",
         "lot_credits": "int64"})


def allocated_costs(store: Store, period: Period) -> pd.DataFrame:
    """Cost lines dated in the period, shared lines split over meters by credits burned."""
    first, following = Period(period).first_day, Period(period).following_first_day
    costs = store.read_frame("SELECT cost_id, cost_date, meter, amount_minor, currency, cost_type "
                             "FROM costs WHERE cost_date >= :first AND cost_date < :following "
                             "ORDER BY cost_id", first=first, following=following)
    # Only the days with a shared cost line need the day's credits by meter.
    burned = store.read_frame("""
        SELECT business_date, meter, SUM(credits_micro) AS credits FROM burn_slices
        WHERE business_date IN (SELECT cost_date FROM costs WHERE meter = '*'
                                AND cost_date >= :first AND cost_date < :following)
        GROUP BY business_date, meter ORDER BY business_date, meter
    """, first=first, following=following)
    by_day = {str(day)[:10]: group for day, group in burned.groupby("business_date")}
    rows = []
    for cost in costs.itertuples(index=False):
        if cost.meter != "*":
            rows.append((cost.cost_id, cost.meter, int(cost.amount_minor), cost.currency, cost.cost_type))
            continue
        day = by_day.get(str(cost.cost_date)[:10])
        if day is None or int(day["credits"].sum()) == 0:
            rows.append((cost.cost_id, UNALLOCATED, int(cost.amount_minor), cost.currency,
                         cost.cost_type))
            continue
        parts = allocate_largest_remainder(int(cost.amount_minor), [int(c) for c in day["credits"]])
        rows += [(cost.cost_id, meter, part, cost.currency, cost.cost_type)
                 for meter, part in zip(day["meter"], parts, strict=True)]
    return pd.DataFrame(rows, columns=["cost_id", "meter", "amount_minor", "currency", "cost_type"])


def _figures(store: Store, period: Period, policy: Policy) -> dict:
    usage = usage_slices(store, period)
    costs = allocated_costs(store, period)
    events = store.read_frame("""
        SELECT u.customer_id, u.meter, SUM(u.event_count) AS events FROM usage_daily u
        JOIN batches b ON b.batch_id = u.batch_id AND b.business_date = u.business_date
        WHERE b.posting_period = :period
        GROUP BY u.customer_id, u.meter
    """, period=period)
    expired = store.read_frame("""
        SELECT o.currency, SUM(x.value_minor) AS breakage, SUM(o.amount_minor) AS amount
        FROM lot_expiries x JOIN lots o ON o.purchase_id = x.purchase_id
        JOIN batches b ON b.batch_id = x.batch_id WHERE b.posting_period = :period
        AND o.kind = :paid GROUP BY o.currency
    """, period=period, paid=LotKind.PAID).set_index("currency")
    purchased = store.read_frame("""
        SELECT o.kind, SUM(o.credits_micro) AS credits FROM lots o JOIN batches b
        ON b.batch_id = o.batch_id WHERE b.posting_period = :period GROUP BY o.kind
    """, period=period).set_index("kind")["credits"]
    expired_credits = store.read_frame("""
        SELECT COALESCE(SUM(x.credits_micro), 0) AS credits FROM lot_expiries x
        JOIN batches b ON b.batch_id = x.batch_id WHERE b.posting_period = :period
    """, period=period)["credits"].iloc[0]
    earlier = store.read_frame("""
        SELECT DISTINCT s.customer_id FROM burn_slices s JOIN batches b ON b.batch_id = s.batch_id
          AND b.business_date = s.business_date WHERE b.posting_period < :period
    """, period=period)["customer_id"]
    paid = usage[usage["kind"] == LotKind.PAID]
    above = paid[_below_base_price(paid, policy.base_tier_price_per_credit)]
    return {
        "usage": usage, "costs": costs, "events": events,
        "credits": int(usage["credits_micro"].sum()),
        "paid_credits_purchased": int(purchased.get(LotKind.PAID, 0)),
        "promotional_credits_granted": int(purchased.get(LotKind.PROMOTIONAL, 0)),
        "credits_expired": int(expired_credits),
        "event_count": int(events["events"].sum()) if len(events) else 0,
        "active": set(events["customer_id"]) | set(usage["customer_id"]),
        "new_active": (set(events["customer_id"]) | set(usage["customer_id"])) - set(earlier),
        "promo_credits": int(usage.loc[usage["kind"] == LotKind.PROMOTIONAL, "credits_micro"].sum()),
        "revenue": usage.groupby("currency")["value_minor"].sum().to_dict(),
        "paid_credits": paid.groupby("currency")["credits_micro"].sum().to_dict(),
        "above_base": above.groupby("currency")["value_minor"].sum().to_dict(),
        "all_costs": costs.groupby("currency")["amount_minor"].sum().to_dict(),
        "variable_costs": costs[costs["cost_type"] == CostType.VARIABLE].groupby("currency")[
            "amount_minor"].sum().to_dict(),
        "breakage": expired["breakage"].to_dict() if len(expired) else {},
        "expired_amount": expired["amount"].to_dict() if len(expired) else {},
    }


def _below_base_price(paid: pd.DataFrame, base_price: dict[str, Decimal]) -> np.ndarray:
    """Which slices come from lots priced per credit below the currency's base tier.

    Decided exactly once per distinct lot price (amount, credits, currency), not per slice.
    """
    keys = ["lot_amount", "lot_credits", "currency"]
    prices = paid[keys].drop_duplicates()
    below = [Decimal(amount) / Decimal(credits) * Decimal(10) ** (6 - minor_unit_exponent(currency))
             < base_price.get(currency, Decimal(0))
             for amount, credits, currency in prices.itertuples(index=False, name=None)]
    decided = pd.Series(below, index=pd.MultiIndex.from_frame(prices), dtype=bool)
    return decided.reindex(pd.MultiIndex.from_frame(paid[keys])).to_numpy(dtype=bool)


def period_figures(store: Store, policy: Policy) -> Callable[[Period], dict]:
    """The figures of a period, computed once however many reports ask (one close, on
    however many threads)."""
    return computed_once(lambda period: _figures(store, period, policy))


def _metrics(figures: dict, previous: dict | None) -> dict[tuple[str, str], str]:
    credits = figures["credits"]
    active = figures["active"]
    by_customer = figures["usage"].groupby("customer_id")["credits_micro"].sum().sort_values(
        ascending=False)
    metrics = {
        ("credits purchased (paid)", ""): format_micro_credits(figures["paid_credits_purchased"]),
        ("credits granted (promotional)", ""): format_micro_credits(
            figures["promotional_credits_granted"]),
        ("credits burned", ""): format_micro_credits(credits),
        ("credits expired", ""): format_micro_credits(figures["credits_expired"]),
        ("usage events", ""): str(figures["event_count"]),
        ("active customers", ""): str(len(active)),
        ("new active customers", ""): str(len(figures["new_active"])),
        ("average credits burned per active customer", ""): _ratio(credits, len(active) * 10**6, 6),
        ("promotional share of credits burned", ""): _ratio(figures["promo_credits"], credits),
        ("top 5 customers' share of credits burned", ""): _ratio(int(by_customer.head(5).sum()), credits),
        ("top 10 customers' share of credits burned", ""): _ratio(int(by_customer.head(10).sum()), credits),
    }
    if previous is not None:
        stayed = active & previous["active"]
        now = int(figures["usage"].loc[figures["usage"]["customer_id"].isin(stayed), "credits_micro"].sum())
        before = int(previous["usage"].loc[previous["usage"]["customer_id"].isin(stayed),
                                           "credits_micro"].sum())
        metrics[("expansion usage % of existing customers", "")] = _ratio((now - before) * 100, before, 2)
    currencies = sorted(set(figures["revenue"]) | set(figures["all_costs"]) | set(figures["breakage"]))
    for currency in currencies:
        revenue = int(figures["revenue"].get(currency, 0))
        paid_credits = int(figures["paid_credits"].get(currency, 0))
        all_costs = int(figures["all_costs"].get(currency, 0))
        variable = int(figures["variable_costs"].get(currency, 0))
        breakage = int(figures["breakage"].get(currency, 0))
        price = per_credit(revenue, currency, paid_credits)
        has_costs = currency in figures["all_costs"]  # no cost lines is "unknown", not "free"
        variable_per_credit = per_credit(variable, currency, credits) if has_costs else ""
        margin = (Decimal(price) - Decimal(variable_per_credit)) if price and variable_per_credit else None
        revenue_by_customer = figures["usage"][figures["usage"]["currency"] == currency].groupby(
            "customer_id")["value_minor"].sum().sort_values(ascending=False)
        metrics |= {
            ("usage revenue", currency): format_minor(revenue, currency),
            ("costs", currency): format_minor(all_costs, currency) if has_costs else "",
            ("effective price per credit", currency): price,
            ("cost per credit", currency): per_credit(all_costs, currency, credits) if has_costs else "",
            ("gross margin per credit", currency): "" if margin is None else str(margin),
            ("gross margin %", currency): "" if margin is None or not Decimal(price) else
            str((margin / Decimal(price) * 100).quantize(Decimal("0.01"), ROUND_HALF_EVEN)),
            ("profit per credit", currency): per_credit(revenue + breakage - all_costs, currency,
                                                        credits) if has_costs else "",
            ("share of usage revenue above the base tier", currency): _ratio(
                int(figures["above_base"].get(currency, 0)), revenue),
            ("breakage rate of expired lots", currency): _ratio(
                breakage, int(figures["expired_amount"].get(currency, 0))),
            ("top 5 customers' share of usage revenue", currency): _ratio(
                int(revenue_by_customer.head(5).sum()), revenue),
            ("top 10 customers' share of usage revenue", currency): _ratio(
                int(revenue_by_customer.head(10).sum()), revenue),
        }
    return metrics


def kpi_summary(store: Store, period: Period, policy: Policy,
                figures_of: Callable[[Period], dict] | None = None) -> list[dict]:
    """Each KPI for the period, the previous period and the same period a year ago."""
    figures_of = figures_of or period_figures(store, policy)
    periods = {"this_period": period, "previous_period": _shift(period, -1),
               "year_ago": _shift(period, -12)}
    figures = {name: figures_of(value) for name, value in periods.items()}
    before = {"this_period": figures["previous_period"],
              "previous_period": figures_of(_shift(period, -2)),
              "year_ago": figures_of(_shift(period, -13))}
    metrics = {name: _metrics(figures[name], before[name]) for name in periods}
    keys = list(dict.fromkeys(key for name in periods for key in metrics[name]))
    # A period before the ledger's first has no figures to compare with: "n/a", never 0.
    began = first_period(store)
    return [{"metric": metric, "currency": currency,
             **{f"{name} ({value})": "n/a" if began is None or value < began
                else metrics[name].get((metric, currency), "")
                for name, value in periods.items()}}
            for metric, currency in keys]


def first_period(store: Store) -> Period | None:
    """The period of the ledger's first nightly batch (None before any)."""
    first = store.read_frame("SELECT MIN(business_date) AS first FROM batches")["first"].iloc[0]
    return None if first is None else Period(str(first)[:7])


def kpis_by(store: Store, period: Period, dimension: str,
            usage: pd.DataFrame | None = None) -> list[dict]:
    """Volume, revenue and price by meter, product or customer; costs and margin by meter.

    usage: the period's `usage_slices`, when the caller has read them already."""
    if dimension not in ("meter", "product", "customer"):
        raise ValueError("--by takes meter, product or customer")
    column = "customer_id" if dimension == "customer" else dimension
    usage = usage_slices(store, period) if usage is None else usage
    paid = usage[usage["kind"] == LotKind.PAID]
    totals = usage.groupby([column, "currency"]).agg(credits=("credits_micro", "sum"),
                                                     revenue=("value_minor", "sum"))
    paid_credits = paid.groupby([column, "currency"])["credits_micro"].sum()
    costs = allocated_costs(store, period)
    rows = []
    for (key, currency), row in totals.iterrows():
        entry = {dimension: key, "currency": currency,
                 "credits_burned": format_micro_credits(int(row["credits"])),
                 "usage_revenue": format_minor(int(row["revenue"]), currency),
                 "price_per_credit": per_credit(int(row["revenue"]), currency,
                                                int(paid_credits.get((key, currency), 0)))}
        if dimension == "meter" and currency in set(costs["currency"]):
            meter_costs = costs[(costs["meter"] == key) & (costs["currency"] == currency)]
            cost = int(meter_costs["amount_minor"].sum())
            variable = int(meter_costs.loc[meter_costs["cost_type"] == CostType.VARIABLE,
                                           "amount_minor"].sum())
            credits = int(usage.loc[usage["meter"] == key, "credits_micro"].sum())
            price = entry["price_per_credit"]
            variable_per_credit = per_credit(variable, currency, credits)
            entry |= {"costs": format_minor(cost, currency),  # absent: no cost lines, not free
                      "cost_per_credit": per_credit(cost, currency, credits),
                      "gross_margin_per_credit": str(Decimal(price) - Decimal(variable_per_credit))
                      if price and variable_per_credit else ""}
        rows.append(entry)
    return rows


def burstiness(store: Store, period: Period, archive_root: Path, timezone: str) -> list[dict]:
    """Per meter: peak hourly credits, average hourly credits over the period, their ratio."""
    first, following = Period(period).first_day, Period(period).following_first_day
    days = store.read_frame("SELECT business_date FROM batches WHERE posting_period = :period "
                            "ORDER BY business_date", period=period)["business_date"]
    hourly_parts = []
    for day in days:
        # Summed by meter and hour in Arrow, whose kernels let go of the interpreter (the
        # other reports run meanwhile); a day's events never become Python objects.
        events = read_partition_table(
            archived_path_in(store, archive_root, "usage", pd.Timestamp(day).date()),
            ["occurred_at", "meter", "credits_micro"])
        if events is not None and events.num_rows:
            hourly_parts.append(events.append_column(
                "hour", pc.floor_temporal(events["occurred_at"], unit="hour")).group_by(
                ["meter", "hour"]).aggregate([("credits_micro", "sum")]).to_pandas())
    if not hourly_parts:
        return []
    hours = (business_day(following - timedelta(days=1), timezone).ends_at_utc
             - business_day(first, timezone).starts_at_utc) / pd.Timedelta(hours=1)
    # An hour can straddle two business days (a reporting zone offset by half an hour).
    hourly = pd.concat(hourly_parts, ignore_index=True).groupby(["meter", "hour"])[
        "credits_micro_sum"].sum()
    rows = []
    for meter, series in hourly.groupby(level=0):
        total, peak = int(series.sum()), int(series.max())
        rows.append({"meter": meter, "peak_hourly_credits": format_micro_credits(peak),
                     "average_hourly_credits": str((Decimal(total) / Decimal(int(hours)) / 10**6)
                                                   .quantize(Decimal("0.000001"), ROUND_HALF_EVEN)),
                     "peak_to_average": _ratio(peak * int(hours), total, 2)})
    return rows


def credit_runway(store: Store, period: Period) -> list[dict]:
    """Days of credits left per customer at the trailing 30-day burn rate; soonest first."""
    following = Period(period).following_first_day
    last_day = following - timedelta(days=1)
    lots = lot_state_frame(store, as_of=last_day)
    lots["remaining"] = lots["credits_remaining_micro"]
    remaining = lots.groupby("customer_id")["remaining"].sum()
    burned = store.read_frame("""
        SELECT customer_id, SUM(credits_micro) AS credits FROM burn_slices
        WHERE business_date > :start AND business_date <= :end GROUP BY customer_id
    """, start=last_day - timedelta(days=TRAILING_DAYS), end=last_day).set_index("customer_id")["credits"]
    rows = []
    for customer, credits in burned.items():
        left = int(remaining.get(customer, 0))
        days_left = Decimal(left) * TRAILING_DAYS / Decimal(int(credits))
        rows.append({"customer_id": customer, "credits_remaining": format_micro_credits(left),
                     "daily_burn": str((Decimal(int(credits)) / TRAILING_DAYS / 10**6).quantize(
                         Decimal("0.000001"), ROUND_HALF_EVEN)),
                     "days_left": str(days_left.quantize(Decimal("0.1"), ROUND_HALF_EVEN)),
                     "top_up_soon": days_left < RUNWAY_ALERT_DAYS})
    return sorted(rows, key=lambda row: (Decimal(row["days_left"]), row["customer_id"]))


@dataclass(frozen=True)
class TrendMonth:
    """One period of the KPI trends: each figure by (metric, currency), the currency ""
    for a figure in no currency (credits, customers, shares)."""

    period: Period
    figures: Mapping[tuple[str, str], str]


def kpi_trends(store: Store, period: Period, policy: Policy, months: int = 12,
               figures_of: Callable[[Period], dict] | None = None) -> list[TrendMonth]:
    """The figures the charts show for the last 12 periods, from the ledger's first on."""
    figures_of = figures_of or period_figures(store, policy)
    trends = []
    began = first_period(store) or period
    for offset in range(months - 1, -1, -1):
        month = _shift(period, -offset)
        if month < began:  # the ledger had not begun: no figures, not zeros
            continue
        trends.append(TrendMonth(month, MappingProxyType(_metrics(figures_of(month), None))))
    return trends

