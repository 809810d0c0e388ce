"""Estimated versus actual breakage of expired lots, per product: the estimate under review.

Under the proportional method breakage is recognised from an expected rate (a portfolio
estimate, ASC 606-10-55-48). Once lots have expired, what actually lapsed is known;
this report sets it beside what the rate in force at each lot's expiry expected, so
accountants can see whether the estimate needs to change. Value is what the customer
paid net of refunds; lots whose expired value went to unclaimed property are not
breakage and are left out.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from ledger.domain import LotKind
from ledger.money import format_minor
from ledger.periods import Period
from ledger.store import Store
from reports.subledger import lot_state_frame
from rules.policy import Policy

_RATE_PLACES = Decimal("0.0001")


def breakage_estimates(store: Store, period: Period, policy: Policy) -> list[dict]:
    """Per product and currency, for every lot expired from the ledger's start to the end of
    the period: cumulative, not the period's alone (`cumulative_to` says to when)."""
    following = Period(period).following_first_day
    lots = lot_state_frame(store, as_of=following - timedelta(days=1))
    expired = lots[lots["expired_on"].notna() & (lots["escheat_minor"] == 0)
                   & (lots["kind"] == LotKind.PAID)].copy()
    if expired.empty:
        return []
    # SQLite returns dates as text, PostgreSQL as dates.
    expired["expired_on"] = [date.fromisoformat(str(day)) for day in expired["expired_on"]]
    rate_of = {(product, day): policy.breakage_rule(product).rate_on(day)
               for product, day in set(zip(expired["product"], expired["expired_on"], strict=True))}
    expired["rate"] = [rate_of[key] for key in zip(expired["product"], expired["expired_on"],
                                                   strict=True)]
    expired["value"] = expired["amount_minor"] - expired["refunded_value_minor"]
    expired["estimated"] = [int((Decimal(int(value)) * rate).to_integral_value(ROUND_HALF_EVEN))
                            for value, rate in zip(expired["value"], expired["rate"], strict=True)]
    rows = []
    for (product, currency), group in expired.groupby(["product", "currency"], sort=True):
        value = int(group["value"].sum())
        estimated = int(group["estimated"].sum())
        actual = int(group["breakage_minor"].sum())
        rows.append({
            "cumulative_to": str(following - timedelta(days=1)),
            "product": product, "currency": currency,
            "method": policy.breakage_rule(product).method, "lots_expired": len(group),
            "value": format_minor(value, currency),
            "estimated_breakage": format_minor(estimated, currency),
            "actual_breakage": format_minor(actual, currency),
            "difference": format_minor(actual - estimated, currency),
            "estimated_rate": _rate(estimated, value), "actual_rate": _rate(actual, value),
        })
    return rows


def _rate(part: int, whole: int) -> str:
    if whole == 0:
        return ""
    return str((Decimal(part) / Decimal(whole)).quantize(_RATE_PLACES, ROUND_HALF_EVEN))



