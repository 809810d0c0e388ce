"""Refunds of unused credits: judged against the lot, valued exactly, posted against cash.

A refund gives back credits a paid lot has not used. It takes effect at the start of its
business day, before that day's usage burns, so refunded credits can no longer burn.
It is refused, with the reason, when its lot is unknown or promotional (free credits
have no consideration to return), when it is dated before the purchase or after the
lot expired, or when it asks for more credits than the lot has left (several refunds of
one lot in a day are judged in `refunded_at` order, each against what the ones accepted
before it left).

Value, exactly: credits leave a lot by use or by refund, and the value of everything
that has left is amount x (used + refunded) / granted, rounded half to even; a refund
takes the change in that figure, as usage does, so usage + refunds + breakage always
sum to the amount. Its tax is the change in tax x refunded / granted. The entry: Dr
deferred revenue (value), Dr sales tax (tax), Cr cash clearing (value + tax).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from intake.validation import AMOUNT_SCALE_PLACES, first_problems
from ledger.accounts import ChartOfAccounts
from ledger.domain import LotKind
from ledger.journal import EntryKind, JournalBatch
from ledger.money import (
    format_micro_credits,
    format_minor,
    minor_unit_exponent,
    values_to_date_minor,
)
from ledger.periods import BusinessDay
from rules.lot_state import consumed_value_minor, credits_left_micro
from rules.postings import journal_from_lines, line_frame

AMOUNT_NOT_GIVEN = -1
VALUED_COLUMNS = ["refund_id", "purchase_id", "customer_id", "refunded_at", "credits_micro",
                  "value_minor", "tax_minor", "currency"]


def judge_refunds(refunds: pd.DataFrame, lots: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Value the refunds the books allow; give the others a reason.

    refunds: validated rows (refund_id, purchase_id, refunded_at, credits_micro,
    amount_scaled); lots: the lots' state at the start of the day, by purchase_id.
    Returns (refunds with customer_id, value_minor, tax_minor, currency; problems as
    index, column_name, reason).
    """
    lots = lots.set_index("purchase_id")
    lot = lots.reindex(refunds["purchase_id"].to_numpy())
    lot.index = refunds.index
    known = lot["credits_micro"].notna()
    promotional = known & (lot["kind"] == LotKind.PROMOTIONAL)
    early = known & (refunds["refunded_at"] < lot["purchased_at"])
    expired = known & lot["expires_at"].notna() & (lot["expires_at"] <= refunds["refunded_at"])
    problems = [
        (~known, "purchase_id", "is not a known purchase"),
        (promotional, "purchase_id",
         "is a promotional lot: free credits have no consideration to refund"),
        (early, "refunded_at", "is before the lot was purchased"),
        (expired, "refunded_at", "is after the lot expired; expired credits cannot be refunded"),
    ]
    refused, first = first_problems(refunds.index, problems)
    reasons = [first]
    # Plain arrays: a Series assigned to an empty frame would bring its own index along.
    kept = refunds[~refused]
    candidates = lot[~refused].drop(columns="purchase_id", errors="ignore").assign(
        purchase_id=kept["purchase_id"].to_numpy(), refund_id=kept["refund_id"].to_numpy(),
        refunded_at=kept["refunded_at"].to_numpy(),
        refund_credits_micro=kept["credits_micro"].to_numpy(),
        amount_scaled=kept["amount_scaled"].to_numpy())
    candidates = candidates.sort_values(["purchase_id", "refunded_at", "refund_id"], kind="stable")
    # Refunds of one lot are judged in order: a refused one takes nothing, so the next is
    # judged against what was left before it. Each pass refuses at most the first failing
    # refund of each lot, and so ends after as many passes as a lot has refunds.
    while True:
        left = credits_left_micro(candidates)
        taken = candidates.groupby("purchase_id", sort=False)["refund_credits_micro"].cumsum()
        too_many = candidates[taken > left].drop_duplicates("purchase_id")
        if len(too_many):
            remaining = (left - taken + candidates["refund_credits_micro"])[too_many.index]
            reasons.append(pd.DataFrame({
                "index": too_many.index, "column_name": "credits",
                "reason": [f"asks for {format_micro_credits(int(asked))} credits but lot "
                           f"{lot_id} has {format_micro_credits(max(int(have), 0))} left"
                           for asked, lot_id, have in zip(too_many["refund_credits_micro"],
                                                          too_many["purchase_id"], remaining,
                                                          strict=True)]}))
            candidates = candidates.drop(index=too_many.index)
            continue
        valued = _value(candidates)
        stated = valued["amount_scaled"] != AMOUNT_NOT_GIVEN
        computed = (valued["value_minor"] + valued["tax_minor"]) * 10 ** (
            AMOUNT_SCALE_PLACES - valued["exponent"])
        wrong = valued[stated & (valued["amount_scaled"] != computed)]
        if wrong.empty:
            break
        first = wrong.drop_duplicates("purchase_id")
        reasons.append(pd.DataFrame({"index": first.index, "column_name": "amount", "reason": [
            f"does not match the refund the books compute: "
            f"{format_minor(int(value + tax), currency)} (deferred value "
            f"{format_minor(int(value), currency)} + tax {format_minor(int(tax), currency)})"
            for value, tax, currency in zip(first["value_minor"], first["tax_minor"],
                                            first["currency"], strict=True)]}))
        candidates = candidates.drop(index=first.index)
    accepted = refunds.loc[valued.index].assign(
        customer_id=valued["customer_id"], value_minor=valued["value_minor"],
        tax_minor=valued["tax_minor"], currency=valued["currency"])
    return accepted.sort_index(), pd.concat(reasons, ignore_index=True)


def _value(candidates: pd.DataFrame) -> pd.DataFrame:
    """Each refund's value and tax: the change in the lot's cumulative figures."""
    taken = candidates.groupby("purchase_id", sort=False)["refund_credits_micro"].cumsum()
    before = taken - candidates["refund_credits_micro"]
    consumed = candidates["credits_used_micro"] + candidates["credits_refunded_micro"]
    refunded = candidates["credits_refunded_micro"]
    granted = candidates["credits_micro"]
    value = (consumed_value_minor(candidates, consumed + taken)
             - consumed_value_minor(candidates, consumed + before))
    tax = (values_to_date_minor(candidates["tax_minor"], refunded + taken, granted)
           - values_to_date_minor(candidates["tax_minor"], refunded + before, granted))
    return candidates.assign(
        value_minor=np.asarray(value, dtype=np.int64), tax_minor=np.asarray(tax, dtype=np.int64),
        exponent=candidates["currency"].map(minor_unit_exponent).astype("int64"))


def refund_journal(refunds: pd.DataFrame, day: BusinessDay, accounts: ChartOfAccounts) -> JournalBatch:
    """One entry per refund: deferred value and tax back against cash clearing."""
    refunds = refunds.sort_values("refund_id")
    entry_id = "refund/" + refunds["refund_id"]
    common = {"entry_id": entry_id, "customer_id": refunds["customer_id"],
              "currency": refunds["currency"], "purchase_id": refunds["purchase_id"]}
    lines = pd.concat([
        line_frame(account=accounts.deferred_revenue, amount_minor=refunds["value_minor"], **common),
        line_frame(account=accounts.sales_tax, amount_minor=refunds["tax_minor"], **common),
        line_frame(account=accounts.cash_clearing,
                   amount_minor=-(refunds["value_minor"] + refunds["tax_minor"]), **common),
    ], ignore_index=True).sort_values("entry_id", kind="stable")
    source_ref = pd.Series(refunds["refund_id"].to_numpy(), index=entry_id.to_numpy())
    return journal_from_lines(lines, EntryKind.REFUND, day, source_ref)


def refunded_totals(refunds: pd.DataFrame) -> pd.DataFrame:
    """Per lot: credits, value and tax refunded by these refunds."""
    return refunds.groupby("purchase_id", as_index=False).agg(
        credits_micro=("credits_micro", "sum"), value_minor=("value_minor", "sum"),
        tax_minor=("tax_minor", "sum"))
