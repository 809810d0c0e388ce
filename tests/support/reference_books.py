"""A small, obviously correct model of the books, for differential testing.

Event by event, in Decimal, with no pandas and nothing shared with the engine but the
written rules (ACCOUNTING.md, the README and the policy's burn order, late window and
reporting timezone):
- a business day is [local midnight, next local midnight) in the reporting timezone, so it
  lasts 23 or 25 hours across a DST change; a purchase, refund or usage event dated at or
  after its end is rejected;
- the late window starts `late_window_days` x 24 hours (elapsed time, not calendar days)
  before the day starts: usage that occurred before it is rejected as too late; an id
  accepted on an earlier night whose `occurred_at` is at or after it is a duplicate (same
  contents) or a conflict (other contents, rejected); older ids are forgotten; within one
  file, the first copy of an id is accepted and the later ones are duplicates, unless the
  copies differ, when every copy is a conflict;
- a paid purchase: Dr cash clearing amount + tax, Cr deferred amount, Cr tax;
- each night, the day's new usage events burn in time order; a late event burns at the
  start of the day; each event takes credits from the customer's lots active at that
  instant, in burn order;
- refunds take effect at the start of their night, before its usage, in refunded_at
  order; one is refused when its lot is unknown or promotional, it is dated before the
  purchase or at/after the lot's expiry, or it asks for more credits than are left;
- the value of what has left a lot (used or refunded) is amount x (used + refunded) /
  credits, rounded half to even to the currency's minor unit; usage and refunds each
  take the change they cause; a refund's tax is the change in tax x refunded / credits;
- at the night of its expiry a lot with credits left moves what is still deferred to
  breakage revenue.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from zoneinfo import ZoneInfo

ACCOUNTS = {"cash": "Assets:Cash:Clearing", "deferred": "Liabilities:DeferredRevenue:Credits",
            "tax": "Liabilities:Tax:Sales", "usage": "Income:Revenue:Usage",
            "breakage": "Income:Revenue:Breakage"}
EXPONENT = {"USD": 2, "JPY": 0, "EUR": 2}


@dataclass
class ModelLot:
    purchase_id: str
    customer: str
    purchased_at: datetime
    expires_at: datetime | None
    credits: Decimal
    amount: Decimal  # major units
    tax: Decimal
    currency: str
    priority: int
    kind: str = "paid"
    used: Decimal = Decimal(0)
    usage_value: Decimal = Decimal(0)
    refunded: Decimal = Decimal(0)
    refunded_value: Decimal = Decimal(0)
    refunded_tax: Decimal = Decimal(0)
    breakage: Decimal = Decimal(0)
    expired: bool = False

    def burn_key(self, order: tuple[str, ...]) -> tuple:
        never = (1, 0)
        keys = {"priority": self.priority,
                "expires_at": never if self.expires_at is None else (0, self.expires_at),
                "per_credit_value": Fraction(self.amount) / Fraction(self.credits),
                "purchased_at": self.purchased_at, "purchase_id": self.purchase_id}
        return tuple(keys[name] for name in order)

    def active_at(self, instant: datetime) -> bool:
        return self.purchased_at <= instant and (self.expires_at is None
                                                 or instant < self.expires_at)

    def value_of(self, consumed: Decimal, total: Decimal | None = None) -> Decimal:
        quantum = Decimal(1).scaleb(-EXPONENT[self.currency])
        total = self.amount if total is None else total
        return (total * consumed / self.credits).quantize(quantum, ROUND_HALF_EVEN)

    def left(self) -> Decimal:
        return self.credits - self.used - self.refunded


@dataclass(frozen=True)
class ModelRefund:
    refund_id: str
    purchase_id: str
    refunded_at: datetime
    credits: Decimal


@dataclass(frozen=True)
class ModelEvent:
    event_id: str
    customer: str
    occurred_at: datetime
    meter: str
    credits: Decimal

    def contents(self) -> tuple:
        """What a re-sent copy must repeat to be a duplicate (instants compared as instants)."""
        return (self.customer, self.occurred_at.astimezone(UTC), self.meter, self.credits)


@dataclass(frozen=True)
class UsageCounts:
    """What became of a night's usage rows: rows read = accepted + duplicates + rejected."""

    rows_read: int
    accepted: int
    duplicates: int
    rejected: int  # invalid (after the day, too late) and conflicts
    too_late: int
    conflicts: int


@dataclass(frozen=True)
class NightCounts:
    purchases_accepted: int
    refunds_accepted: int
    usage: UsageCounts


class ReferenceBooks:
    def __init__(self, burn_order: tuple[str, ...], late_window_days: int,
                 reporting_timezone: str = "UTC") -> None:
        self.burn_order = burn_order
        self.late_window_days = late_window_days
        self.zone = ZoneInfo(reporting_timezone)
        self.lots: dict[str, ModelLot] = {}
        self.accepted_events: dict[str, ModelEvent] = {}
        self.balances: dict[tuple[str, str], Decimal] = {}
        self.uncovered = Decimal(0)

    def day_bounds(self, business_date: date) -> tuple[datetime, datetime]:
        """[start, end) of a business day as UTC instants: local midnight to local midnight."""
        def midnight(day: date) -> datetime:
            return datetime.combine(day, time(0), tzinfo=self.zone).astimezone(UTC)

        return midnight(business_date), midnight(business_date + timedelta(days=1))

    def late_window_starts_at(self, business_date: date) -> datetime:
        """The first instant whose usage the night of `business_date` still accepts.

        Subtracted in UTC: Python's arithmetic on an aware local datetime is wall-clock
        arithmetic, which would give calendar days (47 or 49 hours across a DST change).
        """
        day_start, _ = self.day_bounds(business_date)
        return day_start - timedelta(hours=24 * self.late_window_days)

    def sort_usage(self, business_date: date,
                   events: list[ModelEvent]) -> tuple[list[ModelEvent], UsageCounts]:
        """The night's new events (first copy of each id, in file order) and the counts."""
        window_start = self.late_window_starts_at(business_date)
        _, day_end = self.day_bounds(business_date)
        too_late = sum(event.occurred_at < window_start for event in events)
        copies_of: dict[str, list[ModelEvent]] = {}
        for event in events:
            if window_start <= event.occurred_at < day_end:
                copies_of.setdefault(event.event_id, []).append(event)
        valid = sum(len(copies) for copies in copies_of.values())
        fresh: list[ModelEvent] = []
        duplicates = conflicts = 0
        for event_id, copies in copies_of.items():
            contents = {copy.contents() for copy in copies}
            earlier = self.accepted_events.get(event_id)
            if earlier is not None and earlier.occurred_at < window_start:
                earlier = None  # outside the look-back: too old to be accepted again anyway
            if len(contents) > 1 or (earlier is not None and earlier.contents() not in contents):
                conflicts += len(copies)
            elif earlier is not None:
                duplicates += len(copies)
            else:
                fresh.append(copies[0])
                duplicates += len(copies) - 1
        rejected = len(events) - valid + conflicts
        return fresh, UsageCounts(len(events), len(fresh), duplicates, rejected, too_late,
                                  conflicts)

    def _post(self, currency: str, *lines: tuple[str, Decimal]) -> None:
        for account, amount in lines:
            key = (ACCOUNTS[account], currency)
            self.balances[key] = self.balances.get(key, Decimal(0)) + amount

    def night(self, business_date: date, purchases: list[ModelLot],
              events: list[ModelEvent], refunds: list[ModelRefund] = ()) -> NightCounts:
        """Post one night (only call it for a night the engine posted)."""
        day_start, day_end = self.day_bounds(business_date)
        bought = [lot for lot in purchases if lot.purchased_at < day_end]
        for lot in bought:
            self.lots[lot.purchase_id] = lot
            if lot.amount or lot.tax:
                self._post(lot.currency, ("cash", lot.amount + lot.tax), ("deferred", -lot.amount),
                           ("tax", -lot.tax))
        refunded = 0
        for refund in sorted(refunds, key=lambda r: (r.purchase_id, r.refunded_at, r.refund_id)):
            if refund.refunded_at < day_end:  # one dated after the day is rejected
                refunded += self._refund(refund)
        fresh, usage = self.sort_usage(business_date, events)
        self.accepted_events.update((event.event_id, event) for event in fresh)
        used_before = {purchase_id: lot.used for purchase_id, lot in self.lots.items()}
        for event in sorted(fresh, key=lambda e: (max(e.occurred_at, day_start), e.occurred_at,
                                                  e.event_id)):
            self._burn(event, max(event.occurred_at, day_start))
        for lot in sorted(self.lots.values(), key=lambda lot: lot.purchase_id):
            if lot.used != used_before.get(lot.purchase_id, Decimal(0)):
                change = lot.value_of(lot.used + lot.refunded) - lot.usage_value - lot.refunded_value
                self._post(lot.currency, ("deferred", change), ("usage", -change))
                lot.usage_value += change
            if (not lot.expired and lot.expires_at is not None and lot.expires_at <= day_end
                    and lot.left() > 0):
                lot.expired = True
                lot.breakage = lot.amount - lot.usage_value - lot.refunded_value
                self._post(lot.currency, ("deferred", lot.breakage), ("breakage", -lot.breakage))
        return NightCounts(len(bought), refunded, usage)

    def _refund(self, refund: ModelRefund) -> int:
        lot = self.lots.get(refund.purchase_id)
        if (lot is None or lot.kind != "paid" or refund.refunded_at < lot.purchased_at
                or lot.expired or (lot.expires_at is not None
                                   and lot.expires_at <= refund.refunded_at)
                or refund.credits > lot.left()):
            return 0
        consumed = lot.used + lot.refunded
        value = lot.value_of(consumed + refund.credits) - lot.value_of(consumed)
        tax = (lot.value_of(lot.refunded + refund.credits, lot.tax)
               - lot.value_of(lot.refunded, lot.tax))
        lot.refunded += refund.credits
        lot.refunded_value += value
        lot.refunded_tax += tax
        self._post(lot.currency, ("deferred", value), ("tax", tax), ("cash", -value - tax))
        return 1

    def _burn(self, event: ModelEvent, instant: datetime) -> None:
        need = event.credits
        candidates = sorted((lot for lot in self.lots.values()
                             if lot.customer == event.customer and not lot.expired
                             and lot.active_at(instant)),
                            key=lambda lot: lot.burn_key(self.burn_order))
        for lot in candidates:
            taken = min(need, lot.left())
            lot.used += taken
            need -= taken
            if need == 0:
                return
        self.uncovered += need

    def balances_minor(self) -> dict[tuple[str, str], int]:
        return {key: int(amount.scaleb(EXPONENT[key[1]]))
                for key, amount in self.balances.items() if amount != 0}

    def lot_states_minor(self) -> dict[str, tuple[int, ...]]:
        """purchase_id -> (micro-credits used, usage value, micro-credits refunded, refunded
        value, refunded tax, breakage), money in minor units."""
        def minor(lot: ModelLot, amount: Decimal) -> int:
            return int(amount.scaleb(EXPONENT[lot.currency]))

        return {lot.purchase_id: (int(lot.used.scaleb(6)), minor(lot, lot.usage_value),
                                  int(lot.refunded.scaleb(6)), minor(lot, lot.refunded_value),
                                  minor(lot, lot.refunded_tax), minor(lot, lot.breakage))
                for lot in self.lots.values()}
