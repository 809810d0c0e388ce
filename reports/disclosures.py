"""The revenue disclosures of a close (ASC 606-10-50, IFRS 15.113-129), labelled as such.

Most are reports the close already has: contract balances are the rollforward, revenue
from the opening balance is `revenue_from_opening`, remaining performance obligations
with their expected timing are the waterfall (in the functional currency too). This
module adds the two that were missing, disaggregation of revenue and the significant
judgements about breakage, and an index naming the file of each disclosure.
"""

from __future__ import annotations

from datetime import timedelta

import pandas as pd

from ledger.accounts import ChartOfAccounts
from ledger.domain import BatchStatus, EntryKind, LotKind
from ledger.money import format_minor_column
from ledger.periods import Period
from ledger.store import Store
from rules.policy import Policy

DISCLOSURES = (
    ("Disaggregation of revenue (product, meter, customer country)",
     "ASC 606-10-50-5; IFRS 15.114-115", "disclosure_revenue_disaggregation.csv"),
    ("Contract balances: deferred revenue opening, movements, closing",
     "ASC 606-10-50-8; IFRS 15.116-118", "rollforward.csv; rollforward_functional.csv"),
    ("Revenue recognised from the opening contract balance",
     "ASC 606-10-50-8(b); IFRS 15.116(b)", "revenue_from_opening.csv"),
    ("Remaining performance obligations and when they are expected to be recognised",
     "ASC 606-10-50-13; IFRS 15.120", "waterfall_functional.csv; waterfall.csv"),
    ("Significant judgements: breakage method and rates, expected against actual",
     "ASC 606-10-50-17 to 50-20; IFRS 15.123-126",
     "disclosure_breakage_judgements.csv; breakage_estimates.csv"),
)


def disclosure_index() -> list[dict]:
    return [{"disclosure": name, "reference": reference, "files": files}
            for name, reference, files in DISCLOSURES]


def revenue_disaggregation(store: Store, period: Period, accounts: ChartOfAccounts) -> list[dict]:
    """Revenue recognised in the period (usage and breakage) by product, by meter and by
    customer country, per currency; each dimension adds up to the income statement's
    revenue. Product and country come from the lot of each deferred revenue line, the
    meter from the usage revenue lines; breakage belongs to no meter (a row of its own).
    Revenue that approved manual journals posted is a row of its own in each dimension
    ("(manual journals)"): a person's entry names no product, meter or country."""
    period = Period(period)
    released = store.read_frame("""
        SELECT e.kind, l.currency, o.product, o.country, SUM(l.amount_minor) AS amount
        FROM journal_lines l JOIN journal_entries e ON e.entry_id = l.entry_id
        JOIN batches b ON b.batch_id = e.batch_id JOIN lots o ON o.purchase_id = l.purchase_id
        WHERE e.period = :period AND l.account = :account AND e.kind IN (:usage, :breakage)
          AND b.status <> :open
        GROUP BY e.kind, l.currency, o.product, o.country
    """, period=period, account=accounts.deferred_revenue, usage=EntryKind.USAGE,
        breakage=EntryKind.BREAKAGE, open=BatchStatus.OPEN)
    by_meter = store.read_frame("""
        SELECT 'usage' AS kind, l.currency, l.meter, -SUM(l.amount_minor) AS amount
        FROM journal_lines l JOIN journal_entries e ON e.entry_id = l.entry_id
        JOIN batches b ON b.batch_id = e.batch_id
        WHERE e.period = :period AND l.account = :account AND e.kind = :usage
          AND b.status <> :open
        GROUP BY l.currency, l.meter
    """, period=period, account=accounts.usage_revenue, usage=EntryKind.USAGE,
        open=BatchStatus.OPEN)
    breakage = released[released["kind"] == EntryKind.BREAKAGE]
    by_meter = pd.concat([by_meter, breakage.groupby("currency", as_index=False)["amount"].sum()
                          .assign(kind=EntryKind.BREAKAGE.value, meter="(breakage: no meter)")],
                         ignore_index=True)
    released["country"] = released["country"].fillna("").replace("", "(not given)")
    manual = store.read_frame("""
        SELECT CASE WHEN l.account = :usage THEN 'usage' ELSE 'breakage' END AS kind,
               l.currency, '(manual journals)' AS source, -SUM(l.amount_minor) AS amount
        FROM journal_lines l JOIN journal_entries e ON e.entry_id = l.entry_id
        JOIN batches b ON b.batch_id = e.batch_id
        WHERE e.period = :period AND e.kind = :manual AND l.account IN (:usage, :breakage)
          AND b.status <> :open
        GROUP BY CASE WHEN l.account = :usage THEN 'usage' ELSE 'breakage' END, l.currency
    """, period=period, usage=accounts.usage_revenue, breakage=accounts.breakage_revenue,
        manual=EntryKind.MANUAL, open=BatchStatus.OPEN)
    parts = [_by(released, "product", "product"), _by(by_meter, "meter", "meter"),
             _by(released, "customer country", "country"),
             *(_by(manual, dimension, "source")
               for dimension in ("product", "meter", "customer country"))]
    frame = pd.concat(parts, ignore_index=True)
    if frame.empty:
        return []
    frame["total"] = frame["usage_revenue"] + frame["breakage"]
    for column in ("usage_revenue", "breakage", "total"):
        frame[column] = format_minor_column(frame[column].tolist(), frame["currency"].tolist())
    return frame[["dimension", "key", "currency", "usage_revenue", "breakage",
                  "total"]].to_dict("records")


def _by(lines: pd.DataFrame, dimension: str, column: str) -> pd.DataFrame:
    amount = lines["amount"].astype("int64")
    frame = pd.DataFrame({"currency": lines["currency"], "key": lines[column],
                          "usage_revenue": amount.where(lines["kind"] == EntryKind.USAGE, 0),
                          "breakage": amount.where(lines["kind"] == EntryKind.BREAKAGE, 0)})
    return frame.groupby(["currency", "key"], as_index=False, sort=True)[
        ["usage_revenue", "breakage"]].sum().assign(dimension=dimension)


def breakage_judgements(store: Store, period: Period, policy: Policy,
                        estimates: list[dict]) -> list[dict]:
    """Per product: the breakage method and the rate in force at the end of the period,
    beside the expected and actual rates of its lots expired to date (`estimates`: the
    breakage_estimates report)."""
    following = Period(period).following_first_day
    last_day = following - timedelta(days=1)
    products = sorted(store.read_frame("SELECT DISTINCT product FROM lots WHERE kind = :paid",
                                       paid=LotKind.PAID)
                      ["product"].dropna())
    by_product: dict[str, list[dict]] = {}
    for row in estimates:
        by_product.setdefault(row["product"], []).append(row)
    rows = []
    for product in products:
        rule = policy.breakage_rule(product)
        rate = rule.rate_on(last_day)
        for estimate in by_product.get(product) or [{}]:
            rows.append({"product": product, "method": rule.method,
                         "rate_in_force": "" if rate is None else str(rate),
                         "in_force_on": str(last_day), "currency": estimate.get("currency", ""),
                         "lots_expired_to_date": estimate.get("lots_expired", 0),
                         "expected_rate": estimate.get("estimated_rate", ""),
                         "actual_rate": estimate.get("actual_rate", "")})
    return rows
