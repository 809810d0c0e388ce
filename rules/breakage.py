"""Proportional breakage: expected breakage recognised in step with the credits used.

ASC 606-10-55-48, first sentence. For a lot of a product whose policy method is
`proportional`, with the expected breakage rate r in force today:

    breakage to date = value x r x used / (credits x (1 - r)),

rounded half to even to the minor unit and capped at the value not yet recognised
(amount less usage revenue and refunds). Refunds take their credits and value out of
the lot first: value = amount - refunded value, credits = granted - refunded. Each
night posts the change from the figure already booked, so a change of estimate is a
cumulative catch-up and may be negative. At expiry whatever is still deferred becomes
breakage (rules/expiry.py); a lot used to the end has a cap of zero, so it ends with
usage revenue equal to its amount and no breakage.

The rate and the policy version are recorded on every accrual (`breakage_accruals`, and
the entry's `source_ref` and `policy_version`). Lots in an unclaimed-property country
never accrue: their expired value is owed to the state, not earned.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import pandas as pd

from ledger.accounts import ChartOfAccounts
from ledger.domain import LotKind
from ledger.journal import EntryKind, JournalBatch
from ledger.money import divide_round_half_even_array
from ledger.periods import BusinessDay
from rules.lot_state import manual_change_minor
from rules.policy import Policy
from rules.postings import journal_from_lines, line_frame


@dataclass(frozen=True)
class AccruedBreakage:
    # purchase_id, rate, credits_used_micro, breakage_to_date_minor, change_minor
    accruals: pd.DataFrame
    journal: JournalBatch


def proportional_breakage_to_date(value_minor, rate: Fraction, used_micro, credits_micro,
                                  cap_minor) -> np.ndarray:
    """value x rate x used / (credits x (1 - rate)), half even, at most `cap`; exact integers."""
    value = np.asarray(value_minor, dtype=object)
    used = np.asarray(used_micro, dtype=object)
    credits = np.asarray(credits_micro, dtype=object)
    numerators = value * rate.numerator * used
    denominators = credits * (rate.denominator - rate.numerator)
    has_credits = (credits > 0).astype(bool)
    expected = np.zeros(len(value), dtype=np.int64)
    if has_credits.any():
        expected[has_credits] = divide_round_half_even_array(numerators[has_credits],
                                                             denominators[has_credits])
    return np.minimum(expected, np.asarray(cap_minor, dtype=np.int64))


def proportional_products(policy: Policy, products: Iterable[str]) -> list[str]:
    """The products among `products` whose breakage the policy accrues proportionally."""
    return [product for product in products
            if policy.breakage_rule(product).method == "proportional"]


def accrue_breakage(lots: pd.DataFrame, day: BusinessDay, policy: Policy) -> AccruedBreakage:
    """lots: at least every open lot of a proportional product and every lot used today,
    with its state after today's burn (`lots_changing_today`, creditbooks/night/lots.py)."""
    proportional = proportional_products(policy, lots["product"].unique())
    accruing = lots[lots["product"].isin(proportional) & (lots["kind"] == LotKind.PAID)
                    & ~lots["country"].isin(policy.escheat_countries)]
    if accruing.empty:
        return AccruedBreakage(_empty_accruals(), JournalBatch.empty())
    parts = []
    for product, group in accruing.groupby("product", sort=True):
        rate = policy.breakage_rule(product).rate_on(day.business_date)
        # A manual journal's change to the lot's deferred value changes what may break.
        carried = group["amount_minor"] + manual_change_minor(group)
        value = carried - group["refunded_value_minor"]
        credits = group["credits_micro"] - group["credits_refunded_micro"]
        cap = carried - group["usage_value_minor"] - group["refunded_value_minor"]
        target = proportional_breakage_to_date(value, Fraction(rate), group["credits_used_micro"],
                                               credits, cap.clip(lower=0))
        parts.append(pd.DataFrame({
            "purchase_id": group["purchase_id"].to_numpy(),
            "customer_id": group["customer_id"].to_numpy(),
            "currency": group["currency"].to_numpy(),
            "rate": str(rate),
            "credits_used_micro": group["credits_used_micro"].to_numpy(),
            "breakage_to_date_minor": target,
            "change_minor": target - group["breakage_minor"].to_numpy(),
        }))
    accruals = pd.concat(parts, ignore_index=True)
    accruals = accruals[accruals["change_minor"] != 0].sort_values("purchase_id")
    return AccruedBreakage(accruals.reset_index(drop=True),
                           _accrual_journal(accruals, day, policy.accounts))


def rate_notes(lots: pd.DataFrame, day: BusinessDay, policy: Policy) -> pd.Series:
    """'proportional at rate r' for each lot of a proportional product, by purchase id."""
    notes = {product: f"proportional at rate {rule.rate_on(day.business_date)}"
             for product in lots["product"].unique()
             if (rule := policy.breakage_rule(product)).method == "proportional"}
    noted = lots[lots["product"].isin(notes)]
    return pd.Series(noted["product"].map(notes).to_numpy(), index=noted["purchase_id"].to_numpy(),
                     dtype=object)


def _accrual_journal(accruals: pd.DataFrame, day: BusinessDay,
                     accounts: ChartOfAccounts) -> JournalBatch:
    entry_id = "breakage/" + accruals["purchase_id"] + "/" + day.business_date.isoformat()
    common = {"entry_id": entry_id, "customer_id": accruals["customer_id"],
              "currency": accruals["currency"], "purchase_id": accruals["purchase_id"]}
    lines = pd.concat([
        line_frame(account=accounts.deferred_revenue, amount_minor=accruals["change_minor"],
                   **common),
        line_frame(account=accounts.breakage_revenue, amount_minor=-accruals["change_minor"],
                   **common),
    ], ignore_index=True).sort_values("entry_id", kind="stable")
    source_ref = pd.Series(
        (accruals["purchase_id"] + " proportional at rate " + accruals["rate"]).to_numpy(),
        index=entry_id.to_numpy())
    return journal_from_lines(lines, EntryKind.BREAKAGE, day, source_ref)


def _empty_accruals() -> pd.DataFrame:
    return pd.DataFrame({"purchase_id": pd.Series(dtype=object),
                         "customer_id": pd.Series(dtype=object),
                         "currency": pd.Series(dtype=object), "rate": pd.Series(dtype=object),
                         "credits_used_micro": pd.Series(dtype="int64"),
                         "breakage_to_date_minor": pd.Series(dtype="int64"),
                         "change_minor": pd.Series(dtype="int64")})
