"""The journal: posted entries and their lines, and the two hash chains that seal them (the
journal chain over entries, the record chain over batches and period events)."""

from __future__ import annotations

from datetime import date, datetime
from typing import ClassVar

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Index,
    Integer,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel

from ledger.domain import (
    EntryKind,
    RecordKind,
    sql_values,
)
from ledger.schema.columns import (
    Retention,
    bigint,
    currency_check,
    identifier,
    tables_of,
    utc_instant,
)


class JournalEntryRecord(SQLModel, table=True):
    """A posted entry. `business_date` is when it happened, `recorded_at` when we wrote it."""

    __tablename__ = "journal_entries"
    retention: ClassVar[Retention] = Retention.APPEND_ONLY
    __table_args__ = (
        CheckConstraint(f"kind IN {sql_values(EntryKind)}", name="ck_entries_kind"),
        Index("ix_journal_entries_period_kind", "period", "kind"),
    )
    entry_id: str = Field(primary_key=True, sa_type=identifier(255))
    kind: str = Field(sa_type=identifier(16))
    business_date: date = Field(index=True)
    period: str = Field(sa_type=identifier(7))
    customer_id: str = Field(index=True, sa_type=identifier(200))
    source_ref: str = Field(sa_type=identifier(255))
    batch_id: str = Field(foreign_key="batches.batch_id", index=True, sa_type=identifier(64))
    policy_version: str = Field(sa_type=identifier(64))
    recorded_at: datetime = Field(sa_column=utc_instant())


class JournalLineRecord(SQLModel, table=True):
    """One posting: signed minor units, debit positive and credit negative, in its
    transaction currency and in the functional currency. A period-end remeasurement line
    moves only the functional amount (its transaction amount is zero)."""

    __tablename__ = "journal_lines"
    retention: ClassVar[Retention] = Retention.APPEND_ONLY
    __table_args__ = (
        currency_check(),
        CheckConstraint("amount_minor <> 0 OR functional_minor <> 0",
                        name="ck_journal_lines_non_zero"),
        Index("ix_journal_lines_account_currency", "account", "currency"),
    )
    entry_id: str = Field(
        primary_key=True, foreign_key="journal_entries.entry_id", sa_type=identifier(255)
    )
    line_number: int = Field(sa_column=Column(Integer, primary_key=True))
    account: str = Field(sa_type=identifier(255))
    currency: str = Field(sa_type=identifier(3))
    amount_minor: int = Field(sa_column=bigint())
    functional_minor: int = Field(sa_column=bigint())
    meter: str | None = Field(default=None, sa_column=Column(identifier(200), nullable=True))
    purchase_id: str | None = Field(default=None,
                                    sa_column=Column(identifier(200), nullable=True))


class JournalSeal(SQLModel, table=True):
    """The hash chain over the journal: each entry's content hash, chained to the one before.

    Entries are sealed when their batch publishes, in entry id order, so the chain's order
    does not depend on how many shards posted the night.
    """

    __tablename__ = "journal_seals"
    retention: ClassVar[Retention] = Retention.APPEND_ONLY
    sequence: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    entry_id: str = Field(unique=True, foreign_key="journal_entries.entry_id", max_length=255)
    batch_id: str = Field(foreign_key="batches.batch_id", index=True, max_length=64)
    content_hash: str = Field(max_length=64)
    chain_hash: str = Field(max_length=64)


class RecordSeal(SQLModel, table=True):
    """The record chain: batches (with their files' checksums and counts and their
    quarantine rows), the archive partitions they wrote, period events and kept policy
    versions, each sealed when it is written, chained to the
    seal before it and anchored to the journal chain's head at that moment
    (`ledger/record_chain.py`)."""

    __tablename__ = "record_seals"
    retention: ClassVar[Retention] = Retention.APPEND_ONLY
    __table_args__ = (
        CheckConstraint(f"record_kind IN {sql_values(RecordKind)}", name="ck_record_seals_kind"),
        UniqueConstraint("record_kind", "record_key", name="uq_record_seals_record"),
    )
    sequence: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    record_kind: str = Field(max_length=16)
    record_key: str = Field(max_length=64)
    entry_sequence: int = Field(sa_column=bigint())
    entry_chain_hash: str = Field(max_length=64)
    content_hash: str = Field(max_length=64)
    chain_hash: str = Field(max_length=64)


TABLES = tables_of(globals())
