"""Period locks: a closed period accepts no postings, from any path.

The lock state is the last event of each period in the append-only `period_events`
log (close or reopen, with who, when and why). `post_journal` refuses entries into a
locked period, and nights that fall in a locked period post into the first open one
(`posting_period`), keeping their own dates.

On PostgreSQL, posting and closing also serialise on one advisory lock: every posting
transaction holds it shared (so nights and their shards run side by side) and the close
holds it exclusively while it re-checks the journal and records the lock, so no entry
can land in a period between the close reading it and locking it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, insert, text

from ledger import schema
from ledger.domain import PeriodAction
from ledger.periods import Period

MAX_PERIODS_AHEAD = 1200
# An arbitrary constant that names "the ledger's periods" among advisory locks.
POSTING_LOCK_KEY = 0x6372656469_7462


def share_posting_lock(connection: Connection) -> None:
    """Hold, until this transaction ends, the right to post (waits while a close locks)."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock_shared(:key)"),
                           {"key": POSTING_LOCK_KEY})


def take_posting_lock(connection: Connection) -> None:
    """Hold, until this transaction ends, every posting off (waits for those in flight)."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": POSTING_LOCK_KEY})


class PeriodLockedError(RuntimeError):
    """Something tried to post into a locked period."""


def period_states(connection: Connection) -> dict[Period, dict]:
    """Each period's last event: {Period("YYYY-MM"): {"action", "version", "recorded_at", ...}}."""
    events = connection.execute(text("""
        SELECT period, action, version, actor, reason, accepted_exceptions, journal_digest,
               recorded_at, id
        FROM period_events ORDER BY period, id
    """)).mappings()
    return {Period(event["period"]): dict(event) for event in events}


def locked_periods(connection: Connection) -> set[Period]:
    return {period for period, state in period_states(connection).items()
            if state["action"] == PeriodAction.CLOSE}


def posting_period(connection: Connection, period: Period) -> Period:
    """The period itself if open, else the first open period after it."""
    locked = locked_periods(connection)
    candidate = period
    for _ in range(MAX_PERIODS_AHEAD):
        if candidate not in locked:
            return candidate
        candidate = candidate.next()
    raise PeriodLockedError(f"no open period within {MAX_PERIODS_AHEAD} months after {period}")


def require_open(connection: Connection, periods: set[str]) -> None:
    closed = sorted(periods & locked_periods(connection))
    if closed:
        raise PeriodLockedError(f"period {', '.join(closed)} is locked; it accepts no postings")


def record_period_event(connection: Connection, period: Period, action: PeriodAction,
                        version: int, actor: str, reason: str, accepted_exceptions: bool,
                        journal_digest: str, recorded_at: datetime,
                        approved_by: str | None = None,
                        manifest_sha256: str | None = None) -> int:
    """Append the event and seal it onto the record chain, in the caller's transaction;
    returns the event's id. approved_by: a reopen's approver; manifest_sha256: a close's
    SHA-256 of its package's manifest.json."""
    # Imported here: ledger.record_chain needs ledger.chain, whose ledger.store imports this.
    from ledger.record_chain import seal_period_event

    event_id = connection.execute(insert(schema.PeriodEvent.__table__).values(
        period=period, action=action, version=version, actor=actor, reason=reason,
        accepted_exceptions=accepted_exceptions, journal_digest=journal_digest,
        recorded_at=recorded_at, approved_by=approved_by,
        manifest_sha256=manifest_sha256)).inserted_primary_key[0]
    seal_period_event(connection, int(event_id))
    return int(event_id)
