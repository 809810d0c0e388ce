"""Whether every day of a period has its nightly batch: what the close requires before it
reads anything, and the completeness report a person confirms.

A day is covered by a published batch that posted (`posted`) or found nothing to post
(`empty`, a quiet day); any other status, or no batch at all, leaves the day missing.
"""

from __future__ import annotations

from datetime import date, timedelta

from ledger.domain import BatchStatus
from ledger.periods import Period, days_between
from ledger.store import Store

PUBLISHED_STATUSES = (BatchStatus.POSTED, BatchStatus.EMPTY)


def day_statuses(store: Store, period: Period) -> dict[str, str | None]:
    """Every day of the period (ISO date), in order, with its batch's status (None: no
    batch); from the ledger's first published night when that is inside the period (a
    ledger started mid-month has no books before it: those days are never missing)."""
    first, following = Period(period).first_day, Period(period).following_first_day
    first_night = _first_published_night(store)
    if first_night is not None and first < first_night < following:
        first = first_night
    batches = store.read_frame("SELECT business_date, status FROM batches WHERE business_date >= "
                               ":first AND business_date < :following", first=first,
                               following=following)
    status_of = {str(row.business_date): row.status for row in batches.itertuples(index=False)}
    return {day.isoformat(): status_of.get(day.isoformat())
            for day in days_between(first, following - timedelta(days=1))}


def _first_published_night(store: Store) -> date | None:
    found = store.read_frame(
        "SELECT MIN(business_date) AS first FROM batches WHERE status IN (:posted, :empty)",
        posted=BatchStatus.POSTED, empty=BatchStatus.EMPTY)["first"].iloc[0]
    if found is None or found != found:  # none published (NULL, or NaN from the frame)
        return None
    return found if isinstance(found, date) else date.fromisoformat(str(found)[:10])


def missing_days(statuses: dict[str, str | None]) -> list[str]:
    """The days without a published batch."""
    return [day for day, status in statuses.items() if status not in PUBLISHED_STATUSES]


def completeness_rows(store: Store, period: Period) -> list[dict]:
    """The days of the period that need a person's attention: quiet days and missing ones."""
    rows = []
    for day, status in day_statuses(store, period).items():
        if status == BatchStatus.EMPTY:
            rows.append({"business_date": day, "status": "empty: confirm no activity"})
        elif status != BatchStatus.POSTED:
            rows.append({"business_date": day, "status": "missing: no published batch"})
    return rows
