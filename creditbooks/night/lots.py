"""The lots a night works on, read from the ledger and typed for the rules.

Each read joins a lot's facts with its running totals (`LOT_COLUMNS` of
rules/lot_state.py) and returns them typed by `typed_lots`: the open lots, the open lots
of some customers, the lots one day's breakage or expiry may change, or named lots.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
from sqlalchemy import Connection, String, bindparam, text

from ledger.store import read_frame, read_in_chunks
from rules.lot_state import LOT_COLUMNS, typed_lots

# Posted manual journals' changes to a lot's deferred value (creditbooks/journals.py), and
# what the lot had consumed (credits used or refunded, and their value) when the latest
# posted: both only grow, so each one's maximum is the latest change's.
_LOT_STATE = """
    SELECT l.purchase_id, l.customer_id, l.purchased_at, b.expires_at, l.credits_micro,
           l.amount_minor, l.tax_minor, l.currency, l.kind, l.product, l.priority, l.country,
           l.rate_to_functional, l.business_date AS purchased_on, b.is_open,
           b.credits_used_micro, b.usage_value_minor, b.credits_expired_micro, b.breakage_minor,
           b.credits_refunded_micro, b.refunded_value_minor, b.refunded_tax_minor, b.escheat_minor,
           b.credits_voided_micro, COALESCE(m.manual_change_minor, 0) AS manual_change_minor,
           COALESCE(m.consumed_at_change_micro, 0) AS consumed_at_change_micro,
           COALESCE(m.consumed_value_at_change_minor, 0) AS consumed_value_at_change_minor
    FROM lots l JOIN lot_balances b ON b.purchase_id = l.purchase_id
    LEFT JOIN (
        SELECT ml.purchase_id, SUM(ml.deferred_change_minor) AS manual_change_minor,
               MAX(ml.lot_consumed_micro) AS consumed_at_change_micro,
               MAX(ml.lot_consumed_value_minor) AS consumed_value_at_change_minor
        FROM manual_journal_lines ml JOIN manual_journals mj ON mj.ref = ml.ref
        WHERE mj.entry_id IS NOT NULL AND ml.deferred_change_minor <> 0
        GROUP BY ml.purchase_id
    ) m ON m.purchase_id = l.purchase_id
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
