"""Period statements: the trial balance and the deferred revenue rollforward.

Only published batches count: a night still running its stages is left out, so a
statement never shows half a night. Amounts are computed in integer minor units in SQL
and formatted as exact decimal strings at the end. The trial balance is signed like
beancount (debit positive, credit negative); the rollforward shows deferred revenue as
a positive liability and must tie: opening + purchases - usage revenue - breakage -
refunds - escheat (expired value owed to a state) = closing, per currency.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ledger.money import format_minor
from ledger.periods import parse_period
from ledger.store import Store


@dataclass(frozen=True)
class RollforwardRow:
    currency: str
    opening_minor: int
    purchases_minor: int
    usage_revenue_minor: int
    breakage_minor: int
    refunds_minor: int
    escheat_minor: int
    closing_minor: int

    @property
    def difference_minor(self) -> int:
        """Zero when the rollforward ties."""
        movement = (self.purchases_minor - self.usage_revenue_minor - self.breakage_minor
                    - self.refunds_minor - self.escheat_minor)
        return self.opening_minor + movement - self.closing_minor

    def as_strings(self) -> dict:
        money = {
            "opening": self.opening_minor, "purchases": self.purchases_minor,
            "usage_revenue": self.usage_revenue_minor, "breakage": self.breakage_minor,
            "refunds": self.refunds_minor, "escheat": self.escheat_minor,
            "closing": self.closing_minor,
        }
        return {"currency": self.currency,
                **{name: format_minor(value, self.currency) for name, value in money.items()}}


def trial_balance(store: Store, period: str) -> list[dict]:
    parse_period(period)
    frame = store.read_frame("""
        SELECT l.account, l.currency,
          SUM(CASE WHEN e.period < :period THEN l.amount_minor ELSE 0 END) AS opening,
          SUM(CASE WHEN e.period = :period AND l.amount_minor > 0 THEN l.amount_minor ELSE 0 END)
            AS debit,
          SUM(CASE WHEN e.period = :period AND l.amount_minor < 0 THEN l.amount_minor ELSE 0 END)
            AS credit,
          SUM(l.amount_minor) AS closing
        FROM journal_lines l JOIN journal_entries e ON e.entry_id = l.entry_id
        JOIN batches b ON b.batch_id = e.batch_id AND b.status <> 'open'
        WHERE e.period <= :period
        GROUP BY l.account, l.currency
        ORDER BY l.account, l.currency
    """, period=period)
    return [
        {"account": row.account, "currency": row.currency,
         **{name: format_minor(int(getattr(row, name)), row.currency)
            for name in ("opening", "debit", "credit", "closing")}}
        for row in frame.itertuples(index=False)
    ]


def rollforward_frame(store: Store, period: str, deferred_account: str,
                      dimension: str | None = None) -> pd.DataFrame:
    """Deferred revenue movements in minor units per currency (and customer or product)."""
    parse_period(period)
    column = {None: None, "customer": "o.customer_id", "product": "o.product"}[dimension]
    selected = f", {column} AS {dimension}" if column else ""
    joined = "JOIN lots o ON o.purchase_id = l.purchase_id" if column else ""
    grouped = f", {column}" if column else ""
    return store.read_frame(f"""
        SELECT l.currency{selected},
          -SUM(CASE WHEN e.period < :period THEN l.amount_minor ELSE 0 END) AS opening,
          -SUM(CASE WHEN e.period = :period AND e.kind = 'purchase' THEN l.amount_minor ELSE 0 END)
            AS purchases,
          SUM(CASE WHEN e.period = :period AND e.kind = 'usage' THEN l.amount_minor ELSE 0 END)
            AS usage_revenue,
          SUM(CASE WHEN e.period = :period AND e.kind = 'breakage' THEN l.amount_minor ELSE 0 END)
            AS breakage,
          SUM(CASE WHEN e.period = :period AND e.kind = 'refund' THEN l.amount_minor ELSE 0 END)
            AS refunds,
          SUM(CASE WHEN e.period = :period AND e.kind = 'escheat' THEN l.amount_minor ELSE 0 END)
            AS escheat,
          -SUM(l.amount_minor) AS closing
        FROM journal_lines l JOIN journal_entries e ON e.entry_id = l.entry_id
        JOIN batches b ON b.batch_id = e.batch_id AND b.status <> 'open' {joined}
        WHERE e.period <= :period AND l.account = :account
        GROUP BY l.currency{grouped}
        ORDER BY l.currency{grouped}
    """, period=period, account=deferred_account)


def rollforward(store: Store, period: str, deferred_account: str) -> list[RollforwardRow]:
    frame = rollforward_frame(store, period, deferred_account)
    return [
        RollforwardRow(row.currency, int(row.opening), int(row.purchases), int(row.usage_revenue),
                       int(row.breakage), int(row.refunds), int(row.escheat), int(row.closing))
        for row in frame.itertuples(index=False)
    ]
