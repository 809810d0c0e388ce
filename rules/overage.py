"""Overage: usage beyond a customer's credits, treated as the policy says for that customer.

- `exception` (the default): recorded as uncovered usage for a person to act on; no entry.
- `arrears`: billed at the policy's list price per credit in the customer's currency (that
  of their latest purchase, else `usage.overage_currency`): Dr receivables / Cr overage
  revenue, one entry per customer and day, a line per meter. Each meter's amount is
  credits x price rounded half to even to the minor unit, and the receivable is their sum.
- `negative_balance`: the credits are owed. The customer's next purchase pays them first:
  at the end of the day a purchase lands, owed credits (oldest balance, by meter) burn
  from that day's new lots, in burn order, and are recognised then as usage revenue at
  those lots' per-credit value (`overage_settlements`). Usage the same day burns the new
  lot before owed credits from that day do; owed credits from earlier days are settled
  the first day a purchase arrives.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pandas as pd

from ledger.accounts import ChartOfAccounts
from ledger.journal import EntryKind, JournalBatch
from ledger.money import divide_round_half_even_array, minor_unit_exponent
from ledger.periods import BusinessDay
from rules.burn import BurnResult, burn
from rules.policy import Policy
from rules.postings import journal_from_lines, line_frame


class OverageRuleError(RuntimeError):
    """The policy cannot price an overage it must bill; nothing of the night is posted."""


def charge_arrears(uncovered: pd.DataFrame, currency_of: pd.Series, day: BusinessDay,
                   policy: Policy) -> tuple[pd.DataFrame, JournalBatch]:
    """uncovered: customer_id, meter, credits_micro of `arrears` customers;
    currency_of: customer_id -> currency of their latest purchase."""
    if uncovered.empty:
        return uncovered.assign(price_per_credit="", amount_minor=0, currency=""), \
            JournalBatch.empty()
    charges = uncovered[["customer_id", "meter", "credits_micro"]].copy()
    charges["currency"] = charges["customer_id"].map(currency_of).fillna(policy.overage_currency)
    missing = sorted(set(charges["currency"]) - set(policy.overage_price_per_credit))
    if missing:
        customer = charges.loc[charges["currency"] == missing[0], "customer_id"].iloc[0]
        raise OverageRuleError(f"usage.overage_price_per_credit has no price in "
                               f"{', '.join(missing)}, needed to bill overage of customer "
                               f"{customer}; nothing was posted")
    charges["amount_minor"] = np.int64(0)
    for currency, rows in charges.groupby("currency").groups.items():
        # amount = credits_micro / 10**6 x price x 10**exponent, half even.
        price = Fraction(policy.overage_price_per_credit[currency])
        credits = charges.loc[rows, "credits_micro"].to_numpy(dtype=object)
        charges.loc[rows, "amount_minor"] = divide_round_half_even_array(
            credits * price.numerator * 10 ** minor_unit_exponent(currency),
            np.full(len(rows), price.denominator * 10**6, dtype=object))
    charges["price_per_credit"] = charges["currency"].map(
        {currency: str(price) for currency, price in policy.overage_price_per_credit.items()})
    return charges, _arrears_journal(charges, day, policy.accounts)


def _arrears_journal(charges: pd.DataFrame, day: BusinessDay,
                     accounts: ChartOfAccounts) -> JournalBatch:
    charges = charges.sort_values(["customer_id", "meter"])
    entry_id = "overage/" + charges["customer_id"] + "/" + day.business_date.isoformat()
    charges = charges.assign(entry_id=entry_id)
    receivable = charges.groupby(["entry_id", "customer_id", "currency"], as_index=False)[
        "amount_minor"].sum()
    lines = pd.concat([
        line_frame(receivable["entry_id"], receivable["customer_id"], accounts.receivables,
                   receivable["currency"], receivable["amount_minor"]),
        line_frame(charges["entry_id"], charges["customer_id"], accounts.overage_revenue,
                   charges["currency"], -charges["amount_minor"], meter=charges["meter"]),
    ], ignore_index=True).sort_values("entry_id", kind="stable")
    source_ref = pd.Series((receivable["customer_id"] + "/" + day.business_date.isoformat()
                            ).to_numpy(), index=receivable["entry_id"].to_numpy())
    return journal_from_lines(lines, EntryKind.OVERAGE, day, source_ref)


def settle_owed(owed: pd.DataFrame, new_lots: pd.DataFrame, day: BusinessDay) -> BurnResult:
    """Burn owed credits from the day's new lots, as of the end of the day.

    owed: customer_id, meter, credits_micro; new_lots: lots purchased today with
    credits_available_micro (after today's usage) and burn_rank. What the new lots cannot
    pay stays owed (the result's `uncovered`).
    """
    events = owed.assign(
        event_id="owed/" + owed["meter"],
        occurred_at=day.ends_at_utc - pd.Timedelta(microseconds=1))
    return burn(events[["event_id", "customer_id", "occurred_at", "meter", "credits_micro"]],
                new_lots, day)



