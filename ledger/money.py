"""Exact money and credit quantities: integer minor units, decimal strings at the edges.

Every amount inside creditbooks is an integer count of a currency's minor unit
(cents for USD, yen for JPY, fils for KWD) and every credit quantity is an integer
count of micro-credits (credits carry at most six decimal places). Decimal strings
exist only where humans and files meet the books: parsing input and formatting output.

Every division states its rounding: `divide_round_half_even` is the one rounding rule
of recognition, and `allocate_largest_remainder` splits a whole into parts that sum
back to it exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from functools import cache

import numpy as np
from iso4217 import Currency

CREDIT_DECIMAL_PLACES = 6
MICRO_CREDITS_PER_CREDIT = 10**CREDIT_DECIMAL_PLACES


class UnknownCurrencyError(ValueError):
    """The code is not an ISO 4217 currency with a minor unit."""


@cache  # every amount a report formats asks; the ISO 4217 table does not change
def minor_unit_exponent(currency: str) -> int:
    """Decimal places of the currency's minor unit per ISO 4217 (USD 2, JPY 0, KWD 3)."""
    try:
        exponent = Currency(currency).exponent
    except ValueError:
        raise UnknownCurrencyError(f"unknown currency {currency!r} (not ISO 4217)") from None
    if exponent is None:
        raise UnknownCurrencyError(f"currency {currency!r} has no minor unit (ISO 4217)")
    return exponent


def is_known_currency(currency: str) -> bool:
    try:
        minor_unit_exponent(currency)
    except UnknownCurrencyError:
        return False
    return True


def decimal_to_scaled_integer(value: Decimal, decimal_places: int) -> int:
    """The exact integer value * 10**decimal_places; refuses anything that would round."""
    scaled = value.scaleb(decimal_places)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{value} has more than {decimal_places} decimal places")
    return int(scaled)


def parse_amount_minor(text: str, currency: str) -> int:
    """'400.00' USD -> 40000. Refuses values that are not whole minor units."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{text!r} is not a decimal number") from None
    if not value.is_finite():
        raise ValueError(f"{text!r} is not a finite number")
    return decimal_to_scaled_integer(value, minor_unit_exponent(currency))


def format_minor(amount_minor: int, currency: str) -> str:
    """40000 USD -> '400.00'; -5 JPY -> '-5'. Exact, via Decimal."""
    exponent = minor_unit_exponent(currency)
    return f"{Decimal(amount_minor).scaleb(-exponent):.{exponent}f}"


def format_minor_column(amounts_minor: Sequence[int], currencies: Sequence[str]) -> list[str]:
    """`format_minor` over a whole column, as exact, a few times faster: integer division
    by the currency's scale, no Decimal."""
    texts = []
    for amount, currency in zip(amounts_minor, currencies, strict=True):
        exponent = minor_unit_exponent(currency)
        if exponent:
            whole, fraction = divmod(abs(int(amount)), 10 ** exponent)
            texts.append(f"{'-' if amount < 0 else ''}{whole}.{fraction:0{exponent}d}")
        else:
            texts.append(str(int(amount)))
    return texts


def format_micro_credits_column(credits_micro: Sequence[int]) -> list[str]:
    """`format_micro_credits` over a whole column, as exact: integer division, no Decimal."""
    texts = []
    for credits in credits_micro:
        whole, fraction = divmod(abs(int(credits)), 10 ** CREDIT_DECIMAL_PLACES)
        sign = "-" if credits < 0 else ""
        texts.append(f"{sign}{whole}.{fraction:0{CREDIT_DECIMAL_PLACES}d}".rstrip("0")
                     if fraction else f"{sign}{whole}")
    return texts


def format_micro_credits(credits_micro: int) -> str:
    """1500000 -> '1.5'; trailing zeros dropped, never exponent notation."""
    text = f"{Decimal(credits_micro).scaleb(-CREDIT_DECIMAL_PLACES):.{CREDIT_DECIMAL_PLACES}f}"
    text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def divide_round_half_even(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half to even, computed exactly on integers."""
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    quotient, remainder = divmod(numerator, denominator)
    twice_remainder = 2 * remainder
    if twice_remainder > denominator or (twice_remainder == denominator and quotient % 2 == 1):
        quotient += 1
    return quotient


def value_to_date_minor(amount_minor: int, credits_used_micro: int, credits_granted_micro: int) -> int:
    """Cumulative value of the credits used from a lot: amount x used / granted, half even.

    Posting the change in this figure, never a per-day rounded value, is what keeps every
    lot tying out to its amount (see ACCOUNTING.md, "Exact rounding").
    """
    if not 0 <= credits_used_micro <= credits_granted_micro:
        raise ValueError("credits used must lie between 0 and the credits granted")
    return divide_round_half_even(amount_minor * credits_used_micro, credits_granted_micro)


def allocate_largest_remainder(total: int, weights: Sequence[int]) -> list[int]:
    """Split `total` over `weights` in proportion; the parts sum exactly to `total`.

    Each part gets the floor of its exact share; the units left over go one each to the
    largest fractional remainders, ties to the earliest weight, so the result is
    deterministic for a given order of weights.
    """
    if any(weight < 0 for weight in weights):
        raise ValueError("weights must be non-negative")
    weight_sum = sum(weights)
    if weight_sum == 0:
        if total != 0:
            raise ValueError("cannot allocate a non-zero total over zero weights")
        return [0] * len(weights)
    sign = -1 if total < 0 else 1
    magnitude = abs(total)
    floors_and_remainders = [divmod(magnitude * weight, weight_sum) for weight in weights]
    parts = [floor for floor, _ in floors_and_remainders]
    leftover = magnitude - sum(parts)
    by_remainder = sorted(
        range(len(weights)), key=lambda index: (-floors_and_remainders[index][1], index)
    )
    for index in by_remainder[:leftover]:
        parts[index] += 1
    return [sign * part for part in parts]


def divide_round_half_even_array(numerators, denominators):
    """Element-wise `divide_round_half_even` on integer arrays, exact at any magnitude.

    Works on Python integers (object arrays) so products of large amounts and credit
    counts never overflow; returns int64, which every result fits.
    """
    numerators = np.asarray(numerators, dtype=object)
    denominators = np.asarray(denominators, dtype=object)
    if (denominators <= 0).any():
        raise ValueError("denominators must be positive")
    quotients = numerators // denominators
    twice_remainders = 2 * (numerators - quotients * denominators)
    odd = (quotients % 2 == 1).astype(bool)
    round_up = (twice_remainders > denominators).astype(bool) | (
        (twice_remainders == denominators).astype(bool) & odd
    )
    return (quotients + round_up.astype(int)).astype(np.int64)


def values_to_date_minor(amounts_minor, credits_used_micro, credits_granted_micro):
    """Element-wise `value_to_date_minor` for whole columns of lots."""
    used = np.asarray(credits_used_micro, dtype=object)
    granted = np.asarray(credits_granted_micro, dtype=object)
    if ((used < 0) | (used > granted)).any():
        raise ValueError("credits used must lie between 0 and the credits granted")
    return divide_round_half_even_array(np.asarray(amounts_minor, dtype=object) * used, granted)
