"""A lot's facts joined with its running totals, typed for the rules that change them.

Every rule that moves credits or value out of a lot (burn, refund, breakage, expiry,
adjustment) starts from this frame: instants as UTC, money and credits as int64, and
the lot's effective expiry (its last rollover, or the purchase's own). The night reads
the frame from the ledger (creditbooks/night/lots.py); here are its columns and what the
rules compute from it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ledger.money import divide_round_half_even_array

INSTANT_DTYPE = "datetime64[us, UTC]"
BALANCE_COLUMNS = ["credits_used_micro", "usage_value_minor", "credits_expired_micro",
                   "breakage_minor", "credits_refunded_micro", "refunded_value_minor",
                   "refunded_tax_minor", "escheat_minor", "credits_voided_micro"]
# What posted manual journals did to a lot (creditbooks/journals.py): the sum of their
# changes to its deferred value (a credit adds), and the credits it had given (used or
# refunded) and their value when the latest of them posted. Absent or zero: no change.
MANUAL_CHANGE_COLUMNS = ["manual_change_minor", "consumed_at_change_micro",
                         "consumed_value_at_change_minor"]
LOT_COLUMNS = ["purchase_id", "customer_id", "purchased_at", "expires_at", "credits_micro",
               "amount_minor", "tax_minor", "currency", "kind", "product", "priority", "country",
               "rate_to_functional", "purchased_on", "is_open", *BALANCE_COLUMNS,
               *MANUAL_CHANGE_COLUMNS]


def new_lot_balances(lots: pd.DataFrame, batch_id: str) -> pd.DataFrame:
    """The running totals of lots just purchased: nothing used, refunded or expired."""
    return lots[["purchase_id", "customer_id", "expires_at"]].assign(
        **{column: 0 for column in BALANCE_COLUMNS}, is_open=True, last_batch_id=batch_id)


def typed_lots(lots: pd.DataFrame) -> pd.DataFrame:
    """Instants as UTC of one resolution (stored naive UTC), money and credits as int64."""
    typed = lots.copy()
    for column in ("purchased_at", "expires_at"):
        instants = pd.to_datetime(typed[column])
        if instants.dt.tz is None:
            instants = instants.dt.tz_localize("UTC")
        typed[column] = instants.dt.tz_convert("UTC").astype(INSTANT_DTYPE)
    integers = ["credits_micro", "amount_minor", "tax_minor", "priority",
                *[column for column in BALANCE_COLUMNS + MANUAL_CHANGE_COLUMNS
                  if column in typed]]
    typed = typed.astype({column: "int64" for column in integers})
    if "is_open" in typed:
        typed["is_open"] = typed["is_open"].astype(bool)
    return typed


def credits_left_micro(lots: pd.DataFrame) -> pd.Series:
    """Credits a lot can still give: granted less used, refunded, expired and voided."""
    return (lots["credits_micro"] - lots["credits_used_micro"] - lots["credits_refunded_micro"]
            - lots["credits_expired_micro"] - lots["credits_voided_micro"])


def manual_change_minor(lots: pd.DataFrame) -> pd.Series:
    """What posted manual journals added to each lot's deferred value (0 when none)."""
    return _column_or_zero(lots, "manual_change_minor")


def deferred_value_minor(lots: pd.DataFrame) -> pd.Series:
    """A lot's value still in deferred revenue, manual journals' changes included."""
    return (lots["amount_minor"] - lots["usage_value_minor"] - lots["refunded_value_minor"]
            - lots["breakage_minor"] - lots["escheat_minor"] + manual_change_minor(lots))


def consumed_value_minor(lots: pd.DataFrame, consumed_micro) -> np.ndarray:
    """Cumulative value of a lot's credits once `consumed_micro` have left it (used or
    refunded), exact, half even (ACCOUNTING.md, "Exact rounding").

    A lot no manual journal changed: amount x consumed / granted. A lot one changed: the
    value consumed when the latest change posted, plus what the lot then carried (amount
    and every change, less that value) spread over the credits it then had left, so its
    later burns, refunds and expiry follow the changed value and the lot ties out to
    amount + changes. With no change both read the same (nothing consumed at no change).
    """
    anchor_micro = _column_or_zero(lots, "consumed_at_change_micro").to_numpy(dtype=object)
    anchor_value = _column_or_zero(lots, "consumed_value_at_change_minor").to_numpy(dtype=object)
    consumed = np.asarray(consumed_micro, dtype=object)
    granted = lots["credits_micro"].to_numpy(dtype=object)
    if ((consumed < anchor_micro) | (consumed > granted)).any():
        raise ValueError("credits consumed must lie between those consumed at the lot's last "
                         "manual change and the credits granted")
    carried = (lots["amount_minor"] + manual_change_minor(lots)).to_numpy(dtype=object) - (
        anchor_value)
    left_at_change = granted - anchor_micro
    # A lot with nothing left when it changed (refused at approval) has no credits to spread
    # over: it is worth all it carries.
    spread_over = np.where(left_at_change > 0, left_at_change, 1)
    since_change = np.where(left_at_change > 0, consumed - anchor_micro, 1)
    return (anchor_value + divide_round_half_even_array(carried * since_change, spread_over)
            ).astype(np.int64)


def _column_or_zero(lots: pd.DataFrame, column: str) -> pd.Series:
    """A manual-change column; frames of lots made before any journal (today's purchases,
    a rule's own frames) do not carry it, or carry it blank, and mean zero."""
    if column in lots:
        return lots[column].fillna(0).astype("int64")
    return pd.Series(0, index=lots.index, dtype="int64")
