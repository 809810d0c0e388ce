"""Manual journals as auditors read them: who prepared, approved, rejected or reversed each
journal dated in a period, when, and its lines; and one journal for `trace entry`.

`manual_journals_rows` is the close package's `manual_journals.csv` (one row per line, its
journal's people and times on each), built through the report catalogue."""

from __future__ import annotations

import pandas as pd

from ledger.money import format_minor_column
from ledger.periods import Period
from ledger.store import Store
from reports.close_reports import iso_instants

MANUAL_JOURNAL_COLUMNS = (
    "ref", "status", "business_date", "prepared_by", "prepared_at", "approved_by",
    "approved_at", "rejected_by", "rejected_at", "reason", "reversed_by", "reversed_at",
    "reverses_ref", "reversal_ref", "entry_id", "source_file", "source_sha256", "line_number",
    "source_row", "account", "currency", "debit", "credit", "memo", "customer_id",
    "purchase_id", "functional_currency", "functional_debit", "functional_credit")
# When each person acted: stored naive UTC, shown in ISO 8601 with the offset.
INSTANT_COLUMNS = ("prepared_at", "approved_at", "rejected_at", "reversed_at")
_JOURNAL_LINES = """
    SELECT j.ref, j.status, j.business_date, j.prepared_by, j.prepared_at, j.approved_by,
           j.approved_at, j.rejected_by, j.rejected_at, j.reason, j.reversed_by, j.reversed_at,
           j.reverses_ref, j.reversal_ref, j.entry_id, j.source_file, j.source_sha256,
           l.line_number, l.source_row, l.account, l.currency, l.amount_minor, l.memo,
           l.customer_id, l.purchase_id, p.functional_minor
    FROM manual_journals j JOIN manual_journal_lines l ON l.ref = j.ref
    LEFT JOIN journal_lines p ON p.entry_id = j.entry_id AND p.line_number = l.line_number
    WHERE {where} ORDER BY j.business_date, j.ref, l.line_number
"""


def _sides(amounts: pd.Series, currencies: list[str]) -> tuple[list[str], list[str]]:
    """Debit and credit columns: each amount on its side, the other side zero."""
    return (format_minor_column(amounts.clip(lower=0).tolist(), currencies),
            format_minor_column((-amounts).clip(lower=0).tolist(), currencies))


def _rows(frame: pd.DataFrame, functional_currency: str) -> list[dict]:
    """Lines as text, times in ISO 8601 with their offset; a posted line also in the
    functional currency (a draft's is blank)."""
    debits, credits = _sides(frame["amount_minor"].astype("int64"), frame["currency"].tolist())
    posted = frame["functional_minor"].notna()
    functional = frame["functional_minor"].where(posted, 0).astype("int64")
    functional_debits, functional_credits = _sides(functional, [functional_currency] * len(frame))
    instants = {column: iso_instants(frame[column]) for column in INSTANT_COLUMNS}
    shown = frame.assign(**instants, debit=debits, credit=credits,
                         functional_currency=functional_currency,
                         functional_debit=pd.Series(functional_debits, index=frame.index).where(
                             posted, ""),
                         functional_credit=pd.Series(functional_credits, index=frame.index).where(
                             posted, ""))
    shown = shown.astype(object).where(shown.notna(), "")
    return [{column: str(row[column]) for column in MANUAL_JOURNAL_COLUMNS}
            for row in shown.to_dict("records")]


def manual_journals_rows(store: Store, period: Period, functional_currency: str) -> list[dict]:
    """Every line of every manual journal dated in the period, with its journal's life."""
    return _rows(store.read_frame(_JOURNAL_LINES.format(where="j.period = :period"),
                                  period=period), functional_currency)


def manual_journal_trace(store: Store, ref: str, functional_currency: str = "USD") -> dict:
    """A manual journal's people, times and source lines (the file, row by row)."""
    rows = _rows(store.read_frame(_JOURNAL_LINES.format(where="j.ref = :ref"), ref=ref),
                 functional_currency)
    if not rows:
        return {}
    line_columns = ("line_number", "source_row", "account", "currency", "debit", "credit",
                    "memo", "customer_id", "purchase_id", "functional_currency",
                    "functional_debit", "functional_credit")
    journal = {column: rows[0][column] for column in MANUAL_JOURNAL_COLUMNS
               if column not in line_columns}
    journal["lines"] = [{column: row[column] for column in line_columns} for row in rows]
    return journal
