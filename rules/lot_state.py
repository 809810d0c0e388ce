"""A lot's facts joined with its running totals, typed for the rules that change them.

Every rule that moves credits or value out of a lot (burn, refund, breakage, expiry,
adjustment) starts from this frame: instants as UTC, money and credits as int64, and
the lot's effective expiry (its last rollover, or the purchase's own).
"""

from __future__ import annotations

from datetime import date

import pandas as pd
from sqlalchemy import Connection, String, bindparam, text

from ledger.store import read_frame, read_in_chunks

INSTANT_DTYPE = "datetime64[us, UTC]"
BALANCE_COLUMNS = ["credits_used_micro", "usage_value_minor", "credits_expired_micro",
                   "breakage_minor", "credits_refunded_micro", "refunded_value_minor",
                   "refunded_tax_minor", "escheat_minor", "credits_voided_micro"]
LOT_COLUMNS = ["purchase_id", "customer_id", "purchased_at", "expires_at", "credits_micro",
               "amount_minor", "tax_minor", "currency", "kind", "product", "priority", "country",
               "rate_to_functional", "purchased_on", "is_open", *BALANCE_COLUMNS]
_LOT_STATE = """
    SELECT l.purchase_id, l.customer_id, l.purchased_at, b.expires_at, l.credits_micro,
           l.amount_minor, l.tax_minor, l.currency, l.kind, l.product, l.priority, l.country,
           l.rate_to_functional, l.business_date AS purchased_on, b.is_open,
           b.credits_used_micro, b.usage_value_minor, b.credits_expired_micro, b.breakage_minor,
           b.credits_refunded_micro, b.refunded_value_minor, b.refunded_tax_minor, b.escheat_minor,
           b.credits_voided_micro
    FROM lots l JOIN lot_balances b ON b.purchase_id = l.purchase_id
"""


def open_lots(connection: Connection) -> pd.DataFrame:
    """Every lot that still has credits to burn, refund or expire."""
    lots = read_frame(connection, _LOT_STATE + " WHERE b.is_open ORDER BY l.purchase_id")
    return typed_lots(lots)


def open_lots_of(connection: Connection, customer_ids) -> pd.DataFrame:
    """The open lots of the given customers (a burn shard's), ordered as `open_lots`."""
    lots = read_in_chunks(connection, _LOT_STATE + " WHERE b.is_open AND l.customer_id IN :ids",
                          customer_ids, LOT_COLUMNS)
    return typed_lots(lots.sort_values("purchase_id", ignore_index=True))


def lots_changing_today(connection: Connection, batch_id: str, expiring_before: date,
                        accruing_products: list[str]) -> pd.DataFrame:
    """The lots the end of a day can change: those this batch touched (bought, used,
    refunded, adjusted or closed today), open lots whose expiry falls before
    `expiring_before`, and open lots of products that accrue breakage every night.

    `expiring_before` only narrows the read; the rules decide exactly which lots expire.
    """
    statement = text(_LOT_STATE + """
        WHERE b.last_batch_id = :batch_id
           OR (b.is_open AND (b.expires_at < :expiring_before OR l.product IN :products))
        ORDER BY l.purchase_id""").bindparams(
            bindparam("products", expanding=True, type_=String))
    lots = read_frame(connection, statement, batch_id=batch_id,
                      expiring_before=expiring_before.isoformat(),
                      products=list(accruing_products))
    return typed_lots(lots)


def lots_by_id(connection: Connection, purchase_ids: pd.Series) -> pd.DataFrame:
    """The named lots, open or not (absent ids are simply missing)."""
    lots = read_in_chunks(connection, _LOT_STATE + " WHERE l.purchase_id IN :ids",
                          purchase_ids.drop_duplicates(), LOT_COLUMNS)
    return typed_lots(lots)


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
