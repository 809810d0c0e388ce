"""Business days and accounting periods in the reporting timezone.

A business day D is the half-open instant range [D 00:00, D+1 00:00) in the reporting
timezone, so an instant exactly at midnight belongs to the day that starts there, and an
expiry exactly at midnight falls in the day that ends there (it stops being usable at
that instant). Periods are calendar months named `YYYY-MM`. Instants are stored in UTC.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd

_PERIOD = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


@dataclass(frozen=True)
class BusinessDay:
    business_date: date
    starts_at_utc: pd.Timestamp
    ends_at_utc: pd.Timestamp

    @property
    def period(self) -> str:
        return period_of(self.business_date)

    def late_window_starts_at(self, late_window_days: int) -> pd.Timestamp:
        """The earliest instant whose usage this night still accepts.

        The late window and the duplicate look-back are this one rule, in instants
        (`late_window_days` x 24 hours before the day starts), so a day of 23 or 25 hours
        at a DST change moves neither: an event old enough to be accepted again is always
        old enough to be looked for.
        """
        return self.starts_at_utc - pd.Timedelta(hours=24 * late_window_days)


def business_day(business_date: date, timezone: str) -> BusinessDay:
    zone = ZoneInfo(timezone)
    start = datetime.combine(business_date, datetime.min.time(), tzinfo=zone)
    end = datetime.combine(business_date + timedelta(days=1), datetime.min.time(), tzinfo=zone)
    return BusinessDay(
        business_date,
        pd.Timestamp(start).tz_convert("UTC"),
        pd.Timestamp(end).tz_convert("UTC"),
    )


@dataclass(frozen=True)
class LateWindow:
    """The instants from which a night accepts usage.

    The policy's rule (`BusinessDay.late_window_starts_at`), unless the ledger no longer
    holds the ids of some of them (`ledger/seen_ids.py`): an event older than what the
    ledger remembers cannot be told apart from a re-sent one, so it is refused too.
    """

    days: int
    starts_at_utc: pd.Timestamp
    remembered_from_utc: pd.Timestamp | None = None

    @property
    def accepts_from_utc(self) -> pd.Timestamp:
        if self.remembered_from_utc is None:
            return self.starts_at_utc
        return max(self.starts_at_utc, self.remembered_from_utc)


def business_date_of(instant: pd.Timestamp, timezone: str) -> date:
    """The business day (in the reporting timezone) an instant falls in."""
    return instant.tz_convert(ZoneInfo(timezone)).date()


def period_of(business_date: date) -> str:
    return f"{business_date.year:04d}-{business_date.month:02d}"


def parse_period(text: str) -> tuple[date, date]:
    """'2026-01' -> (first day, first day of the next period)."""
    match = _PERIOD.match(text)
    if not match:
        raise ValueError(f"period {text!r} is not of the form YYYY-MM")
    year, month = int(match.group(1)), int(match.group(2))
    first = date(year, month, 1)
    following = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
    return first, following


def days_between(first: date, last: date) -> list[date]:
    """Every date from first to last, both included."""
    if last < first:
        raise ValueError(f"{last} is before {first}")
    return [first + timedelta(days=offset) for offset in range((last - first).days + 1)]


def parse_business_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"date {text!r} is not of the form YYYY-MM-DD") from None
