"""The ledger's tables: batches, the credit subledger, and the journal.

Money is BIGINT minor units and credits BIGINT micro-credits; constraints say what must
always be true (non-zero journal lines, three-letter currencies, rows read = accepted +
duplicates + rejected, one nightly batch per business date) so the database refuses what
the code should never send. Instants are stored as naive UTC timestamps.

Append-only tables: batches, batch_files, archive_partitions, quarantine, lots, burn_slices,
lot_expiries, usage_daily, uncovered_usage, journal_entries, journal_lines, journal_seals,
period_events, record_seals. `lot_balances`
is the one projection that changes: each lot's running totals, rewritten inside the batch
that changes them and re-derived from the append-only tables by `check`. `seen_usage_ids`
is a window, not a record: parts older than the late window are removed.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel

from ledger.domain import (
    AdjustmentAction,
    BatchStatus,
    CostType,
    EntryKind,
    ExpiryDestination,
    LotKind,
    OverageMode,
    PeriodAction,
    QuarantineKind,
    RecordKind,
    Stage,
    sql_values,
)


def _bigint(*, nullable: bool = False, primary_key: bool = False) -> Column:
    return Column(BigInteger, nullable=nullable, primary_key=primary_key)


def _utc_instant(*, nullable: bool = False) -> Column:
    return Column(DateTime(timezone=False), nullable=nullable)


def _identifier(length: int) -> String:
    """Text that PostgreSQL compares byte by byte, as SQLite does, whatever the server's
    locale: ids sort (and so seal and digest) the same on every server, and the journal's
    indexes are kept without the locale's collation rules (a fifth of their upkeep)."""
    return String(length).with_variant(String(length, collation="C"), "postgresql")


def _currency_check(column: str = "currency") -> CheckConstraint:
    return CheckConstraint(
        f"length({column}) = 3 AND upper({column}) = {column}", name=f"ck_%(table_name)s_{column}"
    )


class Batch(SQLModel, table=True):
    """One business day's nightly batch.

    `open` from ingestion until every stage has run and the day's controls pass; then
    `posted` (or `empty` when the day had no files). Statements count published batches
    only, so a night that is half way through its stages is never visible in them.
    """

    __tablename__ = "batches"
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
    started_at: datetime = Field(sa_column=_utc_instant())
    recorded_at: datetime = Field(sa_column=_utc_instant())
    entry_count: int = Field(sa_column=Column(Integer, nullable=False))


class BatchStage(SQLModel, table=True):
    """A completed stage of a batch, written in the same transaction as the stage's rows.

    Re-running a stage that has a row here does nothing; that is what makes each
    Airflow task idempotent. The burn stage has one row per customer shard.
    """

    __tablename__ = "batch_stages"
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
    recorded_at: datetime = Field(sa_column=_utc_instant())


class BatchFile(SQLModel, table=True):
    """Control totals for one input document of a batch."""

    __tablename__ = "batch_files"
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
    rows_read: int = Field(sa_column=_bigint())
    rows_accepted: int = Field(sa_column=_bigint())
    rows_duplicate: int = Field(sa_column=_bigint())
    rows_rejected: int = Field(sa_column=_bigint())
    credits_accepted_micro: int = Field(sa_column=_bigint())
    amounts_accepted_json: str = Field(sa_column=Column(Text, nullable=False))


class LedgerIdentity(SQLModel, table=True):
    """The ledger's own name, made once: what it writes outside the database carries it.

    Archive partitions are named with it, so a ledger never mistakes another ledger's file
    in a shared archive for a leftover of its own, nor removes one.
    """

    __tablename__ = "ledger_identity"
    ledger_id: str = Field(primary_key=True, max_length=32)
    created_at: datetime = Field(sa_column=_utc_instant())


class ArchivedPartition(SQLModel, table=True):
    """An archive partition a batch wrote: where it is and the SHA-256 of its bytes.

    The archive is evidence the ledger points to, never state it trusts: a reader takes a
    partition only through its row here and refuses one whose bytes differ (altered, or
    written by another ledger) or that is missing. A file in the archive that no row here
    names was left by a run that did not commit, and is ignored.
    """

    __tablename__ = "archive_partitions"
    batch_id: str = Field(primary_key=True, foreign_key="batches.batch_id", max_length=64)
    document: str = Field(primary_key=True, max_length=32)
    business_date: date = Field(index=True)
    relative_path: str = Field(max_length=255)
    sha256: str = Field(max_length=64)
    row_count: int = Field(sa_column=_bigint())


class SeenUsageIds(SQLModel, table=True):
    """The usage event ids a batch accepted, kept for the late window's duplicate look-back.

    Written in the transaction of the batch that accepted them, so what the ledger has seen
    is decided from the ledger alone. Each row holds up to a million ids as Parquet bytes
    (event_id, payload_hash, occurred_at): a night's ids cost a few blob writes, not a
    B-tree insert each. Parts older than any late window still open are removed by later
    nights (`ledger/seen_ids.py`).
    """

    __tablename__ = "seen_usage_ids"
    batch_id: str = Field(primary_key=True, max_length=64)
    part: int = Field(sa_column=Column(Integer, primary_key=True))
    business_date: date = Field(index=True)
    # The latest `occurred_at` in the part: a look-back reads, and a night forgets, whole
    # parts by this instant, whatever the reporting timezone was when they were written.
    latest_occurred_at: datetime = Field(sa_column=Column(DateTime(timezone=False),
                                                          nullable=False, index=True))
    id_count: int = Field(sa_column=_bigint())
    ids_parquet: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class UsageIdMemory(SQLModel, table=True):
    """Since when the ledger holds every usage id it accepted (one row, once it forgot any).

    A night forgets the parts older than its own late window; if a later night's window
    reaches further back (the policy's window grew, or its timezone moved), events older
    than this instant are refused: the ledger cannot tell them from re-sent ones.
    """

    __tablename__ = "usage_id_memory"
    memory_id: int = Field(sa_column=Column(Integer, primary_key=True))
    remembered_from: datetime = Field(sa_column=_utc_instant())


class QuarantinedRow(SQLModel, table=True):
    """An input row that was not accepted, with the reason a person can act on."""

    __tablename__ = "quarantine"
    __table_args__ = (
        CheckConstraint(f"kind IN {sql_values(QuarantineKind)}", name="ck_quarantine_kind"),
    )
    id: int | None = Field(default=None, primary_key=True)
    batch_id: str = Field(foreign_key="batches.batch_id", index=True, max_length=64)
    business_date: date = Field(index=True)
    document: str = Field(max_length=32)
    file_name: str = Field(max_length=255)
    row_number: int = Field(sa_column=_bigint())
    # rejected: the row is invalid; conflict: its id was seen with other contents.
    kind: str = Field(max_length=16)
    column_name: str = Field(max_length=64)
    reason: str = Field(sa_column=Column(Text, nullable=False))
    raw_row: str = Field(sa_column=Column(Text, nullable=False))


class Lot(SQLModel, table=True):
    """A purchase of credits: the immutable facts of the lot."""

    __tablename__ = "lots"
    __table_args__ = (
        _currency_check(),
        CheckConstraint("credits_micro > 0", name="ck_lots_credits_positive"),
        CheckConstraint("amount_minor >= 0 AND tax_minor >= 0", name="ck_lots_money_non_negative"),
        CheckConstraint(f"kind IN {sql_values(LotKind)}", name="ck_lots_kind"),
        CheckConstraint(f"kind = '{LotKind.PAID}' OR (amount_minor = 0 AND tax_minor = 0)",
                        name="ck_lots_promotional_free"),
        CheckConstraint(
            "expires_at IS NULL OR expires_at > purchased_at", name="ck_lots_expiry_after_purchase"
        ),
    )
    purchase_id: str = Field(primary_key=True, max_length=200)
    customer_id: str = Field(index=True, max_length=200)
    purchased_at: datetime = Field(sa_column=_utc_instant())
    expires_at: datetime | None = Field(default=None, sa_column=_utc_instant(nullable=True))
    credits_micro: int = Field(sa_column=_bigint())
    amount_minor: int = Field(sa_column=_bigint())
    tax_minor: int = Field(sa_column=_bigint())
    currency: str = Field(max_length=3)
    kind: str = Field(max_length=16)
    product: str = Field(max_length=200)
    priority: int = Field(sa_column=Column(Integer, nullable=False))
    # The customer's country (ISO 3166-1 alpha-2) or ''; it decides unclaimed property.
    country: str = Field(default="", max_length=2)
    # Functional currency per unit of the lot's currency on its purchase date: deferred
    # revenue is non-monetary, so the lot's revenue and breakage use it for ever.
    rate_to_functional: str = Field(default="1", max_length=32)
    payload_hash: str = Field(max_length=32)
    batch_id: str = Field(foreign_key="batches.batch_id", max_length=64)
    business_date: date


class LotBalance(SQLModel, table=True):
    """Running totals of a lot; `check` re-derives them from the append-only records.

    Credits leave a lot by use, refund or expiry; its amount leaves deferred revenue as
    usage revenue, refunded value, breakage (accrued under the proportional method, the
    rest at expiry) or escheat (expired value owed to a state, never revenue).
    """

    __tablename__ = "lot_balances"
    __table_args__ = (
        CheckConstraint(
            "credits_used_micro >= 0 AND credits_expired_micro >= 0 "
            "AND credits_refunded_micro >= 0 AND usage_value_minor >= 0 AND breakage_minor >= 0 "
            "AND refunded_value_minor >= 0 AND refunded_tax_minor >= 0 AND escheat_minor >= 0 "
            "AND credits_voided_micro >= 0",
            name="ck_lot_balances_non_negative",
        ),
    )
    purchase_id: str = Field(primary_key=True, foreign_key="lots.purchase_id", max_length=200)
    customer_id: str = Field(index=True, max_length=200)
    # The expiry in force: the purchase's own, or the last rollover's.
    expires_at: datetime | None = Field(default=None, sa_column=_utc_instant(nullable=True))
    credits_used_micro: int = Field(sa_column=_bigint())
    usage_value_minor: int = Field(sa_column=_bigint())
    credits_expired_micro: int = Field(sa_column=_bigint())
    # Breakage to date; under the proportional method a change of estimate can lower it.
    breakage_minor: int = Field(sa_column=_bigint())
    credits_refunded_micro: int = Field(default=0, sa_column=_bigint())
    refunded_value_minor: int = Field(default=0, sa_column=_bigint())
    refunded_tax_minor: int = Field(default=0, sa_column=_bigint())
    escheat_minor: int = Field(default=0, sa_column=_bigint())
    credits_voided_micro: int = Field(default=0, sa_column=_bigint())
    is_open: bool = Field(index=True)
    last_batch_id: str = Field(max_length=64)


class BurnSlice(SQLModel, table=True):
    """Credits of one lot burned by one customer's usage of one meter on one day."""

    __tablename__ = "burn_slices"
    __table_args__ = (
        _currency_check(),
        CheckConstraint("credits_micro > 0", name="ck_burn_slices_credits_positive"),
        CheckConstraint("value_minor >= 0", name="ck_burn_slices_value_non_negative"),
    )
    business_date: date = Field(primary_key=True)
    customer_id: str = Field(primary_key=True, max_length=200)
    purchase_id: str = Field(primary_key=True, foreign_key="lots.purchase_id", max_length=200)
    meter: str = Field(primary_key=True, max_length=200)
    credits_micro: int = Field(sa_column=_bigint())
    value_minor: int = Field(sa_column=_bigint())
    currency: str = Field(max_length=3)
    batch_id: str = Field(foreign_key="batches.batch_id", max_length=64)


class RefundRecord(SQLModel, table=True):
    """Unused credits of a paid lot given back: their deferred value and tax, against cash."""

    __tablename__ = "refunds"
    __table_args__ = (
        _currency_check(),
        CheckConstraint("credits_micro > 0", name="ck_refunds_credits_positive"),
        CheckConstraint("value_minor >= 0 AND tax_minor >= 0", name="ck_refunds_money_sign"),
    )
    refund_id: str = Field(primary_key=True, max_length=200)
    purchase_id: str = Field(foreign_key="lots.purchase_id", index=True, max_length=200)
    customer_id: str = Field(index=True, max_length=200)
    refunded_at: datetime = Field(sa_column=_utc_instant())
    credits_micro: int = Field(sa_column=_bigint())
    value_minor: int = Field(sa_column=_bigint())
    tax_minor: int = Field(sa_column=_bigint())
    currency: str = Field(max_length=3)
    payload_hash: str = Field(max_length=32)
    batch_id: str = Field(foreign_key="batches.batch_id", max_length=64)
    business_date: date


class LotAdjustment(SQLModel, table=True):
    """A dated change to a lot's terms: a rollover extends its expiry; a void withdraws what
    is left of a promotional grant. No money moves; the lot's later burns and expiry do."""

    __tablename__ = "lot_adjustments"
    __table_args__ = (
        CheckConstraint(f"action IN {sql_values(AdjustmentAction)}",
                        name="ck_lot_adjustments_action"),
        CheckConstraint(f"action = '{AdjustmentAction.VOID}' OR new_expires_at IS NOT NULL",
                        name="ck_lot_adjustments_rollover_expiry"),
        CheckConstraint("credits_voided_micro >= 0", name="ck_lot_adjustments_credits"),
    )
    adjustment_id: str = Field(primary_key=True, max_length=200)
    purchase_id: str = Field(foreign_key="lots.purchase_id", index=True, max_length=200)
    customer_id: str = Field(max_length=200)
    adjusted_at: datetime = Field(sa_column=_utc_instant())
    action: str = Field(max_length=16)
    previous_expires_at: datetime | None = Field(default=None,
                                                 sa_column=_utc_instant(nullable=True))
    new_expires_at: datetime | None = Field(default=None, sa_column=_utc_instant(nullable=True))
    credits_voided_micro: int = Field(sa_column=_bigint())
    reason: str = Field(sa_column=Column(Text, nullable=False))
    payload_hash: str = Field(max_length=32)
    batch_id: str = Field(foreign_key="batches.batch_id", max_length=64)
    business_date: date


class LotExpiry(SQLModel, table=True):
    """A lot's expiry: the credits it lost and the deferred value that left with them.

    `destination` is `breakage` (revenue) or `escheat` (a liability to the state of the
    customer's country, never revenue). Under the proportional method `value_minor` is
    what was still deferred at expiry, after the breakage accrued before it.
    """

    __tablename__ = "lot_expiries"
    __table_args__ = (
        CheckConstraint("credits_micro >= 0 AND value_minor >= 0", name="ck_lot_expiries_sign"),
        CheckConstraint(f"destination IN {sql_values(ExpiryDestination)}",
                        name="ck_lot_expiries_destination"),
    )
    purchase_id: str = Field(primary_key=True, foreign_key="lots.purchase_id", max_length=200)
    business_date: date = Field(index=True)
    credits_micro: int = Field(sa_column=_bigint())
    value_minor: int = Field(sa_column=_bigint())
    destination: str = Field(default="breakage", max_length=16)
    batch_id: str = Field(foreign_key="batches.batch_id", max_length=64)


class BreakageAccrual(SQLModel, table=True):
    """A night's change in a lot's proportional breakage, with the expected rate in force."""

    __tablename__ = "breakage_accruals"
    __table_args__ = (
        CheckConstraint("change_minor <> 0", name="ck_breakage_accruals_change"),
        CheckConstraint("breakage_to_date_minor >= 0", name="ck_breakage_accruals_to_date"),
    )
    purchase_id: str = Field(primary_key=True, foreign_key="lots.purchase_id", max_length=200)
    business_date: date = Field(primary_key=True)
    rate: str = Field(max_length=32)
    credits_used_micro: int = Field(sa_column=_bigint())
    breakage_to_date_minor: int = Field(sa_column=_bigint())
    change_minor: int = Field(sa_column=_bigint())
    policy_version: str = Field(max_length=64)
    batch_id: str = Field(foreign_key="batches.batch_id", max_length=64)


class FxRate(SQLModel, table=True):
    """An exchange rate: functional currency per unit of `currency` on `rate_date`."""

    __tablename__ = "fx_rates"
    __table_args__ = (_currency_check(),)
    rate_id: str = Field(primary_key=True, max_length=16)  # "YYYY-MM-DD/CUR"
    rate_date: date = Field(index=True)
    currency: str = Field(max_length=3)
    rate_to_functional: str = Field(max_length=32)
    payload_hash: str = Field(max_length=32)
    batch_id: str = Field(foreign_key="batches.batch_id", max_length=64)
    business_date: date


class CostLine(SQLModel, table=True):
    """A cost of serving (a cloud bill line, an API fee) for a meter, or `*` for all meters."""

    __tablename__ = "costs"
    __table_args__ = (
        _currency_check(),
        CheckConstraint("amount_minor >= 0", name="ck_costs_amount_non_negative"),
        CheckConstraint(f"cost_type IN {sql_values(CostType)}", name="ck_costs_type"),
    )
    cost_id: str = Field(primary_key=True, max_length=200)
    cost_date: date = Field(index=True)
    meter: str = Field(max_length=200)
    amount_minor: int = Field(sa_column=_bigint())
    currency: str = Field(max_length=3)
    cost_type: str = Field(max_length=8)
    vendor: str = Field(max_length=200)
    memo: str = Field(sa_column=Column(Text, nullable=False))
    payload_hash: str = Field(max_length=32)
    batch_id: str = Field(foreign_key="batches.batch_id", max_length=64)
    business_date: date


class UsageDaily(SQLModel, table=True):
    """Accepted usage per customer, meter and business day (raw events live in the archive)."""

    __tablename__ = "usage_daily"
    business_date: date = Field(primary_key=True)
    customer_id: str = Field(primary_key=True, max_length=200)
    meter: str = Field(primary_key=True, max_length=200)
    event_count: int = Field(sa_column=_bigint())
    late_event_count: int = Field(sa_column=_bigint())
    credits_micro: int = Field(sa_column=_bigint())
    batch_id: str = Field(foreign_key="batches.batch_id", max_length=64)


class UncoveredUsage(SQLModel, table=True):
    """Usage that found no active credits: never deferred revenue, and never lost.

    `treatment` is the policy's overage rule for the customer: `exception` (recorded for a
    person to act on), `arrears` (billed at the list price, see `overage_charges`) or
    `negative_balance` (owed credits the customer's next purchase pays first, see
    `overage_settlements`).
    """

    __tablename__ = "uncovered_usage"
    __table_args__ = (
        CheckConstraint("credits_micro > 0", name="ck_uncovered_usage_credits_positive"),
        CheckConstraint(f"treatment IN {sql_values(OverageMode)}",
                        name="ck_uncovered_usage_treatment"),
    )
    business_date: date = Field(primary_key=True)
    customer_id: str = Field(primary_key=True, max_length=200)
    meter: str = Field(primary_key=True, max_length=200)
    credits_micro: int = Field(sa_column=_bigint())
    event_count: int = Field(sa_column=_bigint())
    treatment: str = Field(default="exception", max_length=16)
    batch_id: str = Field(foreign_key="batches.batch_id", max_length=64)


class OverageCharge(SQLModel, table=True):
    """Uncovered credits billed in arrears at the list price: Dr receivables / Cr overage."""

    __tablename__ = "overage_charges"
    __table_args__ = (
        _currency_check(),
        CheckConstraint("credits_micro > 0 AND amount_minor >= 0", name="ck_overage_charges_sign"),
    )
    business_date: date = Field(primary_key=True)
    customer_id: str = Field(primary_key=True, max_length=200)
    meter: str = Field(primary_key=True, max_length=200)
    credits_micro: int = Field(sa_column=_bigint())
    price_per_credit: str = Field(max_length=32)
    amount_minor: int = Field(sa_column=_bigint())
    currency: str = Field(max_length=3)
    batch_id: str = Field(foreign_key="batches.batch_id", max_length=64)


class OverageSettlement(SQLModel, table=True):
    """Owed credits (a negative balance) paid from a later purchase: usage revenue that day."""

    __tablename__ = "overage_settlements"
    __table_args__ = (
        _currency_check(),
        CheckConstraint("credits_micro > 0 AND value_minor >= 0",
                        name="ck_overage_settlements_sign"),
    )
    business_date: date = Field(primary_key=True)
    customer_id: str = Field(primary_key=True, max_length=200)
    purchase_id: str = Field(primary_key=True, foreign_key="lots.purchase_id", max_length=200)
    meter: str = Field(primary_key=True, max_length=200)
    credits_micro: int = Field(sa_column=_bigint())
    value_minor: int = Field(sa_column=_bigint())
    currency: str = Field(max_length=3)
    batch_id: str = Field(foreign_key="batches.batch_id", max_length=64)


class JournalEntryRecord(SQLModel, table=True):
    """A posted entry. `business_date` is when it happened, `recorded_at` when we wrote it."""

    __tablename__ = "journal_entries"
    __table_args__ = (
        CheckConstraint(f"kind IN {sql_values(EntryKind)}", name="ck_entries_kind"),
        Index("ix_journal_entries_period_kind", "period", "kind"),
    )
    entry_id: str = Field(primary_key=True, sa_type=_identifier(255))
    kind: str = Field(sa_type=_identifier(16))
    business_date: date = Field(index=True)
    period: str = Field(sa_type=_identifier(7))
    customer_id: str = Field(index=True, sa_type=_identifier(200))
    source_ref: str = Field(sa_type=_identifier(255))
    batch_id: str = Field(foreign_key="batches.batch_id", index=True, sa_type=_identifier(64))
    policy_version: str = Field(sa_type=_identifier(64))
    recorded_at: datetime = Field(sa_column=_utc_instant())


class JournalLineRecord(SQLModel, table=True):
    """One posting: signed minor units, debit positive and credit negative, in its
    transaction currency and in the functional currency. A period-end remeasurement line
    moves only the functional amount (its transaction amount is zero)."""

    __tablename__ = "journal_lines"
    __table_args__ = (
        _currency_check(),
        CheckConstraint("amount_minor <> 0 OR functional_minor <> 0",
                        name="ck_journal_lines_non_zero"),
        Index("ix_journal_lines_account_currency", "account", "currency"),
    )
    entry_id: str = Field(
        primary_key=True, foreign_key="journal_entries.entry_id", sa_type=_identifier(255)
    )
    line_number: int = Field(sa_column=Column(Integer, primary_key=True))
    account: str = Field(sa_type=_identifier(255))
    currency: str = Field(sa_type=_identifier(3))
    amount_minor: int = Field(sa_column=_bigint())
    functional_minor: int = Field(sa_column=_bigint())
    meter: str | None = Field(default=None, sa_column=Column(_identifier(200), nullable=True))
    purchase_id: str | None = Field(default=None,
                                    sa_column=Column(_identifier(200), nullable=True))


class JournalSeal(SQLModel, table=True):
    """The hash chain over the journal: each entry's content hash, chained to the one before.

    Entries are sealed when their batch publishes, in entry id order, so the chain's order
    does not depend on how many shards posted the night.
    """

    __tablename__ = "journal_seals"
    sequence: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    entry_id: str = Field(unique=True, foreign_key="journal_entries.entry_id", max_length=255)
    batch_id: str = Field(foreign_key="batches.batch_id", index=True, max_length=64)
    content_hash: str = Field(max_length=64)
    chain_hash: str = Field(max_length=64)


class PeriodEvent(SQLModel, table=True):
    """A period closed or reopened: who, when, why. Append-only; the last event rules.

    A period whose last event is `close` is locked: it accepts no postings.
    """

    __tablename__ = "period_events"
    __table_args__ = (
        CheckConstraint(f"action IN {sql_values(PeriodAction)}", name="ck_period_events_action"),
        CheckConstraint(f"action = '{PeriodAction.CLOSE}' OR length(reason) > 0",
                        name="ck_period_events_reason"),
    )
    id: int | None = Field(default=None, primary_key=True)
    period: str = Field(index=True, max_length=7)
    action: str = Field(max_length=8)
    version: int = Field(sa_column=Column(Integer, nullable=False))
    actor: str = Field(max_length=200)
    reason: str = Field(sa_column=Column(Text, nullable=False))
    accepted_exceptions: bool
    journal_digest: str = Field(max_length=64)
    recorded_at: datetime = Field(sa_column=_utc_instant())


class RecordSeal(SQLModel, table=True):
    """The record chain: batches (with their files' checksums and counts and their
    quarantine rows) and period events, each sealed when it is written, chained to the
    seal before it and anchored to the journal chain's head at that moment
    (`ledger/record_chain.py`)."""

    __tablename__ = "record_seals"
    __table_args__ = (
        CheckConstraint(f"record_kind IN {sql_values(RecordKind)}", name="ck_record_seals_kind"),
        UniqueConstraint("record_kind", "record_key", name="uq_record_seals_record"),
    )
    sequence: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    record_kind: str = Field(max_length=16)
    record_key: str = Field(max_length=64)
    entry_sequence: int = Field(sa_column=_bigint())
    entry_chain_hash: str = Field(max_length=64)
    content_hash: str = Field(max_length=64)
    chain_hash: str = Field(max_length=64)


ALL_TABLES = [
    Batch,
    BatchStage,
    BatchFile,
    LedgerIdentity,
    ArchivedPartition,
    SeenUsageIds,
    UsageIdMemory,
    QuarantinedRow,
    Lot,
    LotBalance,
    CostLine,
    FxRate,
    RefundRecord,
    LotAdjustment,
    BurnSlice,
    LotExpiry,
    BreakageAccrual,
    UsageDaily,
    UncoveredUsage,
    OverageCharge,
    OverageSettlement,
    JournalEntryRecord,
    JournalLineRecord,
    JournalSeal,
    PeriodEvent,
    RecordSeal,
]
