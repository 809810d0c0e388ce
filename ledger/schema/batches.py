"""The batches family: a night's batch, its stages and files, what intake quarantined, the
archive partitions it wrote, the usage ids it accepted, and the ledger's own identity."""

from __future__ import annotations

from datetime import date, datetime
from typing import ClassVar

from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    Integer,
    LargeBinary,
    Text,
)
from sqlmodel import Field, SQLModel

from ledger.domain import (
    BatchStatus,
    QuarantineKind,
    Stage,
    sql_values,
)
from ledger.schema.columns import (
    Retention,
    bigint,
    tables_of,
    utc_instant,
)


class Batch(SQLModel, table=True):
    """One business day's nightly batch.

    `open` from ingestion until every stage has run and the day's controls pass; then
    `posted` (or `empty` when the day had no files). Statements count published batches
    only, so a night that is half way through its stages is never visible in them.
    """

    __tablename__ = "batches"
    retention: ClassVar[Retention] = Retention.MUTABLE
    __table_args__ = (
        CheckConstraint(f"status IN {sql_values(BatchStatus)}", name="ck_batches_status"),
    )
    batch_id: str = Field(primary_key=True, max_length=64)
    business_date: date = Field(unique=True, index=True)
    # The period its entries post into: the business date's own, or the first open one
    # after it when that period was already locked (a late night).
    posting_period: str = Field(index=True, max_length=7)
    status: str = Field(max_length=16)
    policy_version: str = Field(max_length=64)
    input_fingerprint: str = Field(max_length=64)
    started_at: datetime = Field(sa_column=utc_instant())
    recorded_at: datetime = Field(sa_column=utc_instant())
    entry_count: int = Field(sa_column=Column(Integer, nullable=False))
    # Who ran the night (--actor, $CREDITBOOKS_ACTOR, the Airflow run's user or its DAG's
    # owner, or `os:NAME`); empty on batches of ledgers from before it was recorded.
    actor: str | None = Field(default=None, max_length=200, nullable=True)


class BatchStage(SQLModel, table=True):
    """A completed stage of a batch, written in the same transaction as the stage's rows.

    Re-running a stage that has a row here does nothing; that is what makes each
    Airflow task idempotent. The burn stage has one row per customer shard.
    """

    __tablename__ = "batch_stages"
    retention: ClassVar[Retention] = Retention.MUTABLE
    __table_args__ = (
        CheckConstraint(
            f"stage IN {sql_values(Stage)}",
            name="ck_batch_stages_stage",
        ),
        CheckConstraint("shard >= 0 AND shard < shard_count", name="ck_batch_stages_shard"),
    )
    batch_id: str = Field(primary_key=True, foreign_key="batches.batch_id", max_length=64)
    stage: str = Field(primary_key=True, max_length=16)
    shard: int = Field(sa_column=Column(Integer, primary_key=True))
    shard_count: int = Field(sa_column=Column(Integer, nullable=False))
    recorded_at: datetime = Field(sa_column=utc_instant())


class BatchFile(SQLModel, table=True):
    """Control totals for one input document of a batch."""

    __tablename__ = "batch_files"
    retention: ClassVar[Retention] = Retention.MUTABLE
    __table_args__ = (
        CheckConstraint(
            "rows_read = rows_accepted + rows_duplicate + rows_rejected",
            name="ck_batch_files_rows_accounted",
        ),
        CheckConstraint(
            "rows_accepted >= 0 AND rows_duplicate >= 0 AND rows_rejected >= 0",
            name="ck_batch_files_rows_non_negative",
        ),
    )
    batch_id: str = Field(primary_key=True, foreign_key="batches.batch_id", max_length=64)
    document: str = Field(primary_key=True, max_length=32)
    file_name: str = Field(max_length=255)
    sha256: str = Field(max_length=64)
    rows_read: int = Field(sa_column=bigint())
    rows_accepted: int = Field(sa_column=bigint())
    rows_duplicate: int = Field(sa_column=bigint())
    rows_rejected: int = Field(sa_column=bigint())
    credits_accepted_micro: int = Field(sa_column=bigint())
    amounts_accepted_json: str = Field(sa_column=Column(Text, nullable=False))


class LedgerIdentity(SQLModel, table=True):
    """The ledger's own name, made once: what it writes outside the database carries it.

    Archive partitions are named with it, so a ledger never mistakes another ledger's file
    in a shared archive for a leftover of its own, nor removes one.
    """

    __tablename__ = "ledger_identity"
    retention: ClassVar[Retention] = Retention.MUTABLE
    ledger_id: str = Field(primary_key=True, max_length=32)
    created_at: datetime = Field(sa_column=utc_instant())


class ArchivedPartition(SQLModel, table=True):
    """An archive partition a batch wrote: where it is and the SHA-256 of its bytes.

    The archive is evidence the ledger points to, never state it trusts: a reader takes a
    partition only through its row here and refuses one whose bytes differ (altered, or
    written by another ledger) or that is missing. A file in the archive that no row here
    names was left by a run that did not commit, and is ignored.
    """

    __tablename__ = "archive_partitions"
    retention: ClassVar[Retention] = Retention.MUTABLE
    batch_id: str = Field(primary_key=True, foreign_key="batches.batch_id", max_length=64)
    document: str = Field(primary_key=True, max_length=32)
    business_date: date = Field(index=True)
    relative_path: str = Field(max_length=255)
    sha256: str = Field(max_length=64)
    row_count: int = Field(sa_column=bigint())


class SeenUsageIds(SQLModel, table=True):
    """The usage event ids a batch accepted, kept for the late window's duplicate look-back.

    Written in the transaction of the batch that accepted them, so what the ledger has seen
    is decided from the ledger alone. Each row holds up to a million ids as Parquet bytes
    (event_id, payload_hash, occurred_at): a night's ids cost a few blob writes, not a
    B-tree insert each. Parts older than any late window still open are removed by later
    nights (`ledger/seen_ids.py`).
    """

    __tablename__ = "seen_usage_ids"
    retention: ClassVar[Retention] = Retention.WINDOW
    batch_id: str = Field(primary_key=True, max_length=64)
    part: int = Field(sa_column=Column(Integer, primary_key=True))
    business_date: date = Field(index=True)
    # The latest `occurred_at` in the part: a look-back reads, and a night forgets, whole
    # parts by this instant, whatever the reporting timezone was when they were written.
    latest_occurred_at: datetime = Field(sa_column=Column(DateTime(timezone=False),
                                                          nullable=False, index=True))
    id_count: int = Field(sa_column=bigint())
    ids_parquet: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class UsageIdMemory(SQLModel, table=True):
    """Since when the ledger holds every usage id it accepted (one row, once it forgot any).

    A night forgets the parts older than its own late window; if a later night's window
    reaches further back (the policy's window grew, or its timezone moved), events older
    than this instant are refused: the ledger cannot tell them from re-sent ones.
    """

    __tablename__ = "usage_id_memory"
    retention: ClassVar[Retention] = Retention.MUTABLE
    memory_id: int = Field(sa_column=Column(Integer, primary_key=True))
    remembered_from: datetime = Field(sa_column=utc_instant())


class QuarantinedRow(SQLModel, table=True):
    """An input row that was not accepted, with the reason a person can act on."""

    __tablename__ = "quarantine"
    retention: ClassVar[Retention] = Retention.MUTABLE
    __table_args__ = (
        CheckConstraint(f"kind IN {sql_values(QuarantineKind)}", name="ck_quarantine_kind"),
    )
    id: int | None = Field(default=None, primary_key=True)
    batch_id: str = Field(foreign_key="batches.batch_id", index=True, max_length=64)
    business_date: date = Field(index=True)
    document: str = Field(max_length=32)
    file_name: str = Field(max_length=255)
    row_number: int = Field(sa_column=bigint())
    # rejected: the row is invalid; conflict: its id was seen with other contents.
    kind: str = Field(max_length=16)
    column_name: str = Field(max_length=64)
    reason: str = Field(sa_column=Column(Text, nullable=False))
    raw_row: str = Field(sa_column=Column(Text, nullable=False))


TABLES = tables_of(globals())
