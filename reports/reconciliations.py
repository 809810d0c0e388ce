"""Month-end reconciliations: both sides, the difference, pass or fail, and the items behind it.

Each reconciliation computes its two sides from different tables (the credit subledger
against the general ledger, ingestion control totals against postings, ...) so that a
difference means something is wrong, and lists the lots, days or entries that explain it.
A close refuses to lock a period while any of them fails.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

import pandas as pd

from ledger.domain import EntryKind, PeriodAction
from ledger.money import format_micro_credits, format_minor, parse_amount_minor
from ledger.periods import Period
from ledger.store import Store
from reports.controls import usage_accounting_by_day
from reports.line_totals import line_totals, up_to
from reports.subledger import lot_state_frame

_MAX_ITEMS = 50


@dataclass(frozen=True)
class Line:
    scope: str  # a currency, "credits" or "rows"
    left: int
    right: int

    @property
    def difference(self) -> int:
        return self.left - self.right


@dataclass(frozen=True)
class Reconciliation:
    name: str
    left_label: str
    right_label: str
    lines: tuple[Line, ...]
    items: tuple[str, ...] = field(default=())

    @property
    def passed(self) -> bool:
        return all(line.difference == 0 for line in self.lines) and not self.items

    def rows(self) -> list[dict]:
        return [{"reconciliation": self.name, "scope": line.scope,
                 "left": self.left_label, "left_amount": _show(line.left, line.scope),
                 "right": self.right_label, "right_amount": _show(line.right, line.scope),
                 "difference": _show(line.difference, line.scope),
                 "passed": line.difference == 0 and not self.items}
                for line in self.lines] or [{
                    "reconciliation": self.name, "scope": "", "left": self.left_label,
                    "left_amount": "", "right": self.right_label, "right_amount": "",
                    "difference": "", "passed": not self.items}]


def _show(value: int, scope: str) -> str:
    if scope == "credits":
        return format_micro_credits(value)
    if scope == "rows":
        return str(value)
    return format_minor(value, scope)


def _lines(left: dict, right: dict) -> tuple[Line, ...]:
    return tuple(Line(scope, int(left.get(scope, 0)), int(right.get(scope, 0)))
                 for scope in sorted(set(left) | set(right)))


def reconcile_period(store: Store, period: Period, deferred_account: str, cash_account: str,
                     tax_account: str) -> list[Reconciliation]:
    return [reconcile() for reconcile in reconciliations_of(
        store, period, deferred_account, cash_account, tax_account)]


def reconciliations_of(store: Store, period: Period, deferred_account: str, cash_account: str,
                       tax_account: str) -> list[Callable[[], Reconciliation]]:
    """The period's reconciliations, in report order, each run when called (a close runs
    them side by side)."""
    return [
        lambda: subledger_equals_ledger(store, period, deferred_account),
        lambda: usage_control_totals(store, period),
        lambda: purchases_equal_postings(store, period, deferred_account, cash_account,
                                         tax_account),
        lambda: ingestion_rows_accounted(store, period),
        lambda: journal_integrity(store, period),
    ]


def subledger_equals_ledger(store: Store, period: Period, deferred_account: str) -> Reconciliation:
    following = Period(period).following_first_day
    lots = lot_state_frame(store, as_of=following - timedelta(days=1))
    lots["value_remaining"] = lots["value_remaining_minor"]
    lines = up_to(line_totals(store, period), period)
    lines = lines[lines["account"] == deferred_account]
    ledger = -lines.groupby("purchase_id")["amount_minor"].sum()
    lots["ledger_value"] = lots["purchase_id"].map(ledger).fillna(0).astype("int64")
    left = lots.groupby("currency")["value_remaining"].sum().to_dict()
    right = lots.groupby("currency")["ledger_value"].sum().to_dict()
    differing = lots[lots["value_remaining"] != lots["ledger_value"]]
    items = tuple(f"lot {row.purchase_id}: subledger {row.value_remaining}, ledger {row.ledger_value}"
                  for row in differing.head(_MAX_ITEMS).itertuples(index=False))
    return Reconciliation("credit subledger = GL deferred revenue", "remaining value of lots",
                          "GL deferred revenue", _lines(left, right), items)


def usage_control_totals(store: Store, period: Period) -> Reconciliation:
    first, following = Period(period).first_day, Period(period).following_first_day
    days = usage_accounting_by_day(store, first, following)
    accepted = int(days["accepted"].sum()) if len(days) else 0
    accounted = int((days["burned"] + days["uncovered"]).sum()) if len(days) else 0
    items = tuple(f"{row.business_date}: accepted {format_micro_credits(int(row.accepted))}, burned "
                  f"{format_micro_credits(int(row.burned))} + uncovered "
                  f"{format_micro_credits(int(row.uncovered))}"
                  for row in days.itertuples(index=False) if row.accepted != row.burned + row.uncovered)
    return Reconciliation("usage credits accepted = burned + uncovered", "credits accepted",
                          "credits burned + uncovered",
                          (Line("credits", accepted, accounted),), items[:_MAX_ITEMS])


def purchases_equal_postings(store: Store, period: Period, deferred_account: str, cash_account: str,
                             tax_account: str) -> Reconciliation:
    first, following = Period(period).first_day, Period(period).following_first_day
    lots = store.read_frame("""
        SELECT currency, SUM(amount_minor) AS amount, SUM(tax_minor) AS tax FROM lots
        WHERE business_date >= :first AND business_date < :following GROUP BY currency
    """, first=first, following=following).set_index("currency")
    posted = store.read_frame("""
        SELECT l.currency, l.account, SUM(l.amount_minor) AS amount FROM journal_lines l
        JOIN journal_entries e ON e.entry_id = l.entry_id
        WHERE e.kind = :purchase AND e.business_date >= :first AND e.business_date < :following
        GROUP BY l.currency, l.account
    """, first=first, following=following, purchase=EntryKind.PURCHASE)
    posted_by = {(row.currency, row.account): int(row.amount) for row in posted.itertuples(index=False)}
    ingested_amounts: dict[str, int] = {}
    for text in store.read_frame("""
        SELECT f.amounts_accepted_json FROM batch_files f JOIN batches b ON b.batch_id = f.batch_id
        WHERE f.document = 'purchases' AND b.business_date >= :first AND b.business_date < :following
    """, first=first, following=following)["amounts_accepted_json"]:
        for currency, amount in json.loads(text).items():
            ingested_amounts[currency] = ingested_amounts.get(currency, 0) + parse_amount_minor(
                amount, currency)
    left, right, items = {}, {}, []
    for currency in sorted(set(lots.index) | {currency for currency, _ in posted_by}):
        amount = int(lots["amount"].get(currency, 0))
        tax = int(lots["tax"].get(currency, 0))
        left[currency] = amount + tax
        right[currency] = posted_by.get((currency, cash_account), 0)
        if -posted_by.get((currency, deferred_account), 0) != amount:
            items.append(f"{currency}: purchase amounts {amount} != deferred revenue credited "
                         f"{-posted_by.get((currency, deferred_account), 0)} (minor units)")
        if -posted_by.get((currency, tax_account), 0) != tax:
            items.append(f"{currency}: tax {tax} != tax liability credited "
                         f"{-posted_by.get((currency, tax_account), 0)} (minor units)")
        if ingested_amounts.get(currency, 0) != amount:
            items.append(f"{currency}: ingestion control total {ingested_amounts.get(currency, 0)} "
                         f"!= lots {amount} (minor units)")
    return Reconciliation("purchases ingested = cash clearing and tax postings",
                          "amount + tax of purchases ingested", "cash clearing debited",
                          _lines(left, right), tuple(items))


def ingestion_rows_accounted(store: Store, period: Period) -> Reconciliation:
    first, following = Period(period).first_day, Period(period).following_first_day
    # A night's usage totals carry its business date, the first column of their key: found
    # by date, not by a scan of every night's totals per file.
    files = store.read_frame("""
        SELECT f.batch_id, f.document, f.rows_read, f.rows_accepted, f.rows_duplicate,
               f.rows_rejected,
               CASE WHEN f.document = 'usage' THEN (SELECT COALESCE(SUM(u.event_count), 0)
                        FROM usage_daily u WHERE u.business_date = b.business_date
                        AND u.batch_id = f.batch_id)
                    WHEN f.document = 'purchases' THEN (SELECT COUNT(*) FROM lots o
                        WHERE o.batch_id = f.batch_id)
                    WHEN f.document = 'costs' THEN (SELECT COUNT(*) FROM costs c
                        WHERE c.batch_id = f.batch_id)
                    WHEN f.document = 'refunds' THEN (SELECT COUNT(*) FROM refunds r
                        WHERE r.batch_id = f.batch_id)
                    WHEN f.document = 'adjustments' THEN (SELECT COUNT(*) FROM lot_adjustments a
                        WHERE a.batch_id = f.batch_id)
                    WHEN f.document = 'fx_rates' THEN (SELECT COUNT(*) FROM fx_rates x
                        WHERE x.batch_id = f.batch_id)
                    ELSE 0 END AS stored
        FROM batch_files f JOIN batches b ON b.batch_id = f.batch_id
        WHERE b.business_date >= :first AND b.business_date < :following
        ORDER BY f.batch_id, f.document
    """, first=first, following=following)
    read = int(files["rows_read"].sum()) if len(files) else 0
    accounted = int((files["rows_accepted"] + files["rows_duplicate"] + files["rows_rejected"]).sum()
                    ) if len(files) else 0
    items = [f"{row.batch_id} {row.document}: read {row.rows_read} != accepted {row.rows_accepted}"
             f" + duplicates {row.rows_duplicate} + rejected {row.rows_rejected}"
             for row in files.itertuples(index=False)
             if row.rows_read != row.rows_accepted + row.rows_duplicate + row.rows_rejected]
    items += [f"{row.batch_id} {row.document}: {row.rows_accepted} rows accepted but "
              f"{row.stored} stored" for row in files.itertuples(index=False)
              if row.rows_accepted != row.stored]
    return Reconciliation("rows read = accepted + duplicates + rejected", "rows read",
                          "rows accepted + duplicates + rejected", (Line("rows", read, accounted),),
                          tuple(items[:_MAX_ITEMS]))


def unbalanced_entries_query(period: Period) -> tuple[str, dict]:
    """The SQL and parameters of the entries of a period that do not balance, per currency
    (a close starts this read of every line early, elsewhere)."""
    # CROSS JOIN: SQLite then walks the lines in key order, entry after entry, instead of
    # looking each entry's lines up (three times slower); PostgreSQL plans it as the inner
    # join it is.
    return ("""
        SELECT l.entry_id, l.currency FROM journal_lines l CROSS JOIN journal_entries e
        WHERE e.entry_id = l.entry_id AND e.period = :period
        GROUP BY l.entry_id, l.currency HAVING SUM(l.amount_minor) <> 0 ORDER BY l.entry_id
    """, {"period": period})


def journal_integrity(store: Store, period: Period) -> Reconciliation:
    sql, parameters = unbalanced_entries_query(period)
    unbalanced = store.read_frame(sql, **parameters)
    after_lock = store.read_frame("""
        SELECT e.entry_id, e.period FROM journal_entries e
        JOIN (SELECT period, MAX(recorded_at) AS locked_at FROM period_events
              WHERE action = :close GROUP BY period) c ON c.period = e.period
        WHERE e.recorded_at > c.locked_at
          AND NOT EXISTS (SELECT 1 FROM period_events r WHERE r.period = e.period
                          AND r.action = :reopen AND r.recorded_at >= c.locked_at)
        ORDER BY e.entry_id
    """, close=PeriodAction.CLOSE, reopen=PeriodAction.REOPEN)
    lines = up_to(line_totals(store, period), period)
    lines = lines[lines["period"] == period]
    totals = pd.DataFrame({"debits": lines["debit_minor"].groupby(lines["currency"]).sum(),
                           "credits": -lines["credit_minor"].groupby(lines["currency"]).sum()})
    items = [f"entry {row.entry_id} does not balance in {row.currency}"
             for row in unbalanced.itertuples(index=False)]
    items += [f"entry {row.entry_id} was posted into {row.period} after it was locked"
              for row in after_lock.itertuples(index=False)]
    return Reconciliation("journal: entries balance, debits = credits, nothing after a lock",
                          "debits", "credits",
                          _lines(totals["debits"].to_dict(), totals["credits"].to_dict()),
                          tuple(items[:_MAX_ITEMS]))
