"""Journal entries as batches of immutable rows, and the check that they balance.

A night posts hundreds of thousands of entries, so the journal is handled as two
frames rather than one object per entry: `entries` (one row per entry) and `lines`
(one row per posting). Each line carries its transaction currency amount and its
functional currency amount; an entry balances in both. `JournalBatch` is the immutable pair; `journal_errors`
returns every reason the batch may not be written (empty means it may). Amounts
are signed integer minor units, debit positive and credit negative, as in beancount,
so an entry balances when its lines sum to zero in each currency.

Entry ids are idempotency keys derived from the source document
("purchase/P-1", "usage/C-7/2026-01-05", "breakage/P-1"), so the same source can
never be posted twice and parallel writers produce the same ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import pandas as pd

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


class EntryKind(StrEnum):
    PURCHASE = "purchase"
    USAGE = "usage"
    BREAKAGE = "breakage"
    COST = "cost"
    REFUND = "refund"
    ESCHEAT = "escheat"
    OVERAGE = "overage"
    FX = "fx"


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


def journal_errors(batch: JournalBatch) -> list[str]:
    """Every reason this batch may not be written; an empty list means it may."""
    entries, lines = batch.entries, batch.lines
    errors: list[str] = []
    duplicated = entries["entry_id"][entries["entry_id"].duplicated()]
    if len(duplicated):
        errors.append(f"entry ids repeated within the batch: {sorted(set(duplicated))[:5]}")
    orphan_ids = lines.loc[~lines["entry_id"].isin(entries["entry_id"]), "entry_id"].unique()
    if len(orphan_ids):
        errors.append(f"lines refer to entries not in the batch: {sorted(orphan_ids)[:5]}")
    zero_lines = lines[(lines["amount_minor"] == 0) & (lines["functional_minor"] == 0)]
    if len(zero_lines):
        errors.append(f"zero-amount lines in entries: {sorted(set(zero_lines['entry_id']))[:5]}")
    line_counts = lines["entry_id"].value_counts()
    too_few = entries.loc[~entries["entry_id"].isin(line_counts.index[line_counts >= 2]),
                          "entry_id"]
    if len(too_few):
        errors.append(f"entries with fewer than two lines: {sorted(set(too_few))[:5]}")
    sums = lines.groupby(["entry_id", "currency"])["amount_minor"].sum()
    unbalanced = sums[sums != 0]
    for (entry_id, currency), difference in unbalanced.head(5).items():
        errors.append(f"entry {entry_id} does not balance in {currency}: off by {difference} minor")
    if len(unbalanced) > 5:
        errors.append(f"... and {len(unbalanced) - 5} more unbalanced entry-currency pairs")
    functional = lines.groupby("entry_id")["functional_minor"].sum()
    for entry_id, difference in functional[functional != 0].head(5).items():
        errors.append(f"entry {entry_id} does not balance in the functional currency: off by "
                      f"{difference} minor")
    return errors


class UnbalancedJournalError(ValueError):
    """A batch failed its pre-write check; nothing of it was written."""


def require_valid(batch: JournalBatch) -> None:
    errors = journal_errors(batch)
    if errors:
        raise UnbalancedJournalError("; ".join(errors))
