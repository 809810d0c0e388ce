"""A small, obviously correct model of the books, for differential testing.

Event by event, in Decimal, with no pandas and nothing shared with the engine but the
written rules (ACCOUNTING.md and the policy's burn order):
- a paid purchase: Dr cash clearing amount + tax, Cr deferred amount, Cr tax;
- each night, the day's new usage events (duplicates dropped, ids seen before with other
  contents refused) burn in time order; a late event burns at the start of the day; each
  event takes credits from the customer's lots active at that instant, in burn order;
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
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction

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


class ReferenceBooks:
    def __init__(self, burn_order: tuple[str, ...], late_window_days: int) -> None:
        self.burn_order = burn_order
        self.late_window_days = late_window_days
        self.lots: dict[str, ModelLot] = {}
        self.seen_events: dict[str, ModelEvent] = {}
        self.balances: dict[tuple[str, str], Decimal] = {}
        self.uncovered = Decimal(0)

    def _post(self, currency: str, *lines: tuple[str, Decimal]) -> None:
        for account, amount in lines:
            key = (ACCOUNTS[account], currency)
            self.balances[key] = self.balances.get(key, Decimal(0)) + amount

    def night(self, day_start: datetime, purchases: list[ModelLot],
              events: list[ModelEvent], refunds: list[ModelRefund] = ()) -> int:
        """Post one night; returns how many refunds were accepted."""
        day_end = day_start + timedelta(days=1)
        for lot in purchases:
            self.lots[lot.purchase_id] = lot
            if lot.amount or lot.tax:
                self._post(lot.currency, ("cash", lot.amount + lot.tax), ("deferred", -lot.amount),
                           ("tax", -lot.tax))
        accepted = 0
        for refund in sorted(refunds, key=lambda r: (r.purchase_id, r.refunded_at, r.refund_id)):
            accepted += self._refund(refund)
        fresh = []
        for event in events:
            earlier = self.seen_events.get(event.event_id)
            if earlier is None:
                self.seen_events[event.event_id] = event
                fresh.append(event)
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
        return accepted

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
