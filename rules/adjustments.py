"""Adjustments to a lot's terms: rollovers that extend its expiry, voids of promotional grants.

Recorded, dated events (`lot_adjustments`); no money moves when they post. A rollover
changes when the lot's unused value becomes breakage; a void withdraws what is left of a
free grant (worth nothing, so no entry). Like refunds they take effect at the start of
their business day, judged against the lot as the previous night left it, and one
adjustment per lot per day keeps that judgement unambiguous.

Refused, with the reason: an unknown lot; a second adjustment of a lot in one day; one
dated before the purchase; any adjustment of a lot that expired (a rollover after expiry
is refused: the breakage is booked) or has nothing left; a rollover of a lot that never
expires or that does not move the expiry later; a void of a paid lot (that is a refund).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from intake.validation import first_problems
from ledger.domain import AdjustmentAction, LotKind
from rules.lot_state import credits_left_micro


def judge_adjustments(adjustments: pd.DataFrame,
                      lots: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Adjustments the lots allow, with what they change; the others with a reason.

    adjustments: validated rows; lots: their lots' state at the start of the day.
    Returns (accepted with customer_id, previous_expires_at, credits_voided_micro;
    problems as index, column_name, reason).
    """
    lot = lots.set_index("purchase_id").reindex(adjustments["purchase_id"].to_numpy())
    lot.index = adjustments.index
    known = lot["credits_micro"].notna()
    ordered = adjustments.sort_values(["purchase_id", "adjusted_at", "adjustment_id"])
    second = ordered["purchase_id"].duplicated().reindex(adjustments.index)
    counts = ["credits_micro", "credits_used_micro", "credits_refunded_micro",
              "credits_expired_micro", "credits_voided_micro"]
    left = credits_left_micro(lot[counts].fillna(0))
    expired = known & ((lot["credits_expired_micro"].fillna(0) > 0) | (
        lot["expires_at"].notna() & (lot["expires_at"] <= adjustments["adjusted_at"])))
    rollover = adjustments["action"] == AdjustmentAction.ROLLOVER
    problems = [
        (~known, "purchase_id", "is not a known purchase"),
        (second, "purchase_id", "has another adjustment this day; send one per lot per day"),
        (adjustments["adjusted_at"] < lot["purchased_at"], "adjusted_at",
         "is before the lot was purchased"),
        (expired, "purchase_id",
         "the lot has expired; its breakage is booked, so it can no longer be adjusted"),
        (left <= 0, "purchase_id", "the lot has no credits left to adjust"),
        (rollover & lot["expires_at"].isna(), "action",
         "the lot never expires; there is no expiry to roll over"),
        (rollover & (adjustments["new_expires_at"] <= lot["expires_at"]), "new_expires_at",
         "must be later than the expiry in force"),
        (~rollover & (lot["kind"] == LotKind.PAID), "action",
         "only promotional grants can be voided; a paid lot's unused credits are refunded"),
    ]
    refused, reasons = first_problems(adjustments.index, problems)
    accepted = adjustments[~refused].assign(
        customer_id=lot.loc[~refused, "customer_id"],
        previous_expires_at=lot.loc[~refused, "expires_at"],
        credits_voided_micro=np.where(rollover[~refused], 0, left[~refused]).astype(np.int64))
    return accepted, reasons
