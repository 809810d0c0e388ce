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


def trial_balance(store: Store, period: str, functional_currency: str | None = None) -> list[dict]:
    """Per account and transaction currency; or, given the functional currency, per account
    in it (every line's functional amount, remeasurements included)."""
    parse_period(period)
    amount = "l.functional_minor" if functional_currency else "l.amount_minor"
    currency = "CAST(:functional AS VARCHAR(3))" if functional_currency else "l.currency"
    grouped = "l.account" if functional_currency else "l.account, l.currency"
    parameters = {"functional": functional_currency} if functional_currency else {}
    frame = store.read_frame(f"""
        SELECT l.account, {currency} AS currency,
          SUM(CASE WHEN e.period < :period THEN {amount} ELSE 0 END) AS opening,
          SUM(CASE WHEN e.period = :period AND {amount} > 0 THEN {amount} ELSE 0 END) AS debit,
          SUM(CASE WHEN e.period = :period AND {amount} < 0 THEN {amount} ELSE 0 END) AS credit,
          SUM({amount}) AS closing
        FROM journal_lines l JOIN journal_entries e ON e.entry_id = l.entry_id
        JOIN batches b ON b.batch_id = e.batch_id AND b.status <> 'open'
        WHERE e.period <= :period
        GROUP BY {grouped}
        ORDER BY {grouped}
    """, period=period, **parameters)
    return [
        {"account": row.account, "currency": row.currency,
         **{name: format_minor(int(getattr(row, name)), row.currency)
            for name in ("opening", "debit", "credit", "closing")}}
        for row in frame.itertuples(index=False)
    ]


def rollforward_frame(store: Store, period: str, deferred_account: str,
                      dimension: str | None = None,
                      functional_currency: str | None = None) -> pd.DataFrame:
    """Deferred revenue movements in minor units per currency (and customer or product);
    given the functional currency, in it, over all transaction currencies."""
    parse_period(period)
    amount = "l.functional_minor" if functional_currency else "l.amount_minor"
    currency = "CAST(:functional AS VARCHAR(3))" if functional_currency else "l.currency"
    by_currency = "" if functional_currency else "l.currency"
    column = {None: None, "customer": "o.customer_id", "product": "o.product"}[dimension]
    selected = f", {column} AS {dimension}" if column else ""
    joined = "JOIN lots o ON o.purchase_id = l.purchase_id" if column else ""
    grouped = ", ".join(part for part in (by_currency, column) if part)
    grouping = f"GROUP BY {grouped} ORDER BY {grouped}" if grouped else ""
    parameters = {"functional": functional_currency} if functional_currency else {}
    return store.read_frame(f"""
        SELECT {currency} AS currency{selected},
          -SUM(CASE WHEN e.period < :period THEN {amount} ELSE 0 END) AS opening,
          -SUM(CASE WHEN e.period = :period AND e.kind = 'purchase' THEN {amount} ELSE 0 END)
            AS purchases,
          SUM(CASE WHEN e.period = :period AND e.kind = 'usage' THEN {amount} ELSE 0 END)
            AS usage_revenue,
          SUM(CASE WHEN e.period = :period AND e.kind = 'breakage' THEN {amount} ELSE 0 END)
            AS breakage,
          SUM(CASE WHEN e.period = :period AND e.kind = 'refund' THEN {amount} ELSE 0 END)
            AS refunds,
          SUM(CASE WHEN e.period = :period AND e.kind = 'escheat' THEN {amount} ELSE 0 END)
            AS escheat,
          -SUM({amount}) AS closing
        FROM journal_lines l JOIN journal_entries e ON e.entry_id = l.entry_id
        JOIN batches b ON b.batch_id = e.batch_id AND b.status <> 'open' {joined}
        WHERE e.period <= :period AND l.account = :account
        {grouping}
    """, period=period, account=deferred_account, **parameters)


def rollforward(store: Store, period: str, deferred_account: str,
                functional_currency: str | None = None) -> list[RollforwardRow]:
    frame = rollforward_frame(store, period, deferred_account,
                              functional_currency=functional_currency)
    return [
        RollforwardRow(row.currency, int(row.opening), int(row.purchases), int(row.usage_revenue),
                       int(row.breakage), int(row.refunds), int(row.escheat), int(row.closing))
        for row in frame.itertuples(index=False)
    ]
