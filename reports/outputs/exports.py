"""Journal exports for ERPs (NetSuite, QuickBooks Online, Xero, SAP) and a generic CSV.

The ledger's entries for a period are summarised into journals: by default one journal
per business day, entry kind and currency, with one line per account (`summary="monthly"`:
one per kind and currency; `by_customer` adds the customer to every line). Each target's
import rules live in `reports.outputs.erp_rules`, and every export passes its target's validator
before anything is written.

Foreign currency is exported so the ERP posts the ledger's functional amounts exactly:
NetSuite and QuickBooks get one exchange rate per journal, chosen so that every line's
amount x rate rounds to its functional amount (a journal no rate can serve is split by the
purchase-date rates of its entries, then by entry; what still cannot be served is
refused, naming --functional); Xero takes the functional currency only; SAP gets the
document and the local (functional) currency amount on every line. Lines that move only
functional amounts (the month-end FX remeasurement) go out as functional-currency lines.

Each journal gets a short external id that is the same on every re-export of the period
(`CB2602DT-000001`; drafts `DR...`): the ledger keeps every id issued
(`exported_journal_ids`), so a journal key keeps its number in its id namespace (the
prefix) even when a reopen adds journals, and a new key gets the namespace's next number,
never one already used. A mapping file beside the export ties each id to its journal key,
entries and batches. The journals, and so the ids, do not depend on the
target: a journal split by rate for NetSuite is split the same way in the SAP and CSV
files, so one id names the same ledger entries in every file of a period (a target that
needs no rate carries each part with its lines' own amounts). Every account needs a code
for the target, sent exactly as written in the policy: a code the ERP would refuse, or
one the export would have to change, is refused naming the policy file.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from itertools import groupby
from math import floor
from pathlib import Path

import pandas as pd
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from ledger.money import format_minor, minor_unit_exponent
from ledger.periods import Period
from ledger.store import Store
from reports.outputs.erp_rules import (
    MAX_RATE_DECIMAL_PLACES,
    TARGET_RULES,
    ExportRefused,
    mapping_problems,
    refuse_if_broken,
    validate_rows,
)
from reports.outputs.package import neutralise
from rules.policy import ExportSettings

XERO_MAX_LINES = 300
_FETCH_ROWS = 5_000


@dataclass(frozen=True)
class JournalLine:
    journal_id: str
    date: date
    period: Period
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


def journal_lines(store: Store, period: Period, summary: str = "daily", by_customer: bool = False,
                  functional_currency: str | None = None) -> Iterator[JournalLine]:
    """The period's journals, line by line, ordered by journal; in each line's transaction
    currency, or all in the functional currency when it is given."""
    if summary not in ("daily", "monthly"):
        raise ValueError(f"summary {summary!r} must be daily or monthly")
    following = Period(period).following_first_day
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




ERP_TARGETS = ("netsuite", "quickbooks", "xero", "sap")
MAX_JOURNALS_PER_EXPORT = 999_999  # the id's six digits, per id namespace
DATE_FORMATS = {"MM/DD/YYYY": "%m/%d/%Y", "DD/MM/YYYY": "%d/%m/%Y", "YYYY-MM-DD": "%Y-%m-%d",
                "DD MMM YYYY": "%d %b %Y"}
MAPPING_COLUMNS = ["external_id", "journal_key", "date", "kind", "currency", "exchange_rate",
                   "lines", "entries", "batches"]


@dataclass(frozen=True)
class ExportLine:
    account: str
    customer_id: str
    amount_minor: int  # in the journal's currency, debit positive
    functional_minor: int


@dataclass
class Journal:
    """One journal as an ERP imports it: one date, currency and exchange rate."""

    key: str  # what the ledger groups: date/kind/currency, and the split if any
    date: date
    period: Period
    kind: str
    currency: str
    lines: list[ExportLine]
    entries: int
    batches: str
    exchange_rate: Decimal = Decimal(1)
    external_id: str = ""


@dataclass(frozen=True)
class ExportRequest:
    """What to export: the period, how journals are summarised, and in which currency."""

    period: Period
    summary: str = "daily"
    by_customer: bool = False
    draft: bool = False
    in_functional: bool = False
    functional_currency: str = "USD"


def _journal_frame(store: Store, request: ExportRequest) -> pd.DataFrame:
    """The period's lines summed per journal (day or month, kind, currency) and account."""
    day = "e.business_date" if request.summary == "daily" else "NULL"
    customer = "e.customer_id" if request.by_customer else "NULL"
    grouped = ", ".join(column for column in (day, "e.kind", "l.currency", customer, "l.account")
                        if column != "NULL")
    lines = store.read_frame(f"""
        SELECT {day} AS day, e.kind, l.currency, l.account, {customer} AS customer_id,
               SUM(l.amount_minor) AS amount_minor, SUM(l.functional_minor) AS functional_minor
        FROM journal_lines l JOIN journal_entries e ON e.entry_id = l.entry_id
        WHERE e.period = :period
        GROUP BY {grouped}
        HAVING SUM(l.amount_minor) <> 0 OR SUM(l.functional_minor) <> 0
        ORDER BY {grouped}
    """, period=request.period)
    return _typed(lines, request)


def _journal_days(days: pd.Series, request: ExportRequest) -> list[date]:
    """Each row's journal date: its business day, or the period's last day when monthly."""
    if request.summary == "monthly":
        return [Period(request.period).last_day] * len(days)
    return [date.fromisoformat(str(day)[:10]) for day in days]


def _typed(frame: pd.DataFrame, request: ExportRequest) -> pd.DataFrame:
    frame = frame.astype({"amount_minor": "int64", "functional_minor": "int64"})
    frame["day"] = _journal_days(frame["day"], request)
    frame["customer_id"] = frame["customer_id"].fillna("").astype(str)
    if request.in_functional:
        frame = frame.assign(currency=request.functional_currency,
                             amount_minor=frame["functional_minor"])
    return frame[frame["amount_minor"].ne(0) | frame["functional_minor"].ne(0)]


def _journal_statistics(store: Store, request: ExportRequest) -> dict[tuple, tuple[int, str]]:
    """(day, kind, currency) -> (entries, batches) of the period."""
    day = "e.business_date" if request.summary == "daily" else "NULL"
    frame = store.read_frame(f"""
        SELECT {day} AS day, e.kind, l.currency, e.batch_id, COUNT(DISTINCT e.entry_id) AS entries
        FROM journal_lines l JOIN journal_entries e ON e.entry_id = l.entry_id
        WHERE e.period = :period
        GROUP BY {", ".join(c for c in (day, "e.kind", "l.currency", "e.batch_id") if c != "NULL")}
    """, period=request.period)
    frame["day"] = _journal_days(frame["day"], request)
    if request.in_functional:
        frame["currency"] = request.functional_currency
    statistics: dict[tuple, tuple[int, str]] = {}
    for (day_value, kind, currency), part in frame.groupby(["day", "kind", "currency"]):
        statistics[(day_value, kind, currency)] = (
            int(part["entries"].sum()), " ".join(sorted(set(part["batch_id"]))))
    return statistics


def _lines_of(frame: pd.DataFrame) -> list[ExportLine]:
    summed = frame.groupby(["account", "customer_id"], sort=True)[
        ["amount_minor", "functional_minor"]].sum().reset_index()
    summed = summed[summed["amount_minor"].ne(0) | summed["functional_minor"].ne(0)]
    return [ExportLine(account, customer, int(amount), int(functional)) for account, customer,
            amount, functional in summed.itertuples(index=False)]


def fit_exchange_rate(lines: list[ExportLine], currency: str, functional: str) -> Decimal | None:
    """The shortest rate (at most MAX_RATE_DECIMAL_PLACES decimals) at which every line's
    amount x rate rounds to its functional amount, never on a half; None if there is none.

    A foreign journal never gets the rate 1, even where it would be exact (a few cents):
    a rate of 1 on a foreign journal is what an export that forgot the rate looks like,
    and the validators refuse it."""
    scale = Fraction(10 ** minor_unit_exponent(functional), 10 ** minor_unit_exponent(currency))
    low, high = Fraction(0), None
    for line in lines:
        if line.amount_minor == 0:
            return None
        bounds = sorted(Fraction(2 * line.functional_minor + side, 2) / (line.amount_minor * scale)
                         for side in (-1, 1))
        low = max(low, bounds[0])
        high = bounds[1] if high is None else min(high, bounds[1])
    if high is None or low >= high:
        return None
    middle = (low + high) / 2
    for places in range(MAX_RATE_DECIMAL_PLACES + 1):
        unit = 10 ** places
        nearest = round(middle * unit)
        for numerator in (nearest, nearest + 1, nearest - 1, floor(low * unit) + 1):
            if (numerator > 0 and low < Fraction(numerator, unit) < high
                    and (currency == functional or numerator != unit)):
                return Decimal(numerator).scaleb(-places).normalize()
    return None


def _entry_frame(store: Store, request: ExportRequest, day: date, kind: str,
                 currency: str) -> pd.DataFrame:
    """One journal's lines per entry, with the purchase-date rate of each line's lot."""
    # PostgreSQL refuses a constant in GROUP BY: the customer is grouped only when asked for.
    customer = ", e.customer_id" if request.by_customer else ""
    parameters = {"period": request.period, "kind": kind, "currency": currency}
    on_day = ""
    if request.summary == "daily":
        on_day, parameters["day"] = "AND e.business_date = :day", day
    frame = store.read_frame(f"""
        SELECT e.entry_id, e.batch_id, l.account{customer},
               COALESCE(lots.rate_to_functional, '') AS lot_rate,
               SUM(l.amount_minor) AS amount_minor, SUM(l.functional_minor) AS functional_minor
        FROM journal_lines l JOIN journal_entries e ON e.entry_id = l.entry_id
        LEFT JOIN lots ON lots.purchase_id = l.purchase_id
        WHERE e.period = :period AND e.kind = :kind AND l.currency = :currency {on_day}
        GROUP BY e.entry_id, e.batch_id, l.account{customer}, lots.rate_to_functional
    """, **parameters)
    if not request.by_customer:
        frame["customer_id"] = ""
    return frame.astype({"amount_minor": "int64", "functional_minor": "int64"})


def _split_by_rate(store: Store, request: ExportRequest, journal: Journal) -> list[Journal]:
    """A journal no single rate serves, split by its entries' purchase-date rates, then by
    entry; refused if an entry alone has no rate."""
    entries = _entry_frame(store, request, journal.date, journal.kind, journal.currency)
    rate_sets = entries.groupby("entry_id")["lot_rate"].agg(
        lambda rates: "+".join(sorted({rate for rate in rates if rate})) or "day")
    entries["rate_set"] = entries["entry_id"].map(rate_sets)
    parts: list[Journal] = []
    for rate_set, by_rate in entries.groupby("rate_set", sort=True):
        candidate = _part(journal, f"rate {rate_set}", by_rate, request.functional_currency)
        if candidate.exchange_rate:
            parts.append(candidate)
            continue
        parts += _split_by_entry(journal, by_rate, request.functional_currency)
    return parts


def _split_by_entry(journal: Journal, frame: pd.DataFrame, functional: str) -> list[Journal]:
    """One journal per entry; the entries' lines summed in one pass, not per entry. An
    entry that no one rate serves keeps the rate 0 (none): a target that needs a rate
    refuses it, one that carries each line's functional amount (SAP, CSV) exports it."""
    summed = frame.groupby(["entry_id", "batch_id", "account", "customer_id"], sort=True)[
        ["amount_minor", "functional_minor"]].sum().reset_index()
    summed = summed[summed["amount_minor"].ne(0) | summed["functional_minor"].ne(0)]
    parts = []
    for (entry_id, batch_id), rows in groupby(
            summed.itertuples(index=False), key=lambda row: (row.entry_id, row.batch_id)):
        lines = [ExportLine(row.account, row.customer_id, int(row.amount_minor),
                            int(row.functional_minor)) for row in rows]
        rate = fit_exchange_rate(lines, journal.currency, functional) or Decimal(0)
        parts.append(Journal(f"{journal.key}/entry {entry_id}", journal.date, journal.period,
                             journal.kind, journal.currency, lines, 1, batch_id, rate))
    return parts


def _part(journal: Journal, split: str, frame: pd.DataFrame, functional: str) -> Journal:
    lines = _lines_of(frame)
    rate = fit_exchange_rate(lines, journal.currency, functional)
    return Journal(f"{journal.key}/{split}", journal.date, journal.period, journal.kind,
                   journal.currency, lines, int(frame["entry_id"].nunique()),
                   " ".join(sorted(set(frame["batch_id"]))), rate or Decimal(0))


def build_journals(store: Store, request: ExportRequest, currency_handling: str) -> list[Journal]:
    """The period's journals for a target's currency handling, each with its external id.

    A journal whose lines move only functional amounts (the FX remeasurement) goes out in
    the functional currency; every foreign journal gets the rate that posts its functional
    amounts exactly, split when one rate cannot, whatever the target, so that the journals
    and their ids are the same in every target's file. With "rate" handling a part that
    still has no rate is refused."""
    if request.summary not in ("daily", "monthly"):
        raise ValueError(f"summary {request.summary!r} must be daily or monthly")
    functional = request.functional_currency
    statistics = _journal_statistics(store, request)
    journals: list[Journal] = []
    frame = _journal_frame(store, request)
    for (day, kind, currency), part in frame.groupby(["day", "kind", "currency"], sort=True):
        entries, batches = statistics.get((day, kind, currency), (0, ""))
        lines = _lines_of(part)
        key = f"{day.isoformat() if request.summary == 'daily' else request.period}/{kind}/{currency}"
        journal = Journal(key, day, request.period, kind, currency, lines, entries, batches)
        if currency != functional and all(line.amount_minor == 0 for line in lines):
            journal.currency = functional  # functional amounts alone: a functional journal
            journal.lines = [ExportLine(line.account, line.customer_id, line.functional_minor,
                                        line.functional_minor) for line in lines]
        if journal.currency == functional:
            journals.append(journal)
            continue
        rate = fit_exchange_rate(lines, currency, functional)
        if rate:
            journal.exchange_rate = rate
            journals.append(journal)
        else:
            journals += _split_by_rate(store, request, journal)
    if currency_handling == "rate":
        _refuse_parts_without_rate(journals)
    return _numbered(store, journals, request)


def _refuse_parts_without_rate(journals: list[Journal]) -> None:
    for journal in journals:
        if not journal.exchange_rate:
            entry = journal.key.rsplit("/entry ", 1)[-1]
            raise ExportRefused(
                f"entry {entry} ({journal.currency}) has lines at different rates, so no one "
                "exchange rate posts its functional amounts exactly: export with --functional")


def external_id_prefix(request: ExportRequest) -> str:
    """CB (final) or DR (draft), YYMM, D/M (daily/monthly), T/F (transaction/functional
    currency), C when lines are by customer: a journal keeps its id on every re-export."""
    first = Period(request.period).first_day
    return (("DR" if request.draft else "CB") + first.strftime("%y%m")
            + ("D" if request.summary == "daily" else "M")
            + ("F" if request.in_functional else "T") + ("C" if request.by_customer else ""))


def _numbered(store: Store, journals: list[Journal], request: ExportRequest) -> list[Journal]:
    """Each journal's external id from the ledger's issued ids (`exported_journal_ids`): a
    key keeps the number it was first given in this id namespace (the prefix), and a key
    never exported before gets the next number after the namespace's highest, issued in
    one transaction. Numbering by position instead would shift every later journal's id
    when a journal is added after a reopen, and the ERP would overwrite or post twice."""
    journals.sort(key=lambda journal: (journal.date, journal.key))
    prefix = external_id_prefix(request)
    try:
        with store.transaction() as connection:
            issued = dict(connection.execute(text(
                "SELECT journal_key, number FROM exported_journal_ids WHERE namespace = :prefix"),
                {"prefix": prefix}).all())
            new_keys = [journal.key for journal in journals if journal.key not in issued]
            first_number = max(issued.values(), default=0) + 1
            if first_number + len(new_keys) - 1 > MAX_JOURNALS_PER_EXPORT:
                raise ExportRefused(f"{prefix}: ids hold at most {MAX_JOURNALS_PER_EXPORT} "
                                    f"journals; export {request.period} with --summary monthly")
            fresh = dict(zip(new_keys, range(first_number, first_number + len(new_keys)),
                             strict=True))
            if fresh:
                issued_at = datetime.now(UTC).replace(tzinfo=None)
                connection.execute(text(
                    "INSERT INTO exported_journal_ids (namespace, journal_key, number, issued_at) "
                    "VALUES (:namespace, :journal_key, :number, :issued_at)"),
                    [{"namespace": prefix, "journal_key": key, "number": number,
                      "issued_at": issued_at} for key, number in fresh.items()])
    except IntegrityError:
        raise ExportRefused(f"{prefix}: another export issued ids for {request.period} at the "
                            "same time; run this export again") from None
    numbers = {**issued, **fresh}
    for journal in journals:
        journal.external_id = f"{prefix}-{numbers[journal.key]:06d}"
    return journals


def _account_codes(journals: list[Journal], settings: ExportSettings, target: str) -> dict:
    """Every account's code for the target, exactly as the policy writes it; refused naming
    every account without one, or the policy file, account and rule for a code the ERP
    would not receive as written (see erp_rules.mapping_problems)."""
    codes = settings.account_codes.get(target, {})
    used = {line.account for journal in journals for line in journal.lines}
    missing = sorted(used - set(codes))
    if missing:
        raise ExportRefused(f"{target} export refused: no account code for {', '.join(missing)}; "
                            f"add each under [export.account_codes.{target}] in the policy file")
    used_codes = {account: codes[account] for account in used}
    problems = mapping_problems(target, used_codes)
    if problems:
        raise ExportRefused(f"{target} export refused, nothing written: {settings.source} "
                            f"[export.account_codes.{target}] {'; '.join(problems)}")
    return used_codes


def _header_text(journal: Journal, draft: bool) -> str:
    """The journal's header text: DRAFT first, so no length limit can cut the marker off."""
    return ("DRAFT " if draft else "") + f"CB {journal.kind} {journal.period}"


def _debit(line: ExportLine, currency: str) -> str:
    return format_minor(line.amount_minor, currency) if line.amount_minor > 0 else ""


def _credit(line: ExportLine, currency: str) -> str:
    return format_minor(-line.amount_minor, currency) if line.amount_minor < 0 else ""


def _rate_text(journal: Journal) -> str:
    return format(journal.exchange_rate, "f")


def _rows_netsuite(journals, codes, settings: ExportSettings, request: ExportRequest):
    date_format = DATE_FORMATS[settings.netsuite_date_format]
    for journal in journals:
        posting_period = journal.date.replace(day=1).strftime("%b %Y")
        for line in journal.lines:
            yield [journal.external_id, journal.date.strftime(date_format), posting_period,
                   settings.netsuite_subsidiary, journal.currency, _rate_text(journal),
                   _header_text(journal, request.draft), codes[line.account],
                   _debit(line, journal.currency), _credit(line, journal.currency), journal.kind,
                   line.customer_id, "", "", ""]


def _rows_quickbooks(journals, codes, settings: ExportSettings, request: ExportRequest):
    for journal in journals:
        for line in journal.lines:
            yield [journal.external_id, journal.date.strftime("%m/%d/%Y"), journal.currency,
                   _rate_text(journal), codes[line.account], _header_text(journal, request.draft),
                   _debit(line, journal.currency), _credit(line, journal.currency),
                   line.customer_id, "", ""]


def sap_account(code: str) -> str:
    """SAP's ALPHA conversion: a numeric account right-aligned with leading zeros to 10."""
    return code.zfill(10) if code.isdigit() else code


def _rows_sap(journals, codes, settings: ExportSettings, request: ExportRequest):
    functional = request.functional_currency
    for journal in journals:
        day = journal.date.strftime("%Y%m%d")
        for item, line in enumerate(journal.lines, start=1):
            yield [journal.external_id, settings.sap_company_code, day, day,
                   settings.sap_document_type, _header_text(journal, request.draft),
                   f"{item:010d}", sap_account(codes[line.account]), line.customer_id,
                   journal.currency, format_minor(line.amount_minor, journal.currency),
                   functional, format_minor(line.functional_minor, functional)]


def _rows_xero(journals, codes, settings: ExportSettings, request: ExportRequest):
    date_format = DATE_FORMATS[settings.xero_date_format]
    for journal in journals:
        narration = f"{journal.external_id} {_header_text(journal, request.draft)}"
        for line in journal.lines:
            yield [narration, journal.date.strftime(date_format), journal.kind,
                   codes[line.account], settings.xero_tax_rate,
                   format_minor(line.functional_minor, request.functional_currency),
                   "Customer" if line.customer_id else "", line.customer_id]


CSV_COLUMNS = ["journal_id", "journal_key", "date", "period", "kind", "currency", "account",
               "customer_id", "debit", "credit", "amount", "functional_currency",
               "functional_amount", "draft"]


def _rows_csv(journals, codes, settings: ExportSettings, request: ExportRequest):
    functional = request.functional_currency
    for journal in journals:
        for line in journal.lines:
            yield [journal.external_id, journal.key, journal.date.isoformat(), journal.period,
                   journal.kind, journal.currency, line.account, line.customer_id,
                   _debit(line, journal.currency), _credit(line, journal.currency),
                   format_minor(line.amount_minor, journal.currency), functional,
                   format_minor(line.functional_minor, functional),
                   "yes" if request.draft else "no"]


WRITERS = {"netsuite": _rows_netsuite, "quickbooks": _rows_quickbooks, "sap": _rows_sap,
           "xero": _rows_xero, "csv": _rows_csv}
CURRENCY_HANDLING = {"netsuite": "rate", "quickbooks": "rate", "xero": "functional_only",
                     "sap": "document_and_local", "csv": "both"}


def _xero_files(journals: list[Journal], rows: list[list[str]],
                remedy: str = "export with --summary daily") -> list[list[list[str]]]:
    """Xero: at most 300 lines a file, never splitting a journal."""
    files: list[list[list[str]]] = [[]]
    position = 0
    for journal in journals:
        lines = rows[position:position + len(journal.lines)]
        position += len(journal.lines)
        if len(lines) > XERO_MAX_LINES:
            raise ExportRefused(f"journal {journal.external_id} has {len(lines)} lines; Xero takes "
                                f"at most {XERO_MAX_LINES} a file: {remedy}")
        if len(files[-1]) + len(lines) > XERO_MAX_LINES:
            files.append([])
        files[-1].extend(lines)
    return files


def mapping_path(out: Path) -> Path:
    """The mapping file beside an export: external id <-> journal key, entries, batches."""
    out = Path(out)
    return out.with_name(f"{out.stem}.journals.csv")


def export_period(store: Store, period: Period, target: str, out: Path, settings: ExportSettings,
                  summary: str = "daily", by_customer: bool = False, draft: bool = False,
                  functional_currency: str | None = None, *,
                  ledger_currency: str | None = None) -> list[Path]:
    """Write the period's journals for one target, after its validator passed; returns the
    files written (the mapping file, `mapping_path(out)`, is written beside them).

    functional_currency: export in it (--functional); ledger_currency: the books'
    functional currency (the policy's), for a transaction-currency export."""
    if target not in WRITERS:
        raise ValueError(f"unknown export format {target!r}")
    request = ExportRequest(period, summary, by_customer, draft, functional_currency is not None,
                            functional_currency or ledger_currency or "USD")
    journals = build_journals(store, request, CURRENCY_HANDLING[target])
    if target == "xero":
        _refuse_foreign_for_xero(journals, request.functional_currency)
    codes = (_account_codes(journals, settings, target) if target in ERP_TARGETS
             else {line.account: line.account for journal in journals for line in journal.lines})
    rows = [[neutralise(cell) for cell in row]
            for row in WRITERS[target](journals, codes, settings, request)]
    out = Path(out)
    if target == "xero":
        files = [(out.with_name(f"{out.stem}-{request.functional_currency}-{number}"
                                f"{out.suffix or '.csv'}"), part)
                 for number, part in enumerate(_xero_files(journals, rows, _xero_remedy(request)),
                                               start=1)]
    else:
        files = [(out, rows)]
    header = list(TARGET_RULES[target].columns) if target in TARGET_RULES else CSV_COLUMNS
    if target in TARGET_RULES:
        _validate(target, header, files, journals, settings, request)
    out.parent.mkdir(parents=True, exist_ok=True)
    for path, part in files:
        _write(path, [header, *part])
    # A target that carries each line's functional amount has no journal rate: blank.
    one_rate = CURRENCY_HANDLING[target] == "rate"
    _write(mapping_path(out), [MAPPING_COLUMNS, *(
        [journal.external_id, journal.key, journal.date.isoformat(), journal.kind,
         journal.currency,
         _rate_text(journal) if one_rate or journal.currency == request.functional_currency
         else "", len(journal.lines), journal.entries, journal.batches]
        for journal in journals)])
    return [path for path, _ in files]


def _xero_remedy(request: ExportRequest) -> str:
    if request.by_customer:
        return "export without --by customer"
    return "export with --summary daily" if request.summary == "monthly" else "summarise in fewer lines"


def _refuse_foreign_for_xero(journals: list[Journal], functional: str) -> None:
    foreign = sorted({journal.currency for journal in journals if journal.currency != functional})
    if foreign:
        raise ExportRefused(f"xero export refused: Xero manual journals carry no currency and "
                            f"post in the base currency, and this period has {', '.join(foreign)} "
                            f"journals: export with --functional ({functional})")


def _validate(target: str, header: list[str], files, journals: list[Journal],
              settings: ExportSettings, request: ExportRequest) -> None:
    expected = {(journal.external_id if target != "xero" else
                 f"{journal.external_id} {_header_text(journal, request.draft)}", number):
                line.functional_minor
                for journal in journals for number, line in enumerate(journal.lines, start=1)}
    date_format = {"netsuite": settings.netsuite_date_format,
                   "xero": settings.xero_date_format}.get(target)
    problems = validate_rows(target, [[dict(zip(header, row, strict=True)) for row in part]
                                      for _, part in files], request.functional_currency,
                             expected, DATE_FORMATS[date_format] if date_format else None)
    refuse_if_broken(target, problems)


def _write(path: Path, rows) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        for row in rows:
            writer.writerow(row)


def trace_journal(store: Store, external_id: str, mapping_file: Path) -> dict:
    """An exported journal found by its external id: its row of the mapping file written
    beside the export, and the ledger entries it summarises (with their batches)."""
    try:
        with Path(mapping_file).open(newline="", encoding="utf-8") as handle:
            rows = [row for row in csv.DictReader(handle) if row["external_id"] == external_id]
    except OSError as error:
        raise ValueError(f"mapping file {mapping_file} cannot be read: {error.strerror}") from None
    if not rows:
        raise ValueError(f"{mapping_file} has no journal {external_id!r}")
    [journal] = rows
    period = f"20{external_id[2:4]}-{external_id[4:6]}"
    daily, in_functional = external_id[6] == "D", external_id[7] == "F"
    day, kind, currency, *split = journal["journal_key"].split("/", 3)
    conditions, parameters = ["e.period = :period", "e.kind = :kind"], {"period": period,
                                                                        "kind": kind}
    if daily:
        conditions.append("e.business_date = :day")
        parameters["day"] = day
    if not in_functional:
        conditions.append("l.currency = :currency")
        parameters["currency"] = currency
    entries = store.read_frame(f"""
        SELECT e.entry_id, e.batch_id, COALESCE(lots.rate_to_functional, '') AS lot_rate
        FROM journal_entries e JOIN journal_lines l ON l.entry_id = e.entry_id
        LEFT JOIN lots ON lots.purchase_id = l.purchase_id
        WHERE {" AND ".join(conditions)}
    """, **parameters)
    if split and split[0].startswith("entry "):
        entries = entries[entries["entry_id"] == split[0].removeprefix("entry ")]
    elif split and split[0].startswith("rate "):
        rate_sets = entries.groupby("entry_id")["lot_rate"].agg(
            lambda rates: "+".join(sorted({rate for rate in rates if rate})) or "day")
        entries = entries[entries["entry_id"].map(rate_sets) == split[0].removeprefix("rate ")]
    listed = entries.drop_duplicates("entry_id").sort_values("entry_id")
    return {**journal, "period": period,
            "ledger_entries": [{"entry_id": entry_id, "batch_id": batch_id} for entry_id, batch_id
                               in zip(listed["entry_id"], listed["batch_id"], strict=True)]}
