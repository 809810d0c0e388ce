"""A manual journal file as it comes in: its columns checked, its rows numbered, its bytes
hashed. What the rows say is checked by rules/manual_journals.py.

CSV with a header row: `journal_ref, date, account, currency, debit, credit, memo`, and
optionally `customer_id, purchase_id, reverse_on`. Data rows are numbered from 1, as the
nightly files' rows are. Every cell is text; nothing is parsed here.

A beancount file (`.beancount`, `.bean`; intake/beancount_journals.py) gives the same rows,
one per posting, numbered by their line in the file; `SourceNaming` says how a problem
names its place in either kind of file.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

REQUIRED_COLUMNS = ("journal_ref", "date", "account", "currency", "debit", "credit", "memo")
OPTIONAL_COLUMNS = ("customer_id", "purchase_id", "reverse_on")
ROW_NUMBER = "source_row"
# Where the journal a row belongs to starts (a beancount transaction's line); absent in a
# CSV file, whose journal problems name their first row.
JOURNAL_ROW_NUMBER = "journal_source_row"
# What a row says of its whole journal: its problems name the journal's own row.
JOURNAL_LEVEL_COLUMNS = ("journal_ref", "date", "reverse_on")


@dataclass(frozen=True)
class SourceNaming:
    """How a problem names its place in a file: `journals.csv row 3, column debit`, or
    `journals.beancount line 12, amount`."""

    row_word: str = "row"
    column_words: Mapping[str, str] = field(default_factory=dict)

    def where(self, file_name: str, row_number: int, column: str) -> str:
        return (f"{file_name} {self.row_word} {row_number}, "
                f"{self.column_words.get(column, f'column {column}')}")


CSV_NAMING = SourceNaming()


class ManualJournalFileError(ValueError):
    """The file cannot be read as a manual journal file; nothing of it is imported.
    `problems`: each one line (a beancount file may have several)."""

    def __init__(self, message: str, problems: tuple[str, ...] = ()):
        super().__init__(message)
        self.problems = problems or (message,)


@dataclass(frozen=True)
class ManualJournalFile:
    path: Path
    sha256: str
    rows: pd.DataFrame  # ROW_NUMBER, then every required and optional column, as text
    naming: SourceNaming = CSV_NAMING

    @property
    def file_name(self) -> str:
        return self.path.name


def read_journal_text(path: Path) -> tuple[str, str]:
    """A manual journal file's text (UTF-8, a byte order mark dropped) and its bytes' SHA-256;
    a file that cannot be read or is not UTF-8 is refused in one line naming it."""
    try:
        content = path.read_bytes()
    except OSError as error:
        raise ManualJournalFileError(f"{path}: cannot be read ({error.strerror})") from None
    try:
        return content.decode("utf-8-sig"), hashlib.sha256(content).hexdigest()
    except UnicodeDecodeError:
        raise ManualJournalFileError(f"{path.name}: is not UTF-8 text") from None


def read_manual_journal_file(path: Path) -> ManualJournalFile:
    """The file's rows as text, every column present (optional ones blank when absent)."""
    text, sha256 = read_journal_text(path)
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [name.strip() for name in next(reader, [])]
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if missing:
        raise ManualJournalFileError(f"{path.name}: column {', '.join(missing)} is missing "
                                     f"(needs {', '.join(REQUIRED_COLUMNS)})")
    unknown = [name for name in header if name not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    if unknown or len(set(header)) != len(header):
        raise ManualJournalFileError(f"{path.name}: column {', '.join(unknown) or 'names'} "
                                     "unknown or repeated in the header")
    records = []
    for number, values in enumerate(reader, start=1):
        if not any(value.strip() for value in values):
            continue
        if len(values) != len(header):
            raise ManualJournalFileError(f"{path.name} row {number}: has {len(values)} cells, "
                                         f"the header {len(header)}")
        record = dict(zip(header, (value.strip() for value in values), strict=True))
        records.append({ROW_NUMBER: number, **{name: record.get(name, "")
                                               for name in REQUIRED_COLUMNS + OPTIONAL_COLUMNS}})
    if not records:
        raise ManualJournalFileError(f"{path.name}: has no rows")
    return ManualJournalFile(path, sha256, pd.DataFrame(records))
