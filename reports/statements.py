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

from ledger.accounts import ChartOfAccounts, income_statement_section
from ledger.money import format_minor
from ledger.periods import Period
from ledger.store import Store
from reports.line_totals import line_totals, up_to

# The default policy's chart: a caller with a policy passes its `policy.accounts`.
DEFAULT_CHART = ChartOfAccounts()


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
    # Approved manual journals' lines on deferred revenue (a credit adds to it).
    manual_journals_minor: int = 0

    @property
    def difference_minor(self) -> int:
        """Zero when the rollforward ties."""
        movement = (self.purchases_minor - self.usage_revenue_minor - self.breakage_minor
                    - self.refunds_minor - self.escheat_minor + self.manual_journals_minor)
        return self.opening_minor + movement - self.closing_minor

    def as_strings(self) -> dict:
        money = {
            "opening": self.opening_minor, "purchases": self.purchases_minor,
            "usage_revenue": self.usage_revenue_minor, "breakage": self.breakage_minor,
            "refunds": self.refunds_minor, "escheat": self.escheat_minor,
            "manual_journals": self.manual_journals_minor, "closing": self.closing_minor,
        }
        return {"currency": self.currency,
                **{name: format_minor(value, self.currency) for name, value in money.items()}}


def trial_balance(store: Store, period: Period, functional_currency: str | None = None,
                  totals: pd.DataFrame | None = None) -> list[dict]:
    """Per account and transaction currency; or, given the functional currency, per account
    in it (every line's functional amount, remeasurements included).

    totals: `line_totals` up to this period or a later one, when the caller has them."""
    period = Period(period)
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
                        "manual_journals", "closing"]


def rollforward_frame(store: Store, period: Period, deferred_account: str,
                      dimension: str | None = None,
                      functional_currency: str | None = None,
                      totals: pd.DataFrame | None = None) -> pd.DataFrame:
    """Deferred revenue movements in minor units per currency (and customer or product);
    given the functional currency, in it, over all transaction currencies.

    totals: `line_totals` up to this period or a later one, when the caller has them."""
    period = Period(period)
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
        "manual_journals": -moved("manual"), "closing": -amount,
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


def rollforward(store: Store, period: Period, deferred_account: str,
                functional_currency: str | None = None,
                totals: pd.DataFrame | None = None) -> list[RollforwardRow]:
    frame = rollforward_frame(store, period, deferred_account,
                              functional_currency=functional_currency, totals=totals)
    return [
        RollforwardRow(row.currency, int(row.opening), int(row.purchases), int(row.usage_revenue),
                       int(row.breakage), int(row.refunds), int(row.escheat), int(row.closing),
                       int(row.manual_journals))
        for row in frame.itertuples(index=False)
    ]


# The statements as accountants read them. Each row is one line of a statement:
# `row_type` says whether it is an account's line, a subtotal of the lines above it in
# its section, or a total; a reader adds the "account" rows and compares the sums with
# the subtotal and total rows (verify-package does). Per transaction currency, or in the
# functional currency over all of them (every line's functional amount, FX included).
STATEMENT_COLUMNS = ("currency", "section", "line", "row_type", "amount")


def _balances(store: Store, period: Period, functional_currency: str | None,
              totals: pd.DataFrame | None, this_period_only: bool) -> pd.DataFrame:
    """Per account and currency: the signed balance (debit positive) in minor units, at the
    end of the period or moved within it."""
    lines = up_to(line_totals(store, period) if totals is None else totals, period,
                  published_only=True)
    if this_period_only:
        lines = lines[lines["period"] == period]
    amount = lines["functional_minor" if functional_currency else "amount_minor"]
    frame = pd.DataFrame({"account": lines["account"],
                          "currency": functional_currency or lines["currency"],
                          "amount": amount})
    return frame.groupby(["currency", "account"], as_index=False, sort=True)["amount"].sum()


def trial_balance_statement(store: Store, period: Period, functional_currency: str | None = None,
                            totals: pd.DataFrame | None = None) -> list[dict]:
    """The trial balance with debit and credit columns, every figure positive: each
    account's opening and closing balance on its side, and the period's debits and
    credits; a "Total" row per currency whose debit and credit columns are equal."""
    period = Period(period)
    lines = up_to(line_totals(store, period) if totals is None else totals, period,
                  published_only=True)
    prefix = "functional_" if functional_currency else ""
    current = lines["period"] == period
    balance = lines[f"{prefix}debit_minor"] + lines[f"{prefix}credit_minor"]
    frame = pd.DataFrame({
        "account": lines["account"], "currency": functional_currency or lines["currency"],
        "opening": balance.where(~current, 0),
        "period_debit": lines[f"{prefix}debit_minor"].where(current, 0),
        "period_credit": -lines[f"{prefix}credit_minor"].where(current, 0),
        "closing": balance,
    }).groupby(["currency", "account"], as_index=False, sort=True).sum()
    frame["opening_debit"] = frame["opening"].clip(lower=0)
    frame["opening_credit"] = (-frame["opening"]).clip(lower=0)
    frame["closing_debit"] = frame["closing"].clip(lower=0)
    frame["closing_credit"] = (-frame["closing"]).clip(lower=0)
    figures = ["opening_debit", "opening_credit", "period_debit", "period_credit",
               "closing_debit", "closing_credit"]
    rows = []
    for currency, accounts in frame.groupby("currency", sort=True):
        for row in accounts.itertuples(index=False):
            rows.append({"currency": currency, "account": row.account, "row_type": "account",
                         **{name: format_minor(int(getattr(row, name)), currency)
                            for name in figures}})
        rows.append({"currency": currency, "account": "Total", "row_type": "total",
                     **{name: format_minor(int(accounts[name].sum()), currency)
                        for name in figures}})
    return rows


def _statement_rows(currency: str, sections: list[tuple[str, pd.DataFrame, str | None]]
                    ) -> tuple[list[dict], dict[str, int]]:
    """The account lines of each section (skipped when it has none) and its subtotal;
    returns the rows and each section's total in minor units."""
    rows, section_totals = [], {}
    for section, accounts, subtotal_label in sections:
        section_totals[section] = int(accounts["amount"].sum()) if len(accounts) else 0
        if accounts.empty:
            continue
        for row in accounts.itertuples(index=False):
            rows.append({"currency": currency, "section": section, "line": row.account,
                         "row_type": "account", "amount": format_minor(int(row.amount), currency)})
        if subtotal_label:
            rows.append({"currency": currency, "section": section, "line": subtotal_label,
                         "row_type": "subtotal",
                         "amount": format_minor(section_totals[section], currency)})
    return rows, section_totals


def income_statement(store: Store, period: Period, functional_currency: str | None = None,
                     totals: pd.DataFrame | None = None,
                     chart: ChartOfAccounts = DEFAULT_CHART) -> list[dict]:
    """The period's income statement per currency: each revenue line and total revenue;
    cost of revenue (Expenses) and gross profit when costs are posted; other income;
    foreign exchange; net income. Income positive, costs negative. Sections follow the
    policy's chart (`income_statement_section`), so a renamed revenue account is revenue."""
    period = Period(period)
    moved = _balances(store, period, functional_currency, totals, this_period_only=True)
    moved = moved[moved["account"].str.startswith(("Income:", "Expenses:"))].assign(
        amount=lambda frame: -frame["amount"])
    # One lookup per account (a statement has a handful), not per line.
    moved["section"] = moved["account"].map(
        {account: income_statement_section(account, chart)
         for account in moved["account"].unique()})
    rows = []
    for currency, accounts in moved.groupby("currency", sort=True):
        section = accounts["section"]
        revenue = accounts[section == "Revenue"]
        costs = accounts[section == "Cost of revenue"]
        fx = accounts[section == "Foreign exchange"]
        other = accounts[section == "Other income"]
        section_rows, section_totals = _statement_rows(currency, [
            ("Revenue", revenue, "Total revenue"),
            ("Cost of revenue", costs, "Total cost of revenue")])
        rows += section_rows
        if len(costs):
            rows.append({"currency": currency, "section": "Gross profit", "line": "Gross profit",
                         "row_type": "subtotal", "amount": format_minor(
                             section_totals["Revenue"] + section_totals["Cost of revenue"],
                             currency)})
        more_rows, _ = _statement_rows(currency, [
            ("Other income", other, "Total other income"),
            ("Foreign exchange", fx, "Total foreign exchange")])
        rows += more_rows
        rows.append({"currency": currency, "section": "Net income", "line": "Net income",
                     "row_type": "total", "amount": format_minor(int(accounts["amount"].sum()),
                                                                 currency)})
    return rows


RETAINED_EARNINGS = "Equity:RetainedEarnings"


def balance_sheet(store: Store, period: Period, functional_currency: str | None = None,
                  totals: pd.DataFrame | None = None) -> list[dict]:
    """Balances at the end of the period per currency: assets; liabilities; equity, its
    retained earnings being the cumulative net income; their totals; and the check that
    assets = liabilities + equity (a row of type "check": the difference, zero when it
    holds)."""
    period = Period(period)
    balances = _balances(store, period, functional_currency, totals, this_period_only=False)
    rows = []
    for currency, accounts in balances.groupby("currency", sort=True):
        root = accounts["account"].str.split(":").str[0]
        assets = accounts[root == "Assets"]
        liabilities = accounts[root == "Liabilities"].assign(amount=lambda f: -f["amount"])
        earnings = -int(accounts.loc[root.isin(["Income", "Expenses"]), "amount"].sum())
        equity = pd.concat([
            accounts[root == "Equity"].assign(amount=lambda f: -f["amount"]),
            pd.DataFrame({"currency": [currency], "account": [RETAINED_EARNINGS],
                          "amount": [earnings]})], ignore_index=True)
        equity = equity.groupby(["currency", "account"], as_index=False, sort=True)["amount"].sum()
        section_rows, section_totals = _statement_rows(currency, [
            ("Assets", assets, "Total assets"), ("Liabilities", liabilities, "Total liabilities"),
            ("Equity", equity, "Total equity")])
        rows += section_rows
        claims = section_totals["Liabilities"] + section_totals["Equity"]
        rows.append({"currency": currency, "section": "Liabilities and equity",
                     "line": "Total liabilities and equity", "row_type": "total",
                     "amount": format_minor(claims, currency)})
        rows.append({"currency": currency, "section": "Check",
                     "line": "assets - (liabilities + equity)", "row_type": "check",
                     "amount": format_minor(section_totals["Assets"] - claims, currency)})
    return rows
