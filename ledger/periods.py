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

# [0-9], not \d: \d takes any script's digits, and "٢٠٢٦-01" would be a second name for 2026-01.
_PERIOD = re.compile(r"^([0-9]{4})-(0[1-9]|1[0-2])$")


@dataclass(frozen=True)
class BusinessDay:
    business_date: date
    starts_at_utc: pd.Timestamp
    ends_at_utc: pd.Timestamp

    @property
    def period(self) -> Period:
        return Period.of(self.business_date)

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


class Period(str):
    """An accounting period: a calendar month, named `YYYY-MM`.

    A `str` on purpose: the name is the period's only representation in the books (a
    column, a SQL parameter, a directory, a JSON value), so a Period goes wherever its
    name goes, and nothing else passes for one: `Period(text)` refuses a malformed name,
    and every period an outside caller gives (the command line, the DAGs) is made one.
    """

    __slots__ = ()

    def __new__(cls, name: str) -> Period:
        if isinstance(name, Period):
            return name
        if not isinstance(name, str) or not _PERIOD.fullmatch(name):
            raise ValueError(f"period {name!r} is not of the form YYYY-MM")
        return super().__new__(cls, name)

    @classmethod
    def of(cls, business_date: date) -> Period:
        return cls(f"{business_date.year:04d}-{business_date.month:02d}")

    @property
    def first_day(self) -> date:
        return date(int(self[:4]), int(self[5:]), 1)

    @property
    def following_first_day(self) -> date:
        """The first day of the next period: a period is [first_day, following_first_day)."""
        return self.next().first_day

    @property
    def last_day(self) -> date:
        return self.following_first_day - timedelta(days=1)

    def next(self) -> Period:
        year, month = int(self[:4]), int(self[5:])
        return Period(f"{year + 1:04d}-01" if month == 12 else f"{year:04d}-{month + 1:02d}")

    def previous(self) -> Period:
        year, month = int(self[:4]), int(self[5:])
        return Period(f"{year - 1:04d}-12" if month == 1 else f"{year:04d}-{month - 1:02d}")

    def days(self) -> list[date]:
        return days_between(self.first_day, self.last_day)


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
