"""Row validation: from a frame of strings to typed rows, or a reason a person can act on.

Two passes over the whole frame, no loop per row. First the formats, declared in
`documents.DOCUMENT_COLUMNS` and checked by a pandera schema; then the meaning (credits
positive, amounts in whole minor units of their currency, expiry after purchase,
nothing dated after the business day, ...). Every failed check becomes a
`(row, column, reason)` triple; a row with any is rejected, and its reasons are joined
so the quarantine says everything that is wrong with it at once.

Decimal strings are parsed to scaled integers exactly (`parse_scaled_decimals`); no
value passes through a float. A row carries at most MAX_CREDITS_MICRO credits and
MAX_AMOUNT_MINOR minor units: bounds that keep every sum of a realistic day inside int64
(the sums that could still pass it are checked: `exact_sum`).

Ids are checked to the byte (`identifier_problems`): printable, no leading or trailing
whitespace, no control or format character, Unicode NFC, at most 200 characters. They
are compared exactly, so `E-1` and `E-1 ` would be two events; such an id is refused
instead.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow as pa_arrow
import pyarrow.compute as pc

from intake.documents import (
    DOCUMENT_COLUMNS,
    IDENTIFIER_MAX_CHARACTERS,
    ROW_NUMBER,
    InputFileError,
)
from ledger.domain import AdjustmentAction, LotKind
from ledger.money import (
    CREDIT_DECIMAL_PLACES,
    MICRO_CREDITS_PER_CREDIT,
    is_known_currency,
    minor_unit_exponent,
)
from ledger.periods import BusinessDay, LateWindow

AMOUNT_SCALE_PLACES = 4  # the largest ISO 4217 minor unit exponent (CLF, UYW)
# A scaled value below 10**18 is exact in int64 (whose largest is about 9.22 * 10**18).
_SCALED_DIGITS = 18
# The most one row may carry. 10**15 micro-credits: the int64 sums of a day (per customer,
# per meter, per file) pass their limit only past 9,223 rows at the bound, and those sums
# are checked. 10**13 minor units (100 billion USD): amounts are summed in Python integers.
MAX_CREDITS = 1_000_000_000
MAX_CREDITS_MICRO = MAX_CREDITS * MICRO_CREDITS_PER_CREDIT
MAX_AMOUNT_MINOR = 10**13
INT64_MAX = int(np.iinfo(np.int64).max)
_DECIMAL_PARTS = r"^(?P<whole>[0-9]+)(?:\.(?P<fraction>[0-9]+))?$"


@dataclass(frozen=True)
class ValidatedRows:
    """Typed rows that passed every check, and the rejected ones with their reasons."""

    accepted: pd.DataFrame
    rejected: pd.DataFrame  # columns: ROW_NUMBER, column_name, reason


class _Problems:
    """Collects (row index, column, reason) for a frame being validated."""

    def __init__(self, index: pd.Index) -> None:
        self.index = index
        self.parts: list[pd.DataFrame] = []

    def add(self, mask: pd.Series, column: str, reason: str | pd.Series) -> None:
        mask = mask.fillna(False).astype(bool)
        if not mask.any():
            return
        reasons = reason[mask] if isinstance(reason, pd.Series) else reason
        self.parts.append(
            pd.DataFrame({"index": self.index[mask.to_numpy()], "column_name": column,
                          "reason": reasons})
        )

    def add_reasons(self, reasons: pd.Series, column: str) -> None:
        """Reasons indexed by the failing rows alone."""
        if len(reasons):
            self.parts.append(pd.DataFrame({"index": reasons.index, "column_name": column,
                                            "reason": reasons.to_numpy()}))

    def add_pandera_failures(self, failure_cases: pd.DataFrame) -> None:
        rows = failure_cases.dropna(subset=["index"])
        if len(rows):
            self.parts.append(
                pd.DataFrame({"index": rows["index"].astype("int64").to_numpy(),
                              "column_name": rows["column"].astype(str).to_numpy(),
                              "reason": rows["check"].astype(str).to_numpy()})
            )

    def failing_index(self) -> pd.Index:
        if not self.parts:
            return pd.Index([], dtype="int64")
        return pd.Index(pd.concat(self.parts)["index"].unique())

    def rejected(self, frame: pd.DataFrame) -> pd.DataFrame:
        if not self.parts:
            return pd.DataFrame({ROW_NUMBER: pd.Series(dtype="int64"),
                                 "column_name": pd.Series(dtype=str),
                                 "reason": pd.Series(dtype=str)})
        problems = pd.concat(self.parts, ignore_index=True).drop_duplicates(["index", "column_name"])
        problems["text"] = problems["column_name"] + ": " + problems["reason"].astype(str)
        grouped = problems.groupby("index", sort=True).agg(
            column_name=("column_name", "first"), reason=("text", "; ".join)
        )
        grouped[ROW_NUMBER] = frame.loc[grouped.index, ROW_NUMBER].to_numpy()
        return grouped.reset_index(drop=True)[[ROW_NUMBER, "column_name", "reason"]]


def first_problems(index: pd.Index,
                   checks: list[tuple[pd.Series, str, str]]) -> tuple[pd.Series, pd.DataFrame]:
    """Checks in order; each row is refused by the first that it fails, with that reason.

    Returns the refused mask and the problems (index, column_name, reason).
    """
    refused = pd.Series(False, index=index)
    parts = []
    for mask, column, reason in checks:
        mask = mask.fillna(False).astype(bool) & ~refused
        refused |= mask
        parts.append(pd.DataFrame({"index": index[mask.to_numpy()], "column_name": column,
                                   "reason": reason}))
    return refused, pd.concat(parts, ignore_index=True)


def _whole_value_matches(pattern: str, message: str) -> pa.Check:
    """The pattern must match the whole value: `fullmatch`, never `^...$` (in Python's
    regular expressions `$` also matches before a final newline, so "USD\n" passed)."""
    return pa.Check(lambda text: text.str.fullmatch(pattern), error=message)


def format_schema(document: str) -> pa.DataFrameSchema:
    columns = {
        spec.name: pa.Column(
            str,
            [] if spec.identifier else _whole_value_matches(spec.pattern, spec.message),
            nullable=False,
            required=True,
        )
        for spec in DOCUMENT_COLUMNS[document]
    }
    return pa.DataFrameSchema(columns, coerce=False, strict=False)


def check_formats(document: str, frame: pd.DataFrame, problems: _Problems) -> None:
    """Every column's format, and the identifier rule for ids (`identifier_problems`)."""
    try:
        format_schema(document).validate(frame, lazy=True)
    except pa.errors.SchemaErrors as errors:
        problems.add_pandera_failures(errors.failure_cases)
    for spec in DOCUMENT_COLUMNS[document]:
        if spec.identifier:
            problems.add_reasons(identifier_problems(frame[spec.name], spec.required),
                                 spec.name)


def identifier_problems(text: pd.Series, required: bool) -> pd.Series:
    """The ids that break the identifier rule, each with the first rule it breaks.

    The rule, in the order reasons are given: present if required; at most
    IDENTIFIER_MAX_CHARACTERS characters; no control (Cc) or format (Cf) character; no
    whitespace at either end; every character printable; Unicode NFC. A cheap pass over
    the whole column in Arrow finds the ids that could break it (not plain printable
    ASCII, a space at an end, too many bytes); only those are looked at again, and only
    the distinct non-ASCII ones by Python (printable and NFC have no Arrow kernel).
    Returns reasons indexed by the failing rows (none for a clean column).
    """
    strings = _arrow_strings(text)
    size_bytes = pc.binary_length(strings).to_numpy(zero_copy_only=False)
    plain = (pc.ascii_is_printable(strings).to_numpy(zero_copy_only=False)
             & ~pc.starts_with(strings, " ").to_numpy(zero_copy_only=False)
             & ~pc.ends_with(strings, " ").to_numpy(zero_copy_only=False))
    empty = (size_bytes == 0) & required
    suspects = np.flatnonzero((~plain | (size_bytes > IDENTIFIER_MAX_CHARACTERS)) & ~empty)
    reasons = pd.Series(_identifier_reasons(strings.take(suspects)), index=text.index[suspects],
                        dtype=object)
    missing = pd.Series("is required", index=text.index[np.flatnonzero(empty)], dtype=object)
    return pd.concat([missing, reasons[reasons != ""]]).sort_index()


def _identifier_reasons(strings: pa_arrow.Array) -> np.ndarray:
    """The reasons for the suspect ids of `identifier_problems` ('' for those that are
    fine): judged once per distinct value, then given to every row that holds it."""
    encoded = pc.dictionary_encode(strings)
    reason_of = np.array([_identifier_reason(value) for value in encoded.dictionary.to_pylist()]
                         + [""], dtype=object)
    return reason_of[encoded.indices.to_numpy(zero_copy_only=False)]


def _identifier_reason(value: str) -> str:
    """The first rule of the identifier rule (`identifier_problems`) that `value` breaks."""
    if len(value) > IDENTIFIER_MAX_CHARACTERS:
        return f"is longer than {IDENTIFIER_MAX_CHARACTERS} characters"
    for category, what in (("Cc", "a control character"), ("Cf", "a format character")):
        found = next((character for character in value
                      if unicodedata.category(character) == category), None)
        if found is not None:
            return f"contains {what} (U+{ord(found):04X})"
    if value[:1].isspace() or value[-1:].isspace():
        return "has leading or trailing whitespace"
    found = next((character for character in value if not character.isprintable()), None)
    if found is not None:
        return f"contains a character that is not printable (U+{ord(found):04X})"
    if not unicodedata.is_normalized("NFC", value):
        return "is not in Unicode NFC form"
    return ""


def _arrow_strings(text: pd.Series) -> pa_arrow.Array:
    """A column of text as one Arrow string array (pandas' strings are Arrow already)."""
    strings = pa_arrow.array(text.astype(str))
    if isinstance(strings, pa_arrow.ChunkedArray):
        strings = strings.combine_chunks()
    return strings


def parse_scaled_decimals(text: pd.Series, places: int,
                          too_large_reason: str = "is too large",
                          ) -> tuple[pd.Series, pd.Series]:
    """Non-negative decimal strings -> int64 of value * 10**places, and a reason per row.

    The reason is '' where parsing succeeded; otherwise the value is 0. Values with
    more significant decimal places than `places`, or too many digits for int64 (more
    than 18 - places whole digits: `too_large_reason`), are refused rather than
    rounded or wrapped. Runs in Arrow's string kernels: no Python call per value.
    """
    # From pandas' Arrow-backed strings without a copy of the characters.
    strings = pa_arrow.array(text.astype(str)).cast(pa_arrow.string())
    parts = pc.extract_regex(strings, _DECIMAL_PARTS)
    matched = parts.is_valid().to_numpy(zero_copy_only=False)
    whole = pc.utf8_ltrim(pc.fill_null(pc.struct_field(parts, "whole"), "0"), "0")
    fraction = pc.utf8_rtrim(pc.fill_null(pc.struct_field(parts, "fraction"), ""), "0")
    too_precise = matched & (pc.utf8_length(fraction).to_numpy(zero_copy_only=False) > places)
    too_large = matched & (pc.utf8_length(whole).to_numpy(zero_copy_only=False)
                           > _SCALED_DIGITS - places)
    good = matched & ~too_precise & ~too_large
    # A small code per row, then one lookup: fixed-width text arrays of a million rows
    # would cost more than the parsing.
    reason_code = np.select([~matched, too_precise, too_large], [1, 2, 3], default=0)
    reasons = np.array(["", "is not a decimal number", f"has more than {places} decimal places",
                        too_large_reason], dtype=object)[reason_code]
    usable = pa_arrow.array(good)
    whole_digits = pc.if_else(usable, pc.binary_join_element_wise(whole, "0", ""), "0")
    fraction_digits = pc.if_else(usable, pc.utf8_rpad(fraction, places, "0"), "0")
    # "<whole>0" / 10 keeps an all-zero whole part castable; both parts are exact int64.
    values = (pc.cast(whole_digits, pa_arrow.int64()).to_numpy() // 10 * (10**places)
              + (pc.cast(fraction_digits, pa_arrow.int64()).to_numpy() if places else 0))
    return (pd.Series(values, index=text.index, dtype="int64"),
            pd.Series(reasons, index=text.index, dtype=object))


_UTC_OFFSET = r".*[T ].*(?:Z|[+-][0-9]{2}(?::?[0-9]{2})?)"


def parse_instants(text: pd.Series) -> pd.Series:
    """ISO 8601 strings -> UTC instants (NaT where empty or unparseable)."""
    return pd.to_datetime(text.astype(str), utc=True, format="ISO8601", errors="coerce")


def _apply_defaults(document: str, frame: pd.DataFrame) -> pd.DataFrame:
    filled = frame.copy()
    for spec in DOCUMENT_COLUMNS[document]:
        if spec.default:
            filled[spec.name] = filled[spec.name].mask(filled[spec.name] == "", spec.default)
    return filled


def _currency_exponents(rows: pd.DataFrame, problems: _Problems) -> pd.Series:
    """Each row's minor unit exponent; unknown currencies are problems (and parse as USD)."""
    known = rows["currency"].map(is_known_currency).astype(bool)
    problems.add(~known & rows["currency"].str.fullmatch("[A-Z]{3}"), "currency",
                 "is not an ISO 4217 currency with a minor unit")
    return rows["currency"].where(known, "USD").map(minor_unit_exponent).astype("int64")


def _instant_column(frame, column, problems, required=True) -> pd.Series:
    instants = parse_instants(frame[column])
    present = frame[column] != ""
    problems.add(present & instants.isna(), column, "is not a valid ISO 8601 timestamp")
    # A time without an offset means a different instant in every timezone: refuse it.
    problems.add(present & instants.notna() & ~frame[column].str.fullmatch(_UTC_OFFSET), column,
                 "has no UTC offset; write the time with Z or +hh:mm")
    if required:
        problems.add(~present, column, "is required")
    return instants


def _not_after(problems: _Problems, instants: pd.Series, column: str, day: BusinessDay) -> None:
    problems.add(instants >= day.ends_at_utc, column, f"is after business date {day.business_date}")


def _date_column(frame, column, problems, day: BusinessDay) -> pd.Series:
    """YYYY-MM-DD dates (NaT where empty or invalid); none after the business date."""
    dates = pd.to_datetime(frame[column], format="%Y-%m-%d", errors="coerce")
    problems.add((frame[column] != "") & dates.isna(), column, "is not a valid date")
    problems.add(dates.dt.date > day.business_date, column,
                 f"is after business date {day.business_date}")
    return dates


_CREDITS_PAST_BOUND = f"is more than {MAX_CREDITS:,} credits, the most one row may carry"


def _credits_column(frame, problems, column="credits") -> pd.Series:
    credits, reasons = parse_scaled_decimals(frame[column], CREDIT_DECIMAL_PLACES,
                                             too_large_reason=_CREDITS_PAST_BOUND)
    problems.add(reasons != "", column, reasons)
    problems.add((reasons == "") & (credits <= 0), column, "must be greater than zero")
    problems.add((reasons == "") & (credits > MAX_CREDITS_MICRO), column, _CREDITS_PAST_BOUND)
    return credits


def _amount_column(frame, column, currency_exponent, problems) -> pd.Series:
    """Amounts in minor units of each row's currency; refuses fractions of a minor unit,
    and more than MAX_AMOUNT_MINOR (too many digits to parse is past it too)."""
    scaled, reasons = parse_scaled_decimals(frame[column], AMOUNT_SCALE_PLACES,
                                            too_large_reason="past the bound")
    too_large = reasons == "past the bound"
    problems.add((reasons != "") & ~too_large, column, reasons)
    divisor = (10 ** (AMOUNT_SCALE_PLACES - currency_exponent)).astype("int64")
    fractional = (reasons == "") & (scaled % divisor != 0)
    problems.add(
        fractional, column,
        "has more decimal places than its currency allows (" + currency_exponent.astype(str) + ")",
    )
    amount = scaled // divisor
    past_bound = too_large | ((reasons == "") & (amount > MAX_AMOUNT_MINOR))
    if past_bound.any():
        currencies = frame["currency"]
        problems.add(past_bound, column, currencies.map({
            currency: _amount_past_bound(currency) for currency in pd.unique(currencies)}))
    return amount


def _amount_past_bound(currency: str) -> str:
    """The reason for an amount past MAX_AMOUNT_MINOR, in the row's currency if it is one."""
    if not is_known_currency(currency):  # never echo a malformed code into a reason
        return "is more than 10^13 minor units of its currency, the most one row may carry"
    exponent = minor_unit_exponent(currency)
    largest = f"{Decimal(MAX_AMOUNT_MINOR).scaleb(-exponent):,.{exponent}f}"
    return f"is more than {largest} {currency} (10^13 minor units), the most one row may carry"


def exact_sum(values) -> int:
    """The exact sum of int64 values, as a Python integer, at numpy's speed.

    numpy's sum wraps past int64 without a word. Each value is split into its high and
    low 32 bits; neither part's sum can wrap for fewer than 2**31 values.
    """
    values = np.asarray(values, dtype=np.int64)
    return (int((values >> 32).sum()) << 32) + int((values & 0xFFFFFFFF).sum())


def exact_sums_by(values: pd.Series, keys: pd.Series) -> pd.Series:
    """`exact_sum` per key: Python integers (object dtype), indexed by key in key order."""
    numbers = values.to_numpy(dtype=np.int64)
    parts = pd.DataFrame({"key": keys.to_numpy(), "high": numbers >> 32,
                          "low": numbers & 0xFFFFFFFF})
    sums = parts.groupby("key", sort=True)[["high", "low"]].sum()
    return sums["high"].astype(object) * (1 << 32) + sums["low"].astype(object)


def require_summable_credits(file_name: str, customer_ids: pd.Series,
                             credits_micro: pd.Series) -> None:
    """Refuse, naming the file and the customer, accepted credits whose sum passes int64.

    The day's totals (per customer and meter, per file) and the burn's running sums are
    int64; within this limit none of them can wrap. Past it (over 9,223 rows at the bound
    of one row) the night stops with this one line, never a silently wrapped total.
    """
    total = exact_sum(credits_micro)
    if total <= INT64_MAX:
        return
    by_customer = exact_sums_by(credits_micro, customer_ids)
    customer = by_customer.idxmax()
    raise InputFileError(
        f"{file_name}: the accepted credits add up to {_credits_text(total)}, more than the "
        f"{_credits_text(INT64_MAX)} a day's totals can hold; customer {customer} accounts for "
        f"{_credits_text(by_customer[customer])} (a row may carry at most "
        f"{MAX_CREDITS:,} credits)")


def _credits_text(credits_micro: int) -> str:
    return f"{Decimal(credits_micro).scaleb(-CREDIT_DECIMAL_PLACES).normalize():,f} credits"


def validate_purchases(frame: pd.DataFrame, day: BusinessDay) -> ValidatedRows:
    problems = _Problems(frame.index)
    check_formats("purchases", frame, problems)
    rows = _apply_defaults("purchases", frame)
    exponent = _currency_exponents(rows, problems)
    purchased_at = _instant_column(rows, "purchased_at", problems)
    expires_at = _instant_column(rows, "expires_at", problems, required=False)
    credits = _credits_column(rows, problems)
    amount = _amount_column(rows, "amount", exponent, problems)
    tax = _amount_column(rows, "tax_amount", exponent, problems)
    promotional = rows["kind"] == LotKind.PROMOTIONAL
    problems.add(promotional & ((amount != 0) | (tax != 0)), "amount",
                 "promotional credits must have amount 0 and no tax")
    problems.add(expires_at.notna() & purchased_at.notna() & (expires_at <= purchased_at),
                 "expires_at", "must be after purchased_at")
    _not_after(problems, purchased_at, "purchased_at", day)
    typed = pd.DataFrame({
        ROW_NUMBER: rows[ROW_NUMBER],
        "purchase_id": rows["purchase_id"].astype(object),
        "customer_id": rows["customer_id"].astype(object),
        "purchased_at": purchased_at,
        "expires_at": expires_at,
        "credits_micro": credits,
        "amount_minor": amount,
        "tax_minor": tax,
        "currency": rows["currency"].astype(object),
        "kind": rows["kind"].astype(object),
        "product": rows["product"].astype(object),
        "priority": pd.to_numeric(rows["priority"], errors="coerce").fillna(0).astype("int64"),
        "country": rows["country"].astype(object),
    })
    return _split(typed, problems, rows)


def validate_usage(frame: pd.DataFrame, day: BusinessDay, window: LateWindow) -> ValidatedRows:
    problems = _Problems(frame.index)
    check_formats("usage", frame, problems)
    rows = _apply_defaults("usage", frame)
    occurred_at = _instant_column(rows, "occurred_at", problems)
    credits = _credits_column(rows, problems)
    quantity, quantity_reasons = parse_scaled_decimals(rows["quantity"], CREDIT_DECIMAL_PLACES)
    problems.add(quantity_reasons != "", "quantity", quantity_reasons)
    _not_after(problems, occurred_at, "occurred_at", day)
    problems.add(occurred_at < window.starts_at_utc, "occurred_at",
                 f"is more than {window.days} days before business date {day.business_date}")
    forgotten = (occurred_at >= window.starts_at_utc) & (occurred_at < window.accepts_from_utc)
    problems.add(forgotten, "occurred_at",
                 f"is before {window.accepts_from_utc.isoformat()}, the oldest instant whose "
                 "event ids the ledger still holds (a shorter late window on an earlier night "
                 "let it forget them): it cannot be told apart from a re-sent event")
    typed = pd.DataFrame({
        ROW_NUMBER: rows[ROW_NUMBER],
        "event_id": rows["event_id"].astype(object),
        "customer_id": rows["customer_id"].astype(object),
        "occurred_at": occurred_at,
        "meter": rows["meter"].astype(object),
        "credits_micro": credits,
        "quantity_micro": quantity,
    })
    return _split(typed, problems, rows)


def validate_costs(frame: pd.DataFrame, day: BusinessDay) -> ValidatedRows:
    """Costs of serving: a dated amount per meter (or * for all), variable or fixed."""
    problems = _Problems(frame.index)
    check_formats("costs", frame, problems)
    rows = _apply_defaults("costs", frame)
    exponent = _currency_exponents(rows, problems)
    amount = _amount_column(rows, "amount", exponent, problems)
    cost_date = _date_column(rows, "date", problems, day)
    typed = pd.DataFrame({
        ROW_NUMBER: rows[ROW_NUMBER],
        "cost_id": rows["cost_id"].astype(object),
        "cost_date": cost_date.dt.date.astype(object),
        "meter": rows["meter"].astype(object),
        "amount_minor": amount,
        "currency": rows["currency"].astype(object),
        "cost_type": rows["cost_type"].astype(object),
        "vendor": rows["vendor"].astype(object),
        "memo": rows["memo"].astype(object),
    })
    return _split(typed, problems, rows)


def validate_refunds(frame: pd.DataFrame, day: BusinessDay) -> ValidatedRows:
    """Refund rows as written; whether the books allow them is `rules.refunds`' question.

    The amount is optional and kept scaled to AMOUNT_SCALE_PLACES (-1 when not given):
    its currency is the lot's, known only once the lot is found.
    """
    problems = _Problems(frame.index)
    check_formats("refunds", frame, problems)
    rows = _apply_defaults("refunds", frame)
    refunded_at = _instant_column(rows, "refunded_at", problems)
    credits = _credits_column(rows, problems)
    amount, reasons = parse_scaled_decimals(rows["amount"], AMOUNT_SCALE_PLACES)
    given = rows["amount"] != ""
    problems.add(given & (reasons != ""), "amount", reasons)
    _not_after(problems, refunded_at, "refunded_at", day)
    typed = pd.DataFrame({
        ROW_NUMBER: rows[ROW_NUMBER],
        "refund_id": rows["refund_id"].astype(object),
        "purchase_id": rows["purchase_id"].astype(object),
        "refunded_at": refunded_at,
        "credits_micro": credits,
        "amount_scaled": amount.where(given, -1),
    })
    return _split(typed, problems, rows)


RATE_DECIMAL_PLACES = 10


def validate_fx_rates(frame: pd.DataFrame, day: BusinessDay, functional: str) -> ValidatedRows:
    """Exchange rates to the functional currency, one per currency and date."""
    problems = _Problems(frame.index)
    check_formats("fx_rates", frame, problems)
    rows = _apply_defaults("fx_rates", frame)
    _currency_exponents(rows, problems)
    problems.add(rows["currency"] == functional, "currency",
                 f"is the functional currency {functional}; it needs no rate")
    rate, reasons = parse_scaled_decimals(rows["rate_to_functional"], RATE_DECIMAL_PLACES)
    problems.add(reasons != "", "rate_to_functional", reasons)
    problems.add((reasons == "") & (rate <= 0), "rate_to_functional", "must be greater than zero")
    rate_date = _date_column(rows, "date", problems, day)
    typed = pd.DataFrame({
        ROW_NUMBER: rows[ROW_NUMBER],
        "rate_id": rows["date"] + "/" + rows["currency"],
        "rate_date": rate_date.dt.date.astype(object),
        "currency": rows["currency"].astype(object),
        # Exact, normalised text: 1.0850 and 1.085 are one rate.
        "rate_to_functional": [format(Decimal(value).normalize(), "f") if ok == "" else ""
                               for value, ok in zip(rows["rate_to_functional"], reasons,
                                                    strict=True)],
    })
    return _split(typed, problems, rows)


def validate_adjustments(frame: pd.DataFrame, day: BusinessDay) -> ValidatedRows:
    """Adjustment rows as written; whether the lot allows them is `rules.adjustments`' question."""
    problems = _Problems(frame.index)
    check_formats("adjustments", frame, problems)
    rows = _apply_defaults("adjustments", frame)
    adjusted_at = _instant_column(rows, "adjusted_at", problems)
    new_expires_at = _instant_column(rows, "new_expires_at", problems, required=False)
    rollover = rows["action"] == AdjustmentAction.ROLLOVER
    problems.add(rollover & (rows["new_expires_at"] == ""), "new_expires_at",
                 "is required for a rollover")
    problems.add(~rollover & (rows["new_expires_at"] != ""), "new_expires_at",
                 "is only for a rollover")
    problems.add(new_expires_at.notna() & (new_expires_at <= adjusted_at), "new_expires_at",
                 "must be after adjusted_at")
    _not_after(problems, adjusted_at, "adjusted_at", day)
    typed = pd.DataFrame({
        ROW_NUMBER: rows[ROW_NUMBER],
        "adjustment_id": rows["adjustment_id"].astype(object),
        "purchase_id": rows["purchase_id"].astype(object),
        "adjusted_at": adjusted_at,
        "action": rows["action"].astype(object),
        "new_expires_at": new_expires_at,
        "reason": rows["reason"].astype(object),
    })
    return _split(typed, problems, rows)


def _split(typed: pd.DataFrame, problems: _Problems, rows: pd.DataFrame) -> ValidatedRows:
    failing = problems.failing_index()
    accepted = typed.loc[~typed.index.isin(failing)].reset_index(drop=True)
    return ValidatedRows(accepted=accepted, rejected=problems.rejected(rows))


def payload_fingerprints(frame: pd.DataFrame, columns: list[str]) -> pd.Series:
    """A 64-bit fingerprint (int64) of each row's normalised content.

    Normalised means parsed: '1.0' and '1.00' credits, or the same instant written with
    different offsets, are the same payload. Missing instants hash as one sentinel value.
    """
    normalised = frame[columns].copy()
    for column in columns:
        if isinstance(normalised[column].dtype, pd.DatetimeTZDtype):
            naive = normalised[column].dt.tz_convert("UTC").dt.tz_localize(None)
            normalised[column] = naive.to_numpy("datetime64[us]").view("int64")
    hashes = pd.util.hash_pandas_object(normalised, index=False).to_numpy(dtype=np.uint64)
    return pd.Series(hashes.view(np.int64), index=frame.index)


def fingerprint_to_hex(fingerprint: int) -> str:
    return f"{int(fingerprint) & 0xFFFFFFFFFFFFFFFF:016x}"


def fingerprint_from_hex(text: str) -> int:
    value = int(text, 16)
    return value - (1 << 64) if value >= (1 << 63) else value
