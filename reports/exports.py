"""Journal exports for ERPs: NetSuite, QuickBooks Online, Xero, SAP and a generic CSV.

The ledger's entries for a period are summarised into journals in SQL: by default one
journal per business day, entry kind and currency (ERP journals carry one currency),
with one line per account; `summary="monthly"` makes one per kind and currency for the
period, and `by_customer` adds the customer to every line. Each journal balances because
each entry does. Rows stream from the database to the file. Column names, dates, signs
and grouping follow each ERP's journal import (see ACCOUNTING.md); text cells are
neutralised against spreadsheet formula injection; Xero files hold at most 300 lines.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import groupby
from pathlib import Path

from sqlalchemy import text

from ledger.money import format_minor, minor_unit_exponent
from ledger.periods import parse_period
from ledger.store import Store
from reports.package import neutralise
from rules.policy import ExportSettings

XERO_MAX_LINES = 300
_FETCH_ROWS = 5_000


@dataclass(frozen=True)
class JournalLine:
    journal_id: str
    date: date
    period: str
    kind: str
    currency: str
    account: str
    customer_id: str
    amount_minor: int  # debit positive, credit negative

    @property
    def debit(self) -> str:
        return format_minor(self.amount_minor, self.currency) if self.amount_minor > 0 else ""

    @property
    def credit(self) -> str:
        return format_minor(-self.amount_minor, self.currency) if self.amount_minor < 0 else ""


def journal_lines(store: Store, period: str, summary: str = "daily", by_customer: bool = False,
                  functional_currency: str | None = None) -> Iterator[JournalLine]:
    """The period's journals, line by line, ordered by journal; in each line's transaction
    currency, or all in the functional currency when it is given."""
    if summary not in ("daily", "monthly"):
        raise ValueError(f"summary {summary!r} must be daily or monthly")
    first, following = parse_period(period)
    last_day = following - timedelta(days=1)
    day = "e.business_date" if summary == "daily" else "NULL"
    customer = "e.customer_id" if by_customer else "NULL"
    amount = "l.functional_minor" if functional_currency else "l.amount_minor"
    currency = "CAST(:functional AS VARCHAR(3))" if functional_currency else "l.currency"
    grouped = ", ".join(column for column in (day, "e.kind", "NULL" if functional_currency
                                              else "l.currency", customer, "l.account")
                        if column != "NULL")
    statement = text(f"""
        SELECT {day} AS day, e.kind, {currency} AS currency, l.account,
               {customer} AS customer_id, SUM({amount}) AS amount
        FROM journal_lines l JOIN journal_entries e ON e.entry_id = l.entry_id
        WHERE e.period = :period
        GROUP BY {grouped}
        HAVING SUM({amount}) <> 0
        ORDER BY {grouped}
    """)
    parameters = {"period": period}
    if functional_currency:
        parameters["functional"] = functional_currency
    with store.engine.connect() as connection:
        result = connection.execution_options(stream_results=True).execute(
            statement, parameters)
        while rows := result.fetchmany(_FETCH_ROWS):
            for row in rows:
                journal_date = date.fromisoformat(str(row.day)[:10]) if row.day else last_day
                yield JournalLine(
                    journal_id=f"CB-{journal_date.isoformat() if summary == 'daily' else period}-"
                               f"{row.kind}-{row.currency}",
                    date=journal_date, period=period, kind=row.kind, currency=row.currency,
                    account=row.account, customer_id=row.customer_id or "",
                    amount_minor=int(row.amount))


def _memo(line: JournalLine, draft: bool) -> str:
    return f"creditbooks {line.kind} {line.period}" + (" DRAFT" if draft else "")


def _rows_netsuite(lines, settings: ExportSettings, draft: bool):
    yield ["External ID", "Date", "Posting Period", "Subsidiary", "Currency", "Exchange Rate",
           "Memo", "Account", "Debit", "Credit", "Line Memo", "Name", "Department", "Class",
           "Location"]
    for line in lines:
        if minor_unit_exponent(line.currency) > 2:
            raise ValueError(f"NetSuite journal import takes at most 2 decimals; {line.currency} "
                             "has 3: export it with --format csv")
        posting_period = date.fromisoformat(line.period + "-01").strftime("%b %Y")
        yield [line.journal_id, line.date.strftime("%m/%d/%Y"), posting_period,
               settings.netsuite_subsidiary, line.currency, "1", _memo(line, draft),
               settings.code("netsuite", line.account), line.debit, line.credit, line.kind,
               line.customer_id, "", "", ""]


def _rows_quickbooks(lines, settings: ExportSettings, draft: bool):
    yield ["Journal No", "Journal Date", "Currency Code", "Account Name", "Description", "Debits",
           "Credits", "Name", "Location", "Class"]
    for line in lines:
        yield [line.journal_id, line.date.strftime("%m/%d/%Y"), line.currency,
               settings.code("quickbooks", line.account), _memo(line, draft), line.debit,
               line.credit, line.customer_id, "", ""]


def _rows_sap(lines, settings: ExportSettings, draft: bool):
    yield ["REF_DOC_NO", "COMP_CODE", "DOC_DATE", "PSTNG_DATE", "DOC_TYPE", "HEADER_TXT",
           "ITEMNO_ACC", "GL_ACCOUNT", "CURRENCY", "AMT_DOCCUR", "ITEM_TEXT"]
    for _, journal in groupby(lines, key=lambda line: line.journal_id):
        for item, line in enumerate(journal, start=1):
            yield [line.journal_id, settings.sap_company_code, line.date.strftime("%Y%m%d"),
                   line.date.strftime("%Y%m%d"), settings.sap_document_type, _memo(line, draft)[:25],
                   f"{item:010d}", settings.code("sap", line.account), line.currency,
                   format_minor(line.amount_minor, line.currency), line.customer_id]


def _rows_csv(lines, settings: ExportSettings, draft: bool):
    yield ["journal_id", "date", "period", "kind", "currency", "account", "customer_id", "debit",
           "credit", "amount", "draft"]
    for line in lines:
        yield [line.journal_id, line.date.isoformat(), line.period, line.kind, line.currency,
               line.account, line.customer_id, line.debit, line.credit,
               format_minor(line.amount_minor, line.currency), "yes" if draft else "no"]


def _write(path: Path, rows) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        for row in rows:
            writer.writerow([neutralise(cell) for cell in row])


def _write_xero(out: Path, lines, settings: ExportSettings, draft: bool) -> list[Path]:
    """Xero: one file per currency (manual journals have none), at most 300 lines each."""
    header = ["Narration", "Date", "Description", "AccountCode", "TaxRate", "Amount",
              "TrackingName1", "TrackingOption1"]
    files: list[Path] = []
    by_currency: dict[str, list[list[list[str]]]] = {}
    for _, grouped in groupby(lines, key=lambda line: line.journal_id):
        journal = list(grouped)
        rows = [[line.journal_id + (" DRAFT" if draft else ""), line.date.strftime("%d/%m/%Y"),
                 _memo(line, draft), settings.code("xero", line.account), settings.xero_tax_rate,
                 format_minor(line.amount_minor, line.currency),
                 "Customer" if line.customer_id else "", line.customer_id] for line in journal]
        if len(rows) > XERO_MAX_LINES:
            raise ValueError(f"journal {rows[0][0]} has {len(rows)} lines; Xero takes at most "
                             f"{XERO_MAX_LINES}: export with --summary daily or without --by customer")
        by_currency.setdefault(journal[0].currency, []).append(rows)
    for currency, journals in sorted(by_currency.items()):
        parts: list[list[list[str]]] = [[]]
        for rows in journals:
            if len(parts[-1]) + len(rows) > XERO_MAX_LINES:
                parts.append([])
            parts[-1].extend(rows)
        for number, rows in enumerate(parts, start=1):
            path = out.with_name(f"{out.stem}-{currency}-{number}{out.suffix or '.csv'}")
            _write(path, [header, *rows])
            files.append(path)
    return files


WRITERS = {"netsuite": _rows_netsuite, "quickbooks": _rows_quickbooks, "sap": _rows_sap,
           "csv": _rows_csv}


def export_period(store: Store, period: str, target: str, out: Path, settings: ExportSettings,
                  summary: str = "daily", by_customer: bool = False, draft: bool = False,
                  functional_currency: str | None = None) -> list[Path]:
    """Write the period's journals for one ERP; returns the files written."""
    lines = journal_lines(store, period, summary, by_customer, functional_currency)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if target == "xero":
        return _write_xero(out, lines, settings, draft)
    if target not in WRITERS:
        raise ValueError(f"unknown export format {target!r}")
    _write(out, WRITERS[target](lines, settings, draft))
    return [out]
