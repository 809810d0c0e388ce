"""The rate card (`[rate_card]` in the policy, issue 23): what one unit of each meter costs
in credits, so a metering system that reports raw quantities (tokens, GB, requests) posts
credits computed exactly.

A card has a version (the policy's text, recorded on every burn slice the card rated) and,
per meter, a rate in credits per unit with optional graduated tiers: the units above each
tier's threshold are charged at that tier's rate, the units below the first threshold at
the meter's own rate. Rates are decimal strings (never binary floats).

Tiers apply to each EVENT's quantity. The accounting guide says nothing of tiers, and the
usage contract is per event: an event's credits must be known when it is accepted, be the
same whichever night or shard reads it, and not change when a late or re-sent event arrives.
Tiers over a billing period's total (as Orb or Lago bill) depend on every other event of
the period; such usage is rated by the billing system and landed as credits.

Exactness: a quantity is read as integer micro-units (6 decimal places, as the contract's
quantity column), a rate has at most 12 decimal places, so units_micro x rate is
credits_micro with at most 12 decimal places, computed exactly in Arrow's 256-bit decimals
over the whole batch (one pass per meter and tier of the card, never per event). The sum
is rounded once per event, half to even, to the micro-credit: credits are stored as
integer micro-credits, so something must round, and half to even does not drift one way
over many events (half up would bill every exact half in the customer's disfavour, and a
day of millions of small events has many), and it is the rounding the guide uses for
recognised value. Rounding per event, not per tier, keeps one rounding per amount stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from intake.validation import MAX_CREDITS, MAX_CREDITS_MICRO, parse_scaled_decimals
from ledger.money import CREDIT_DECIMAL_PLACES

QUANTITY_DECIMAL_PLACES = 6  # as the contract's quantity column (micro-units)
RATE_DECIMAL_PLACES_MAX = 12
RATE_WHOLE_DIGITS_MAX = 9  # credits per unit below 1,000,000,000
VERSION_CHARACTERS_MAX = 64  # the burn slice's column
_UNITS = pa.decimal256(19, 0)  # any int64 count of micro-units
_RATE = pa.decimal256(RATE_WHOLE_DIGITS_MAX + RATE_DECIMAL_PLACES_MAX, RATE_DECIMAL_PLACES_MAX)
_SUM = pa.decimal256(60, RATE_DECIMAL_PLACES_MAX)  # room for the sum of every tier's part


@dataclass(frozen=True)
class Tier:
    """Units above `above_units` (of one event) cost `credits_per_unit` each."""

    above_units: Decimal
    credits_per_unit: Decimal


@dataclass(frozen=True)
class MeterRate:
    """One meter's price: `credits_per_unit` up to the first tier, then each tier's rate."""

    credits_per_unit: Decimal
    tiers: tuple[Tier, ...] = ()

    def bands_micro(self) -> list[tuple[int, int | None, Decimal]]:
        """(first micro-unit, end micro-unit or None for no end, credits per unit) per band."""
        starts = [0, *(int(tier.above_units.scaleb(QUANTITY_DECIMAL_PLACES))
                       for tier in self.tiers)]
        rates = [self.credits_per_unit, *(tier.credits_per_unit for tier in self.tiers)]
        ends = [*starts[1:], None]
        return list(zip(starts, ends, rates, strict=True))


@dataclass(frozen=True)
class RateCard:
    version: str
    meters: Mapping[str, MeterRate]

    def rate(self, meters: pd.Series, quantities: pd.Series) -> pd.DataFrame:
        """Each event's credits from its meter and quantity (text, as the source wrote it).

        Returns, on the events' index: `credits_micro` (int64; 0 where the event cannot be
        rated), `problem_role` ("quantity", "meter" or "") and `problem` (the reason, or "").
        An event without a meter gets 0 credits and no problem of its own: the contract's
        check that a meter is required names it.
        """
        units_micro, unreadable = parse_scaled_decimals(
            quantities, QUANTITY_DECIMAL_PLACES,
            too_large_reason="is more units than the books can hold")
        negative = quantities.astype(str).str.fullmatch(r"-[0-9]+(?:\.[0-9]+)?")
        unreadable = unreadable.mask(negative, "must be positive: a number of units")
        unreadable = unreadable.where(quantities != "", "is required: the rate card prices it")
        credits_micro = pd.Series(0, index=meters.index, dtype="int64")
        too_large = pd.Series(False, index=meters.index)
        readable = (unreadable == "").to_numpy()
        for meter, meter_rate in self.meters.items():
            positions = np.flatnonzero((meters == meter).to_numpy() & readable)
            if len(positions):
                credits, over = _credits_micro(meter_rate, units_micro.to_numpy()[positions])
                credits_micro.iloc[positions] = credits
                too_large.iloc[positions] = over
        unknown = (meters != "") & ~meters.isin(list(self.meters))
        checks = [  # in order: an event is named by the first it fails
            (unreadable != "", "quantity", unreadable),
            (unknown, "meter", f"is not a meter of rate card {self.version} (add it under "
                               "[rate_card.meters] or correct the event)"),
            (too_large, "quantity", f"rates to more than {MAX_CREDITS:,} credits, the most "
                                    "one event may carry"),
            ((meters != "") & (credits_micro == 0), "quantity",
             f"rates to 0 credits at rate card {self.version} (rounded half to even to "
             f"{CREDIT_DECIMAL_PLACES} decimal places); usage must carry credits"),
        ]
        role = pd.Series("", index=meters.index, dtype=object)
        problem = pd.Series("", index=meters.index, dtype=object)
        for failing, role_name, reason in checks:
            first = failing.to_numpy() & (role == "").to_numpy()
            role[first] = role_name
            problem[first] = reason[first] if isinstance(reason, pd.Series) else reason
        credits_micro = credits_micro.where(role == "", 0)
        return pd.DataFrame({"credits_micro": credits_micro, "problem_role": role,
                             "problem": problem})


def _credits_micro(meter_rate: MeterRate, units_micro: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Credits of each quantity (micro-units), rounded half to even to the micro-credit, and
    which ones are past the most a row may carry (their credits are returned as 0)."""
    total = pa.array(np.zeros(len(units_micro), dtype=np.int64)).cast(_SUM)
    for start, end, per_unit in meter_rate.bands_micro():
        in_band = np.maximum(units_micro - start, 0)
        if end is not None:
            in_band = np.minimum(in_band, end - start)
        # micro-units x credits per unit = micro-credits, exact to the rate's 12 places.
        part = pc.multiply(pa.array(in_band).cast(_UNITS), pa.scalar(per_unit, _RATE))
        total = pc.add(total, part).cast(_SUM)
    rounded = pc.round(total, ndigits=0, round_mode="half_to_even")
    over = pc.greater(rounded, pa.scalar(Decimal(MAX_CREDITS_MICRO), _SUM))
    credits = pc.if_else(over, pa.scalar(Decimal(0), _SUM), rounded).cast(pa.int64())
    return credits.to_numpy(), over.to_numpy(zero_copy_only=False)
