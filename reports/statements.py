"""Period statements: the trial balance and the deferred revenue rollforward.

Only published batches count: a night still running its stages is left out, so a
statement never shows half a night. Amounts are sums of `line_totals` in integer minor
units, formatted as exact decimal strings at the end. The trial balance is signed like
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
from reports.line_totals import line_totals, up_to


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


def trial_balance(store: Store, period: str, functional_currency: str | None = None,
                  totals: pd.DataFrame | None = None) -> list[dict]:
    """Per account and transaction currency; or, given the functional currency, per account
    in it (every line's functional amount, remeasurements included).

    totals: `line_totals` up to this period or a later one, when the caller has them."""
    parse_period(period)
    lines = up_to(line_totals(store, period) if totals is None else totals, period,
                  published_only=True)
    prefix = "functional_" if functional_currency else ""
    debit, credit = lines[f"{prefix}debit_minor"], lines[f"{prefix}credit_minor"]
    current = lines["period"] == period
    frame = pd.DataFrame({
        "account": lines["account"], "currency": functional_currency or lines["currency"],
        "opening": (debit + credit).where(~current, 0), "debit": debit.where(current, 0),
        "credit": credit.where(current, 0), "closing": debit + credit,
    }).groupby(["account", "currency"], as_index=False, sort=True).sum()
    return [
        {"account": row.account, "currency": row.currency,
         **{name: format_minor(int(getattr(row, name)), row.currency)
            for name in ("opening", "debit", "credit", "closing")}}
        for row in frame.itertuples(index=False)
    ]


ROLLFORWARD_COLUMNS = ["opening", "purchases", "usage_revenue", "breakage", "refunds", "escheat",
                        "closing"]


def rollforward_frame(store: Store, period: str, deferred_account: str,
                      dimension: str | None = None,
                      functional_currency: str | None = None,
                      totals: pd.DataFrame | None = None) -> pd.DataFrame:
    """Deferred revenue movements in minor units per currency (and customer or product);
    given the functional currency, in it, over all transaction currencies.

    totals: `line_totals` up to this period or a later one, when the caller has them."""
    parse_period(period)
    if dimension not in (None, "customer", "product"):
        raise ValueError("a rollforward is by customer or by product")
    lines = up_to(line_totals(store, period) if totals is None else totals, period,
                  published_only=True)
    lines = lines[lines["account"] == deferred_account]
    amount = lines["functional_minor" if functional_currency else "amount_minor"]
    current = lines["period"] == period

    def moved(kind: str) -> pd.Series:
        return amount.where(current & (lines["kind"] == kind), 0)

    frame = pd.DataFrame({
        "currency": functional_currency or lines["currency"], "opening": -amount.where(~current, 0),
        "purchases": -moved("purchase"), "usage_revenue": moved("usage"),
        "breakage": moved("breakage"), "refunds": moved("refund"), "escheat": moved("escheat"),
        "closing": -amount,
    }, columns=["currency", *ROLLFORWARD_COLUMNS])
    keys = ["currency"]
    if dimension:
        lots = store.read_frame("SELECT purchase_id, customer_id AS customer, product FROM lots")
        frame[dimension] = lines["purchase_id"].map(lots.set_index("purchase_id")[dimension])
        frame = frame[frame[dimension].notna()]  # lines of no lot belong to no customer
        keys.append(dimension)
    grouped = frame.groupby(keys, as_index=False, sort=True)[ROLLFORWARD_COLUMNS].sum()
    if functional_currency and not dimension and grouped.empty:  # one row, however quiet
        grouped = pd.DataFrame([[functional_currency] + [0] * len(ROLLFORWARD_COLUMNS)],
                               columns=["currency", *ROLLFORWARD_COLUMNS])
    return grouped[[*keys, *ROLLFORWARD_COLUMNS]].astype({column: "int64"
                                                            for column in ROLLFORWARD_COLUMNS})


def rollforward(store: Store, period: str, deferred_account: str,
                functional_currency: str | None = None,
                totals: pd.DataFrame | None = None) -> list[RollforwardRow]:
    frame = rollforward_frame(store, period, deferred_account,
                              functional_currency=functional_currency, totals=totals)
    return [
        RollforwardRow(row.currency, int(row.opening), int(row.purchases), int(row.usage_revenue),
                       int(row.breakage), int(row.refunds), int(row.escheat), int(row.closing))
        for row in frame.itertuples(index=False)
    ]
