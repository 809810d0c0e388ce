"""Usage revenue: the deferred value of burned credits, exact to the minor unit.

Per lot, the value of the credits that have left it (used or refunded) = amount x
(used + refunded) / credits granted, rounded half to even (ACCOUNTING.md, "Exact
rounding"); the day's revenue from a lot is the change in that figure, so a lot used to
the end has recognised exactly its amount, less any refunds (a lot a manual journal
changed is valued from that change on: `consumed_value_minor`, rules/lot_state.py). A
lot's day value is split over the meters that burned it by largest remainder on credits,
so the meter lines sum exactly to the lot's change.

One entry per customer per business day: Dr deferred revenue per lot, Cr usage revenue
per meter, in each currency the customer's lots are in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ledger.accounts import ChartOfAccounts
from ledger.journal import EntryKind, JournalBatch
from ledger.periods import BusinessDay
from rules.lot_state import consumed_value_minor
from rules.postings import journal_from_lines, line_frame


@dataclass(frozen=True)
class RecognisedUsage:
    slices: pd.DataFrame  # customer_id, purchase_id, meter, credits_micro, value_minor, currency
    lots: pd.DataFrame  # lot state with credits_used_micro and usage_value_minor after today
    journal: JournalBatch


def allocate_by_group(frame: pd.DataFrame, group: str, weight: str, total: str) -> pd.Series:
    """Largest-remainder split of each group's `total` over its rows by `weight`.

    Ties in remainder go to the row that comes first in the frame's order.
    Assumes non-negative totals and positive weights.
    """
    weights = frame[weight].to_numpy(dtype=object)
    totals = frame[total].to_numpy(dtype=object)
    weight_sums = frame.groupby(group, sort=False)[weight].transform("sum").to_numpy(dtype=object)
    products = totals * weights
    floors = (products // weight_sums).astype(np.int64)
    remainders = products - floors.astype(object) * weight_sums
    work = pd.DataFrame({
        "group": frame[group].to_numpy(),
        "floor": floors,
        "order": np.arange(len(frame)),
        # Compare remainders as fractions of their group's weight sum: same denominator
        # within a group, so the remainder itself orders rows.
        "remainder": remainders,
    })
    leftover = (
        frame.groupby(group, sort=False)[total].first()
        - work.groupby("group", sort=False)["floor"].sum()
    )
    work = work.sort_values(["group", "remainder", "order"], ascending=[True, False, True])
    work["rank"] = work.groupby("group", sort=False).cumcount()
    work["extra"] = (work["rank"] < work["group"].map(leftover)).astype(np.int64)
    work = work.sort_values("order")
    return pd.Series(work["floor"].to_numpy() + work["extra"].to_numpy(), index=frame.index)


def recognise_usage(
    burned: pd.DataFrame, lots: pd.DataFrame, day: BusinessDay, accounts: ChartOfAccounts
) -> RecognisedUsage:
    """burned: customer_id, purchase_id, meter, credits_micro. lots: state before today."""
    lots = lots.set_index("purchase_id", drop=False)
    burned_by_lot = burned.groupby("purchase_id")["credits_micro"].sum()
    touched = lots.loc[burned_by_lot.index].copy()
    used_after = touched["credits_used_micro"] + burned_by_lot
    # Credits leave a lot by use or refund; the value of all that has left is cumulative.
    consumed_value_after = consumed_value_minor(
        touched, used_after + touched["credits_refunded_micro"])
    consumed_value_before = touched["usage_value_minor"] + touched["refunded_value_minor"]
    touched["day_value_minor"] = consumed_value_after - consumed_value_before.to_numpy()
    lots_after = lots.copy()
    lots_after.loc[touched.index, "credits_used_micro"] = used_after
    lots_after.loc[touched.index, "usage_value_minor"] = (
        touched["usage_value_minor"] + touched["day_value_minor"])

    slices = burned.sort_values(["purchase_id", "meter"]).reset_index(drop=True)
    slices["day_value_minor"] = slices["purchase_id"].map(touched["day_value_minor"])
    slices["currency"] = slices["purchase_id"].map(touched["currency"])
    slices["value_minor"] = allocate_by_group(slices, "purchase_id", "credits_micro",
                                              "day_value_minor")
    slices = slices.drop(columns="day_value_minor")
    journal = _usage_journal(slices, day, accounts)
    return RecognisedUsage(slices, lots_after.reset_index(drop=True), journal)


def _usage_journal(slices: pd.DataFrame, day: BusinessDay, accounts: ChartOfAccounts):
    valued = slices[slices["value_minor"] != 0]
    if valued.empty:
        return JournalBatch.empty()
    entry_of = "usage/" + valued["customer_id"] + "/" + day.business_date.isoformat()
    valued = valued.assign(entry_id=entry_of)
    debits = valued.groupby(["entry_id", "customer_id", "currency", "purchase_id"],
                            as_index=False)["value_minor"].sum()
    credits = valued.groupby(["entry_id", "customer_id", "currency", "meter"],
                             as_index=False)["value_minor"].sum()
    lines = pd.concat([
        line_frame(debits["entry_id"], debits["customer_id"], accounts.deferred_revenue,
                   debits["currency"], debits["value_minor"], purchase_id=debits["purchase_id"]),
        line_frame(credits["entry_id"], credits["customer_id"], accounts.usage_revenue,
                   credits["currency"], -credits["value_minor"], meter=credits["meter"]),
    ], ignore_index=True).sort_values("entry_id", kind="stable")
    source_ref = (
        valued.drop_duplicates("entry_id").set_index("entry_id")["customer_id"]
        + "/" + day.business_date.isoformat()
    )
    return journal_from_lines(lines, EntryKind.USAGE, day, source_ref)
