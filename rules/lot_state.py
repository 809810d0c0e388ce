"""A lot's facts joined with its running totals, typed for the rules that change them.

Every rule that moves credits or value out of a lot (burn, refund, breakage, expiry,
adjustment) starts from this frame: instants as UTC, money and credits as int64, and
the lot's effective expiry (its last rollover, or the purchase's own). The night reads
the frame from the ledger (creditbooks/night/lots.py); here are its columns and what the
rules compute from it.
"""

from __future__ import annotations

import pandas as pd

INSTANT_DTYPE = "datetime64[us, UTC]"
BALANCE_COLUMNS = ["credits_used_micro", "usage_value_minor", "credits_expired_micro",
                   "breakage_minor", "credits_refunded_micro", "refunded_value_minor",
                   "refunded_tax_minor", "escheat_minor", "credits_voided_micro"]
LOT_COLUMNS = ["purchase_id", "customer_id", "purchased_at", "expires_at", "credits_micro",
               "amount_minor", "tax_minor", "currency", "kind", "product", "priority", "country",
               "rate_to_functional", "purchased_on", "is_open", *BALANCE_COLUMNS]
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
                *[column for column in BALANCE_COLUMNS if column in typed]]
    typed = typed.astype({column: "int64" for column in integers})
    if "is_open" in typed:
        typed["is_open"] = typed["is_open"].astype(bool)
    return typed


def credits_left_micro(lots: pd.DataFrame) -> pd.Series:
    """Credits a lot can still give: granted less used, refunded, expired and voided."""
    return (lots["credits_micro"] - lots["credits_used_micro"] - lots["credits_refunded_micro"]
            - lots["credits_expired_micro"] - lots["credits_voided_micro"])


def deferred_value_minor(lots: pd.DataFrame) -> pd.Series:
    """A lot's value still in deferred revenue."""
    return (lots["amount_minor"] - lots["usage_value_minor"] - lots["refunded_value_minor"]
            - lots["breakage_minor"] - lots["escheat_minor"])
