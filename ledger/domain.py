"""The ledger's domain values, each named once: a night's stages, a batch's status, a batch's
id, and every kind, action or status a ledger table records.

The stage order here is the order of a night everywhere: the command line runs the stages
in it, the Airflow DAG builds its task chain from it, the tests walk it, and the database's
CHECK constraints list its values. Every CHECK constraint that lists values builds its list
from an enumeration here with `sql_values`, so the code and the database cannot disagree.
Nothing else spells a stage, a status, a kind or a batch id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum


class Stage(StrEnum):
    """The stages of a night, in the order they run (a stage needs the one before it)."""

    INGEST = "ingest"  # read, validate, de-duplicate, quarantine, archive; opens the batch
    PURCHASES = "purchases"  # lots and their entries, costs, refunds and adjustments
    BURN = "burn"  # usage against lots, once per customer shard
    EXPIRE = "expire"  # breakage, expiries, and on a month's last night FX remeasurement
    CONTROLS = "controls"  # the day's checks over all shards together
    PUBLISH = "publish"  # seal the entries onto the chain; the batch becomes visible

    @property
    def is_sharded(self) -> bool:
        """Whether the stage runs once per customer shard (shards never share a customer)."""
        return self is Stage.BURN

    def previous(self) -> Stage | None:
        """The stage that must have run before this one (None for the first)."""
        order = list(Stage)
        position = order.index(self)
        return order[position - 1] if position else None


MAX_SHARDS = 256  # the most customer shards a sharded stage is spread over


@dataclass(frozen=True)
class NightTask:
    """One task of a night: a stage, for one of `shard_count` customer shards when the
    stage is sharded (shard 0 of 1 otherwise)."""

    stage: Stage
    shard: int = 0
    shard_count: int = 1


def night_tasks(shard_count: int = 1) -> tuple[NightTask, ...]:
    """The night's plan, the one the command line, the Airflow DAG and the tests walk: every
    stage in the order of `Stage`, ingest (which opens the batch) first and publish (which
    makes it visible) last, a sharded stage once per customer shard."""
    return tuple(NightTask(stage, shard, shard_count if stage.is_sharded else 1)
                 for stage in Stage
                 for shard in range(shard_count if stage.is_sharded else 1))


class BatchStatus(StrEnum):
    """Open from ingestion until published; then posted, or empty when it had no files."""

    OPEN = "open"
    POSTED = "posted"
    EMPTY = "empty"

    @property
    def is_published(self) -> bool:
        return self is not BatchStatus.OPEN


class EntryKind(StrEnum):
    """What a journal entry records (the order is the CHECK constraint's list)."""

    PURCHASE = "purchase"
    USAGE = "usage"
    BREAKAGE = "breakage"
    COST = "cost"
    REFUND = "refund"
    ESCHEAT = "escheat"
    OVERAGE = "overage"
    FX = "fx"
    MANUAL = "manual"  # a person's journal, approved by another (creditbooks/journals.py)


class LotKind(StrEnum):
    """A lot is paid for, or a promotional grant (free: no amount, no tax)."""

    PAID = "paid"
    PROMOTIONAL = "promotional"


class QuarantineKind(StrEnum):
    """Why an input row was quarantined: invalid, or its id was seen with other contents."""

    REJECTED = "rejected"
    CONFLICT = "conflict"


class AdjustmentAction(StrEnum):
    """A dated change to a lot's terms: extend its expiry, or withdraw a grant's remainder."""

    ROLLOVER = "rollover"
    VOID = "void"


class ExpiryDestination(StrEnum):
    """Where an expired lot's deferred value goes: revenue, or a liability to the state."""

    BREAKAGE = "breakage"
    ESCHEAT = "escheat"


class CostType(StrEnum):
    """A cost of serving varies with usage, or is fixed for the period."""

    VARIABLE = "variable"
    FIXED = "fixed"


class OverageMode(StrEnum):
    """The policy's overage rule: what usage that found no active credits becomes.

    Recorded per row as `uncovered_usage.treatment`."""

    EXCEPTION = "exception"  # recorded for a person to act on; no entry
    ARREARS = "arrears"  # billed at the list price (overage_charges)
    NEGATIVE_BALANCE = "negative_balance"  # owed credits the next purchase pays first


class PeriodAction(StrEnum):
    """A period event: the period is closed (locked) or reopened; the last event rules."""

    CLOSE = "close"
    REOPEN = "reopen"


class ManualJournalStatus(StrEnum):
    """A manual journal: a draft until a second person approves (it posts) or rejects it;
    an approved one is reversed by a new entry, never edited."""

    DRAFT = "draft"
    APPROVED = "approved"
    REJECTED = "rejected"
    REVERSED = "reversed"


class RecordKind(StrEnum):
    """The records the record chain seals (`ledger/record_chain.py`)."""

    BATCH = "batch"
    PERIOD_EVENT = "period_event"
    # An archive partition a published batch wrote (its name, SHA-256 and row count).
    PARTITION = "partition"
    # A policy version's full text, kept when first used.
    POLICY_VERSION = "policy_version"


def sql_values(enumeration: type[StrEnum]) -> str:
    """An enumeration's values as a SQL list for a CHECK constraint: `('a', 'b')`."""
    return "(" + ", ".join(f"'{member.value}'" for member in enumeration) + ")"


NIGHTLY_BATCH_PREFIX = "nightly-"


def batch_id_for(business_date: date) -> str:
    """The id of a business day's nightly batch (an idempotency key: one batch a day)."""
    return f"{NIGHTLY_BATCH_PREFIX}{business_date.isoformat()}"
