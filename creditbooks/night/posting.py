"""A night as the stages see it, and how they post: translated, then appended.

Every stage works on one `Night` (made by `open_night`) in its caller's transaction.
`post` gives each line its functional amount (rules/fx.py) with the rates the books
hold, then appends the entries with the night's batch, policy version, recording time
and posting period.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
from sqlalchemy import Connection

from intake.archive import archived_path, read_partition
from ledger.domain import batch_id_for
from ledger.journal import JournalBatch
from ledger.periods import BusinessDay, Period, business_day
from ledger.store import post_journal, read_frame
from rules.fx import no_positions, translate
from rules.policy import Policy


@dataclass(frozen=True)
class Night:
    """What every stage needs to know about the night it works on."""

    day: BusinessDay
    batch_id: str
    policy: Policy
    archive_root: Path
    recorded_at: datetime

    @property
    def on_day(self) -> dict:
        return {"business_date": self.day.business_date, "batch_id": self.batch_id}


def open_night(policy: Policy, archive_root: Path, business_date: date,
               clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> Night:
    """The night of `business_date`: its day in the reporting timezone, its batch id and
    the time its rows record (UTC, from `clock`)."""
    return Night(business_day(business_date, policy.reporting_timezone),
                 batch_id_for(business_date), policy, Path(archive_root),
                 clock().astimezone(UTC).replace(tzinfo=None))


def archived_rows(connection: Connection, night: Night, document: str,
                  columns: list[str] | None = None) -> pd.DataFrame:
    """The rows of `document` this night's batch archived, read through the ledger's record."""
    return read_partition(archived_path(connection, night.archive_root, document,
                                        night.day.business_date), document, columns)


def entry_attributes(connection: Connection, night: Night) -> dict:
    """What every entry of the night records; a night in a locked period posts late."""
    period = Period(read_frame(connection, "SELECT posting_period FROM batches WHERE batch_id = :batch_id",
                               batch_id=night.batch_id)["posting_period"].iloc[0])
    return {"batch_id": night.batch_id, "policy_version": night.policy.version,
            "recorded_at": night.recorded_at, "period": period}


def all_rates(connection: Connection) -> dict[tuple[date, str], str]:
    """Every rate the books have been given, by (date, currency)."""
    rates = read_frame(connection, "SELECT rate_date, currency, rate_to_functional FROM fx_rates")
    return {(date.fromisoformat(str(day)[:10]), currency): rate
            for day, currency, rate in rates.itertuples(index=False)}


def rates_on(connection: Connection, night: Night) -> dict[str, str]:
    """currency -> rate on the night's business date."""
    rates = read_frame(connection, "SELECT currency, rate_to_functional FROM fx_rates "
                       "WHERE rate_date = :day", day=night.day.business_date)
    return dict(rates.itertuples(index=False))


def post(connection: Connection, night: Night, journal: JournalBatch,
         lots: pd.DataFrame | None = None, translated: bool = False) -> None:
    """Translate the journal into the functional currency, then post it.

    Rates are read only for a journal with foreign lines: a single-currency book never
    touches them. `translated`: the journal's functional amounts are already set (the
    remeasurement of foreign cash and sales tax, rules/fx.py) and are posted as they are.
    """
    functional = night.policy.functional_currency
    if not translated and len(journal) and (journal.lines["currency"] != functional).any():
        journal = translate(journal, no_positions() if lots is None else lots,
                            rates_on(connection, night), functional, night.policy.accounts,
                            night.day.business_date)
    post_journal(connection, journal, entry_attributes(connection, night))
