"""Manual journals written as beancount transactions, read into the rows a CSV journal file
gives (intake/manual_journals.py), so both are checked alike (rules/manual_journals.py).

Read with beancount's own parser (`beancount.parser.parser`), not by hand; only parsed,
not loaded: the loader would want `open` directives for every account, fill in missing
amounts and forgive small imbalances, and every amount here must be written and exact.

A transaction is one journal, each posting one line (numbered by its line in the file):
  - the date is the journal's date, the narration each line's memo (a posting's `memo`
    metadata replaces it);
  - metadata `ref` on the transaction names the journal (required), `reverse_on` (a date)
    makes it an accrual;
  - `customer_id` and `purchase_id` on a posting, or on the transaction for all its
    postings (a posting's own value wins);
  - a posting's units are the amount, positive a debit, negative a credit; a posting with
    no amount, a cost or a price is refused.
`open`, `close` and `commodity` directives are passed over; any other directive, an
`include` or a syntax error is refused, each one line naming the file and line.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from beancount.core import data
from beancount.core.number import MISSING
from beancount.parser import parser

from intake.manual_journals import (
    JOURNAL_ROW_NUMBER,
    ROW_NUMBER,
    ManualJournalFile,
    ManualJournalFileError,
    SourceNaming,
    read_journal_text,
    read_manual_journal_file,
)

BEANCOUNT_SUFFIXES = (".beancount", ".bean")
# The metadata keys read; others are the preparer's own and are left alone.
REF_KEY, REVERSE_ON_KEY, CUSTOMER_KEY, PURCHASE_KEY, MEMO_KEY = (
    "ref", "reverse_on", "customer_id", "purchase_id", "memo")
BEANCOUNT_NAMING = SourceNaming("line", {
    "journal_ref": f"metadata {REF_KEY}", "reverse_on": f"metadata {REVERSE_ON_KEY}",
    "customer_id": f"metadata {CUSTOMER_KEY}", "purchase_id": f"metadata {PURCHASE_KEY}",
    "memo": "narration", "debit": "amount", "credit": "amount", "date": "date",
    "account": "account", "currency": "currency"})
_PASSED_OVER = (data.Open, data.Close, data.Commodity)


def read_journal_file(path: Path) -> ManualJournalFile:
    """A manual journal file of either kind: beancount by its suffix, else CSV."""
    if path.suffix.lower() in BEANCOUNT_SUFFIXES:
        return read_beancount_journal_file(path)
    return read_manual_journal_file(path)


def read_beancount_journal_file(path: Path) -> ManualJournalFile:
    """The file's postings as rows of text, every column present, or every problem."""
    text, sha256 = read_journal_text(path)
    entries, errors, options = parser.parse_string(text, report_filename=path.name)
    name = path.name
    problems = [f"{name} line {error.source['lineno']}: {error.message.strip()}"
                for error in errors]
    if options.get("include"):
        problems.append(f"{name}: include is not followed; put the transactions in this file")
    records: list[dict] = []
    for entry in entries:
        if isinstance(entry, data.Transaction):
            records += _posting_rows(entry, name, problems)
        elif not isinstance(entry, _PASSED_OVER):
            problems.append(f"{name} line {entry.meta['lineno']}: a "
                            f"{type(entry).__name__.lower()} directive is not a journal; the "
                            "file holds transactions (open, close and commodity are passed over)")
    if problems:
        raise ManualJournalFileError(problems[0] if len(problems) == 1 else (
            f"{len(problems)} problems, nothing was imported; the first: {problems[0]}"),
            tuple(problems))
    if not records:
        raise ManualJournalFileError(f"{name}: has no transactions")
    return ManualJournalFile(path, sha256, pd.DataFrame(records), BEANCOUNT_NAMING)


def _posting_rows(transaction: data.Transaction, name: str, problems: list[str]) -> list[dict]:
    """One row per posting, as a CSV file would give it; problems added for the others."""
    line = transaction.meta["lineno"]
    ref = _text(transaction.meta.get(REF_KEY))
    if not ref:
        problems.append(f"{name} line {line}, metadata {REF_KEY}: a transaction names its "
                        f'journal: add {REF_KEY}: "MJ-1" under it')
    rows = []
    for posting in transaction.postings:
        posting_line = posting.meta["lineno"]
        units = posting.units
        if units is MISSING or units is None or units.number is MISSING or units.number is None:
            problems.append(f"{name} line {posting_line}, amount: is missing; write every "
                            "posting's amount (nothing is filled in)")
            continue
        if posting.cost is not None or posting.price is not None:
            problems.append(f"{name} line {posting_line}, amount: a cost or price is not taken; "
                            "a line is one amount in one currency")
            continue
        number = units.number
        meta = posting.meta
        rows.append({
            ROW_NUMBER: posting_line, JOURNAL_ROW_NUMBER: line, "journal_ref": ref,
            "date": transaction.date.isoformat(), "account": posting.account,
            "currency": units.currency,
            "debit": format(number, "f") if number >= 0 else "",
            "credit": format(-number, "f") if number < 0 else "",
            "memo": _text(meta.get(MEMO_KEY, transaction.narration)),
            "customer_id": _text(meta.get(CUSTOMER_KEY, transaction.meta.get(CUSTOMER_KEY))),
            "purchase_id": _text(meta.get(PURCHASE_KEY, transaction.meta.get(PURCHASE_KEY))),
            "reverse_on": _text(transaction.meta.get(REVERSE_ON_KEY))})
    return rows


def _text(value) -> str:
    """A metadata value as the text a CSV cell would hold (a date as YYYY-MM-DD)."""
    return "" if value is None else str(value).strip()
