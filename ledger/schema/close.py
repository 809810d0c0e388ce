"""The close: the period events that lock and reopen a period (the last event rules)."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from sqlalchemy import (
    CheckConstraint,
    Column,
    Integer,
    Text,
)
from sqlmodel import Field, SQLModel

from ledger.domain import (
    PeriodAction,
    sql_values,
)
from ledger.schema.columns import (
    Retention,
    tables_of,
    utc_instant,
)


class PeriodEvent(SQLModel, table=True):
    """A period closed or reopened: who, when, why. Append-only; the last event rules.

    A period whose last event is `close` is locked: it accepts no postings.
    """

    __tablename__ = "period_events"
    retention: ClassVar[Retention] = Retention.APPEND_ONLY
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
    recorded_at: datetime = Field(sa_column=utc_instant())
    # A reopen's approver: a person the policy lets approve, other than the actor. Empty
    # on closes, and on events of ledgers from before it was recorded.
    approved_by: str | None = Field(default=None, max_length=200, nullable=True)
    # A close's SHA-256 of its package's manifest.json (which lists every file's): sealed
    # with the event, it holds the package. Empty on reopens, and on closes from before it
    # was recorded.
    manifest_sha256: str | None = Field(default=None, max_length=64, nullable=True)


class PolicyVersion(SQLModel, table=True):
    """The full text of each policy version, kept when a night or a close first used it.

    The version is the policy's hash (`rules.policy`): the text here hashes to it, so the
    rules in force on any past day can be shown, not only named. Append-only.
    """

    __tablename__ = "policy_versions"
    retention: ClassVar[Retention] = Retention.APPEND_ONLY
    version: str = Field(primary_key=True, max_length=64)
    policy_text: str = Field(sa_column=Column(Text, nullable=False))
    first_used_by: str = Field(max_length=200)
    first_used_for: str = Field(max_length=64)  # "night 2026-01-05" or "close 2026-01"
    first_used_at: datetime = Field(sa_column=utc_instant())


TABLES = tables_of(globals())
