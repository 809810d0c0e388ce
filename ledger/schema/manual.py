"""Manual journals: entries people prepare (a correction, an accrual, a reclass), kept as
drafts until a second person approves them; then they post into the journal as entries of
kind `manual` and are sealed like every other entry.

`manual_journals` records who prepared, approved, rejected or reversed each one and when,
and the file it came from; `manual_journal_lines` its lines as imported. A line on deferred
revenue names its lot, and `deferred_change_minor` is what it does to that lot's remaining
deferred value (the credit subledger reads it once the journal has posted).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import ClassVar

from sqlalchemy import CheckConstraint, Column, Integer, Text
from sqlmodel import Field, SQLModel

from ledger.domain import ManualJournalStatus, sql_values
from ledger.schema.columns import (
    Retention,
    bigint,
    currency_check,
    identifier,
    tables_of,
    utc_instant,
)


class ManualJournal(SQLModel, table=True):
    """One manual journal (the rows of a file sharing a `journal_ref`), and its life."""

    __tablename__ = "manual_journals"
    retention: ClassVar[Retention] = Retention.MUTABLE
    __table_args__ = (
        CheckConstraint(f"status IN {sql_values(ManualJournalStatus)}",
                        name="ck_manual_journals_status"),
        CheckConstraint("approved_by IS NULL OR approved_by <> prepared_by "
                        "OR reverses_ref IS NOT NULL", name="ck_manual_journals_maker_checker"),
    )
    ref: str = Field(primary_key=True, sa_type=identifier(200))
    business_date: date = Field(index=True)
    period: str = Field(index=True, sa_type=identifier(7))
    status: str = Field(max_length=16)
    prepared_by: str = Field(max_length=200)
    prepared_at: datetime = Field(sa_column=utc_instant())
    approved_by: str | None = Field(default=None, max_length=200)
    approved_at: datetime | None = Field(default=None, sa_column=utc_instant(nullable=True))
    rejected_by: str | None = Field(default=None, max_length=200)
    rejected_at: datetime | None = Field(default=None, sa_column=utc_instant(nullable=True))
    reason: str = Field(default="", sa_column=Column(Text, nullable=False))
    reversed_by: str | None = Field(default=None, max_length=200)
    reversed_at: datetime | None = Field(default=None, sa_column=utc_instant(nullable=True))
    # An accrual that reverses itself on this date (its reversal is `reversal_ref`).
    reverse_on: date | None = Field(default=None)
    reversal_ref: str | None = Field(default=None, max_length=200)
    # On a reversal: the journal it undoes.
    reverses_ref: str | None = Field(default=None, max_length=200)
    # The journal entry it posted, once approved.
    entry_id: str | None = Field(default=None, max_length=255)
    source_file: str = Field(sa_column=Column(Text, nullable=False))
    source_sha256: str = Field(max_length=64)
    content_hash: str = Field(max_length=64)


class ManualJournalLine(SQLModel, table=True):
    """A line of a manual journal as imported: signed minor units, debit positive."""

    __tablename__ = "manual_journal_lines"
    retention: ClassVar[Retention] = Retention.MUTABLE
    __table_args__ = (
        currency_check(),
        CheckConstraint("amount_minor <> 0", name="ck_manual_journal_lines_non_zero"),
    )
    ref: str = Field(primary_key=True, foreign_key="manual_journals.ref",
                     sa_type=identifier(200))
    line_number: int = Field(sa_column=Column(Integer, primary_key=True))
    source_row: int = Field(sa_column=Column(Integer, nullable=False))
    account: str = Field(max_length=255)
    currency: str = Field(max_length=3)
    amount_minor: int = Field(sa_column=bigint())
    # What the line does to its lot's remaining deferred value (a credit adds to it).
    deferred_change_minor: int = Field(sa_column=bigint())
    # On a line that changes its lot, set when the journal posts: the credits the lot had
    # given (used or refunded) and their value then. Its later burns, refunds and expiry
    # value the lot from there (rules/lot_state.py, `consumed_value_minor`).
    lot_consumed_micro: int | None = Field(default=None, sa_column=bigint(nullable=True))
    lot_consumed_value_minor: int | None = Field(default=None,
                                                 sa_column=bigint(nullable=True))
    customer_id: str = Field(default="", max_length=200)
    purchase_id: str | None = Field(default=None, max_length=200)
    memo: str = Field(default="", sa_column=Column(Text, nullable=False))


TABLES = tables_of(globals())
