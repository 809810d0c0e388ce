"""Manual journals as auditors read them: who prepared, approved, rejected or reversed each
journal dated in a period, when, and its lines; and one journal for `trace entry`.

`manual_journals_rows` is the close package's `manual_journals.csv` (one row per line, its
journal's people and times on each), built through the report catalogue."""

from __future__ import annotations

import pandas as pd

from ledger.money import format_minor_column
from ledger.periods import Period
from ledger.store import Store

MANUAL_JOURNAL_COLUMNS = (
    "ref", "status", "business_date", "prepared_by", "prepared_at", "approved_by",
    "approved_at", "rejected_by", "rejected_at", "reason", "reversed_by", "reversed_at",
    "reverses_ref", "reversal_ref", "entry_id", "source_file", "source_sha256", "line_number",
    "source_row", "account", "currency", "debit", "credit", "memo", "customer_id",
    "purchase_id")
_JOURNAL_LINES = """
    SELECT j.ref, j.status, j.business_date, j.prepared_by, j.prepared_at, j.approved_by,
           j.approved_at, j.rejected_by, j.rejected_at, j.reason, j.reversed_by, j.reversed_at,
           j.reverses_ref, j.reversal_ref, j.entry_id, j.source_file, j.source_sha256,
           l.line_number, l.source_row, l.account, l.currency, l.amount_minor, l.memo,
           l.customer_id, l.purchase_id
    FROM manual_journals j JOIN manual_journal_lines l ON l.ref = j.ref
    WHERE {where} ORDER BY j.business_date, j.ref, l.line_number
"""


def _rows(frame: pd.DataFrame) -> list[dict]:
    amounts = frame["amount_minor"].astype("int64")
    debits = format_minor_column(amounts.clip(lower=0).tolist(), frame["currency"].tolist())
    credits = format_minor_column((-amounts).clip(lower=0).tolist(), frame["currency"].tolist())
    shown = frame.assign(debit=debits, credit=credits)
    shown = shown.astype(object).where(shown.notna(), "")
    return [{column: str(row[column]) for column in MANUAL_JOURNAL_COLUMNS}
            for row in shown.to_dict("records")]


def manual_journals_rows(store: Store, period: Period) -> list[dict]:
    """Every line of every manual journal dated in the period, with its journal's life."""
    return _rows(store.read_frame(_JOURNAL_LINES.format(where="j.period = :period"),
                                  period=period))


def manual_journal_trace(store: Store, ref: str) -> dict:
    """A manual journal's people, times and source lines (the file, row by row)."""
    rows = _rows(store.read_frame(_JOURNAL_LINES.format(where="j.ref = :ref"), ref=ref))
    if not rows:
        return {}
    line_columns = ("line_number", "source_row", "account", "currency", "debit", "credit",
                    "memo", "customer_id", "purchase_id")
    journal = {column: rows[0][column] for column in MANUAL_JOURNAL_COLUMNS
               if column not in line_columns}
    journal["lines"] = [{column: row[column] for column in line_columns} for row in rows]
    return journal
