"""Journal entries as batches of immutable rows, and the check that they balance.

A night posts hundreds of thousands of entries, so the journal is handled as two
frames rather than one object per entry: `entries` (one row per entry) and `lines`
(one row per posting). Each line carries its transaction currency amount and its
functional currency amount; an entry balances in both. `JournalBatch` is the immutable pair; `journal_errors`
returns every reason the batch may not be written, as `BooksError` values naming the entry
(empty means it may). Amounts are signed integer minor units, debit positive and credit
negative, as in beancount, so an entry balances when its lines sum to zero in each currency.

Entry ids are idempotency keys derived from the source document
("purchase/P-1", "usage/C-7/2026-01-05", "breakage/P-1"), so the same source can
never be posted twice and parallel writers produce the same ids.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ledger.domain import EntryKind as EntryKind  # defined once in domain; re-exported here
from ledger.errors import BooksError

ENTRY_COLUMNS = ("entry_id", "kind", "business_date", "period", "customer_id", "source_ref")
LINE_COLUMNS = (
    "entry_id",
    "line_number",
    "account",
    "currency",
    "amount_minor",
    "functional_minor",
    "meter",
    "purchase_id",
)


def empty_entries() -> pd.DataFrame:
    return pd.DataFrame({column: pd.Series(dtype=object) for column in ENTRY_COLUMNS})


def empty_lines() -> pd.DataFrame:
    frame = pd.DataFrame({column: pd.Series(dtype=object) for column in LINE_COLUMNS})
    return frame.astype({"line_number": "int64", "amount_minor": "int64",
                         "functional_minor": "int64"})


@dataclass(frozen=True)
class JournalBatch:
    """Entries and their lines, as posted together by one batch."""

    entries: pd.DataFrame
    lines: pd.DataFrame

    @staticmethod
    def empty() -> JournalBatch:
        return JournalBatch(empty_entries(), empty_lines())

    @staticmethod
    def concat(batches: list[JournalBatch]) -> JournalBatch:
        parts = [batch for batch in batches if len(batch.entries)]
        if not parts:
            return JournalBatch.empty()
        entries = pd.concat([batch.entries for batch in parts], ignore_index=True)
        lines = pd.concat([batch.lines for batch in parts], ignore_index=True)
        return JournalBatch(entries, lines)

    def __len__(self) -> int:
        return len(self.entries)


def number_lines(lines: pd.DataFrame) -> pd.DataFrame:
    """Give each entry's lines the numbers 1..n in their current order."""
    numbered = lines.copy()
    numbered["line_number"] = numbered.groupby("entry_id", sort=False).cumcount() + 1
    return numbered


def journal_errors(batch: JournalBatch, source: str = "journal batch") -> list[BooksError]:
    """Every reason this batch may not be written; an empty list means it may.

    Each error's `source` is the batch (as the caller names it) and its `entry` the first
    entry id it concerns. Entry ids are numbered once (shared by entries and lines), so
    every check below counts and sums integers; a night checks hundreds of thousands of
    entries.
    """
    entries, lines = batch.entries, batch.lines
    errors: list[BooksError] = []

    def error(message: str, entry_id: object) -> None:
        errors.append(BooksError(source, message, None if entry_id is None else str(entry_id)))

    def listed(reason: str, ids) -> None:
        first_five = _first_five(ids)
        error(f"{reason}: {first_five}", first_five[0])

    codes, entry_ids = pd.factorize(pd.concat([entries["entry_id"], lines["entry_id"]],
                                              ignore_index=True), use_na_sentinel=False)
    entry_codes, line_codes = codes[:len(entries)], codes[len(entries):]
    entries_per_id = np.bincount(entry_codes, minlength=len(entry_ids))
    lines_per_id = np.bincount(line_codes, minlength=len(entry_ids))
    repeated = entry_ids[entries_per_id > 1]
    if len(repeated):
        listed("entry ids repeated within the batch", repeated)
    orphans = entry_ids[(entries_per_id == 0) & (lines_per_id > 0)]
    if len(orphans):
        listed("lines refer to entries not in the batch", orphans)
    zero = ((lines["amount_minor"] == 0) & (lines["functional_minor"] == 0)).to_numpy()
    if zero.any():
        listed("zero-amount lines in entries", entry_ids[line_codes[zero]])
    too_few = entry_ids[(entries_per_id > 0) & (lines_per_id < 2)]
    if len(too_few):
        listed("entries with fewer than two lines", too_few)
    currency_codes, currencies = pd.factorize(lines["currency"], use_na_sentinel=False)
    by_currency = _sums(lines["amount_minor"], line_codes * len(currencies) + currency_codes)
    unbalanced = sorted((entry_ids[key // len(currencies)], currencies[key % len(currencies)],
                         total) for key, total in by_currency[by_currency != 0].items())
    for entry_id, currency, difference in unbalanced[:5]:
        error(f"entry {entry_id} does not balance in {currency}: off by {difference} minor",
              entry_id)
    if len(unbalanced) > 5:
        error(f"... and {len(unbalanced) - 5} more unbalanced entry-currency pairs", None)
    functional = _sums(lines["functional_minor"], line_codes)
    functional_unbalanced = sorted((entry_ids[code], total)
                                   for code, total in functional[functional != 0].items())
    for entry_id, difference in functional_unbalanced[:5]:
        error(f"entry {entry_id} does not balance in the functional currency: off by "
              f"{difference} minor", entry_id)
    return errors


def _first_five(entry_ids) -> list[str]:
    return sorted(set(entry_ids))[:5]


def _sums(amounts: pd.Series, keys: np.ndarray) -> pd.Series:
    """Integer sums of `amounts` by integer key (exact: never through floats)."""
    return pd.Series(amounts.to_numpy(dtype=np.int64)).groupby(keys, sort=False).sum()


class UnbalancedJournalError(ValueError):
    """A batch failed its pre-write check; nothing of it was written.

    `errors` holds every reason as data; the message names the batch once, then each."""

    def __init__(self, errors: list[BooksError]):
        self.errors = tuple(errors)
        super().__init__(f"{errors[0].source}: " + "; ".join(error.message for error in errors))


def require_valid(batch: JournalBatch, source: str = "journal batch") -> None:
    """Refuse, naming the batch once and every reason, a batch that may not be written."""
    errors = journal_errors(batch, source)
    if errors:
        raise UnbalancedJournalError(errors)
