"""Usage from a metering system: its event export, mapped onto the usage file contract.

The policy names the source (`[sources.usage] format`) and may override where each field
is (`id`, `customer`, `time`, `meter`, `credits`, `quantity`, as dotted paths into the
event, and `time_format`). Each format is a preset of that mapping, written from the
vendor's published API reference (cited on each preset below and in the README, "Usage
from your metering system"). A mapped file is `usage.jsonl`, one event per line, and is
read into the SAME frame as a contract usage file (intake/documents.py), so validation,
duplicates by the source's own id, quarantine, the archive and the counts
(rows read = accepted + duplicates + rejected) are the contract's. What differs is only
how a row is named: a rejected event names the SOURCE field (`data.value`, `timestamp`)
and its line, and its quarantined `raw_row` is the original JSON line.

The mapped value is credits, or, with `rated = true`, a raw quantity that the policy's
`[rate_card]` turns into credits (rules/rate_card.py, reached through `QuantityRating`:
intake cannot import the rules). A rated event's credits are computed as it is read and
written into the contract's `credits` column as exact decimal text; its quantity stays in
the contract's `quantity` column. An event the card cannot rate (no quantity, a quantity
that is not a number, a meter the card does not list, 0 credits) is rejected naming the
source field (`data.value`, `type`), like every other problem of the event.

Evidence: the archive keeps the accepted rows as for any usage file (their `source_row`
is the event's line) and, beside them, the original file byte for byte
(`ARCHIVE/usage_source/business_date=D/<batch>-<ledger>-<sha256>.jsonl`, recorded with its
SHA-256 in `archive_partitions` like every partition), so every event's original payload
can be read back and checked.

Read whole and vectorised: the file is parsed in one `json.loads` (numbers kept as their
exact decimal text, never floats, `1e-05` written out as `0.00001`; a key twice, NaN or
Infinity refuse the file, as in the contract)
and flattened with `pandas.json_normalize`; fields and times are converted column-wise.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from intake.archive import PartitionWriter
from intake.classification import DocumentIntake
from intake.documents import (
    DOCUMENT_COLUMNS,
    ROW_NUMBER,
    SURROGATE_ESCAPE,
    InputFile,
    InputFileError,
    JsonProblem,
    parse_json,
    refuse_surrogates,
)
from ledger.archive_index import RecordedPartition

SOURCE_DOCUMENT = "usage_source"  # the archived original file's document name
TIME_FORMATS = ("rfc3339", "iso8601_utc", "unix_seconds")
FIELD_ROLES = ("id", "customer", "time", "meter", "credits", "quantity")
# Each role's column in the contract's usage file.
CONTRACT_COLUMN = {"id": "event_id", "customer": "customer_id", "time": "occurred_at",
                   "meter": "meter", "credits": "credits", "quantity": "quantity"}
RAW_LINE_MAX_CHARACTERS = 10_000
MICRO_CREDITS_PER_CREDIT = 10**6


class QuantityRating(Protocol):
    """What turns a source's quantities into credits: the policy's rate card
    (rules/rate_card.py `RateCard`)."""

    version: str

    def rate(self, meters: pd.Series, quantities: pd.Series) -> pd.DataFrame:
        """Per event: `credits_micro` (0 where not rated), `problem_role` and `problem`."""


@dataclass(frozen=True)
class UsageSource:
    """Where each contract column is in a source's events: role -> candidate field paths.

    A role with several paths takes the first one present in each event (Orb's
    `external_customer_id`, else `customer_id`); `quantity` may have none.
    """

    format: str
    fields: Mapping[str, tuple[str, ...]]
    time_format: str
    reference: str = ""
    # [sources.usage] rated = true: the events carry quantities, and `rate_card` (the
    # policy's [rate_card], attached when the policy is loaded) prices them in credits.
    rated: bool = False
    rate_card: QuantityRating | None = None

    @property
    def is_contract(self) -> bool:
        return self.format == "contract"

    @property
    def rate_card_version(self) -> str | None:
        """The version of the rate card that prices this source's events; None when they
        carry credits."""
        return self.rate_card.version if self.rated and self.rate_card is not None else None

    def field_name(self, role: str) -> str:
        """The source field a problem names: `data.value`, `external_customer_id or customer_id`."""
        if role == "credits" and self.rated:  # a rated event's credits come from its quantity
            role = "quantity"
        return " or ".join(self.fields.get(role, ())) or CONTRACT_COLUMN[role]

    def overridden(self, paths: Mapping[str, tuple[str, ...]],
                   time_format: str | None, rated: bool = False) -> UsageSource:
        return UsageSource(self.format, MappingProxyType({**self.fields, **paths}),
                           time_format or self.time_format, self.reference, rated)

    def rated_by(self, rate_card: QuantityRating) -> UsageSource:
        return UsageSource(self.format, self.fields, self.time_format, self.reference,
                           self.rated, rate_card)


def _preset(format_name: str, reference: str, time_format: str, **paths: str | tuple) -> UsageSource:
    fields = {role: (value,) if isinstance(value, str) else tuple(value)
              for role, value in paths.items()}
    # Read-only, like every mapping of the frozen policy that holds it.
    return UsageSource(format_name, MappingProxyType({"quantity": (), **fields}), time_format,
                       reference)


# The presets, each from the vendor's published reference.
USAGE_SOURCE_PRESETS: dict[str, UsageSource] = {
    # The file contract itself (README, "The file contract"): no mapping.
    "contract": _preset("contract", "", "rfc3339", id="event_id", customer="customer_id",
                        time="occurred_at", meter="meter", credits="credits",
                        quantity="quantity"),
    # CloudEvents 1.0 as OpenMeter ingests them (https://openmeter.io/docs/concepts/usage-events):
    # `id` unique, `type` matches the meter, `subject` is the customer, `time` RFC 3339,
    # `data` holds the meter's value property (numbers often sent as strings, e.g. "12").
    "cloudevents": _preset("cloudevents", "https://openmeter.io/docs/concepts/usage-events",
                           "rfc3339", id="id", customer="subject", time="time", meter="type",
                           credits="data.value"),
    # Lago events (https://getlago.com/docs/api-reference/events/usage): `transaction_id`
    # (idempotency), `external_subscription_id` (or `external_customer_id`), `code` (the
    # billable metric), `timestamp` in Unix seconds (`$(date +%s)`, fractions allowed),
    # `properties` holding the metric's field.
    "lago": _preset("lago", "https://getlago.com/docs/api-reference/events/usage",
                    "unix_seconds", id="transaction_id",
                    customer=("external_customer_id", "external_subscription_id"),
                    time="timestamp", meter="code", credits="properties.credits"),
    # Orb events (https://docs.withorb.com/api-reference/event/ingest-events; fields as in
    # Orb's SDK, EventIngestParams::Event): `idempotency_key`, `external_customer_id` or
    # `customer_id`, `event_name`, `timestamp` ISO 8601 in UTC, `properties`.
    "orb": _preset("orb", "https://docs.withorb.com/api-reference/event/ingest-events",
                   "iso8601_utc", id="idempotency_key",
                   customer=("external_customer_id", "customer_id"), time="timestamp",
                   meter="event_name", credits="properties.credits"),
    # Metronome events (https://docs.metronome.com/api-reference/usage/ingest-events):
    # `transaction_id`, `customer_id` (or an ingest alias), `event_type`, `timestamp`
    # RFC 3339, `properties` (values advised as strings, to keep precision).
    "metronome": _preset("metronome", "https://docs.metronome.com/api-reference/usage/ingest-events",
                         "rfc3339", id="transaction_id", customer="customer_id",
                         time="timestamp", meter="event_type", credits="properties.credits"),
    # Stripe billing meter events (https://docs.stripe.com/api/billing/meter-event/object):
    # `identifier`, `event_name`, `timestamp` in Unix seconds, `payload` with
    # `stripe_customer_id` and `value` (a string) by default.
    "stripe_meter_events": _preset(
        "stripe_meter_events", "https://docs.stripe.com/api/billing/meter-event/object",
        "unix_seconds", id="identifier", customer="payload.stripe_customer_id",
        time="timestamp", meter="event_name", credits="payload.value"),
}
CONTRACT_SOURCE = USAGE_SOURCE_PRESETS["contract"]


@dataclass(frozen=True)
class SourceFile(InputFile):
    """A mapped usage file: the contract's frame, the source it came from and its lines."""

    source: UsageSource = CONTRACT_SOURCE
    raw_lines: pd.Series = field(default_factory=lambda: pd.Series(dtype=object))
    # A rated source's rating of each event, by line number (QuantityRating.rate); else None.
    rating: pd.DataFrame | None = None
    # Values that are not text or a number (true, a list): ROW_NUMBER, column, reason.
    field_problems: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(
        columns=[ROW_NUMBER, "column", "reason"]))


@dataclass(frozen=True)
class SourceIntake(DocumentIntake):
    """An intake from a mapped file (a metering system's usage, a Stripe export): its
    original file is archived beside the rows."""

    source_path: Path | None = None


def read_usage_source(path: Path, source: UsageSource) -> SourceFile:
    """A metering system's JSON lines as the contract's usage frame (one row per event).

    Rows are numbered by line (blank lines are skipped but counted), so a problem's row
    is the event's line in the file.
    """
    if path.suffix != ".jsonl":
        raise InputFileError(f"{path.name}: [sources.usage] format is {source.format!r}, whose "
                             "events are JSON lines: land them as usage.jsonl")
    content = path.read_bytes()
    if not content:
        raise InputFileError(f"{path.name}: the file is empty (expected one event per line)")
    lines = pd.Series(_text(path, content).split("\n"), dtype=object)
    lines.index = pd.RangeIndex(1, len(lines) + 1)
    lines = lines[lines.str.strip() != ""]
    records = _parsed_events(path, lines)
    events = pd.json_normalize(records) if records else pd.DataFrame(index=range(0))
    frame = pd.DataFrame({ROW_NUMBER: lines.index.to_numpy()})
    field_problems = []
    for role in FIELD_ROLES:
        if role == "credits" and source.rated:
            continue  # priced from the quantity below
        frame[CONTRACT_COLUMN[role]], problems = _field_text(events, source, role, lines.index)
        field_problems.append(problems)
    frame["occurred_at"] = _instants_text(frame["occurred_at"], source.time_format)
    rating = None
    if source.rated:
        if source.rate_card is None:
            raise ValueError("a rated usage source needs its rate card (rules/policy.py)")
        rating = source.rate_card.rate(frame["meter"], frame["quantity"])
        frame["credits"] = _credits_text(rating["credits_micro"])
        rating.index = lines.index
    ordered = [ROW_NUMBER, *(spec.name for spec in DOCUMENT_COLUMNS["usage"])]
    return SourceFile("usage", path, hashlib.sha256(content).hexdigest(), frame[ordered],
                      source=source, raw_lines=lines, rating=rating,
                      field_problems=pd.concat(field_problems, ignore_index=True))


def _credits_text(credits_micro: pd.Series) -> np.ndarray:
    """Micro-credits as the contract writes credits ("18.000000"); '' where 0 (not rated),
    which the contract's check then refuses and `in_source_terms` names by the rating."""
    whole, fraction = np.divmod(credits_micro.to_numpy(dtype=np.int64), MICRO_CREDITS_PER_CREDIT)
    text = (pd.Series(whole.astype(str)) + "."
            + pd.Series(fraction.astype(str)).str.zfill(6)).to_numpy(dtype=object)
    return np.where(credits_micro.to_numpy() > 0, text, "")


def _text(path: Path, content: bytes) -> str:
    try:
        return content.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as error:
        line = content.count(b"\n", 0, error.start) + 1
        raise InputFileError(f"{path.name} row {line}: not UTF-8 text (byte "
                             f"{content[error.start]:#04x}); save the file as UTF-8") from None


def _parsed_events(path: Path, lines: pd.Series) -> list:
    """Every line's object, parsed in one call: numbers stay text, a key twice is refused."""
    try:
        records = parse_json("[" + "\n,".join(lines) + "]")
    except (json.JSONDecodeError, JsonProblem):
        records = None
    kinds = pd.Series(records if records is not None else [], dtype=object).map(type)
    if records is None or len(records) != len(lines) or not kinds.map(lambda kind: kind is dict).all():
        _refuse_first_bad_line(path, lines)
    if lines.str.contains(SURROGATE_ESCAPE).any():
        for number in lines.index[lines.str.contains(SURROGATE_ESCAPE).to_numpy()]:
            refuse_surrogates(path.name, int(number), records[lines.index.get_loc(number)])
    return records


def _refuse_first_bad_line(path: Path, lines: pd.Series) -> None:
    """Only on a broken file: find the first line that is not one JSON object, and name it."""
    for number, line in lines.items():
        try:
            record = parse_json(line)
        except json.JSONDecodeError as error:
            raise InputFileError(f"{path.name} row {number}: not valid JSON ({error.msg}); "
                                 "write one event object per line") from None
        except JsonProblem as problem:
            raise InputFileError(f"{path.name} row {number}: {problem}") from None
        if not isinstance(record, dict):
            raise InputFileError(f"{path.name} row {number}: not a JSON object; write one "
                                 "event object per line")
    raise InputFileError(f"{path.name}: not one JSON object per line")


# What a value that is not text or a number is mapped to: a control character, which every
# column of the usage contract refuses (identifier, time, decimal), so the event is rejected
# and `in_source_terms` gives the field's own reason.
_NOT_TEXT = "\x00"


def _field_text(events: pd.DataFrame, source: UsageSource, role: str,
                line_numbers: pd.Index) -> tuple[np.ndarray, pd.DataFrame]:
    """A role's value per event as text: the first of its paths present ('' if none is);
    and the events whose value is true/false or a list (ROW_NUMBER, column, reason)."""
    value = pd.Series([None] * len(events), dtype=object)
    for source_path in source.fields.get(role, ()):
        if source_path in events.columns:
            column = events[source_path].astype(object)
            value = value.where(value.notna(), column.where(column.notna(), None))
    kinds = value.map(type)
    nested = kinds.isin([dict, list, bool]).to_numpy()
    kind_names = kinds[nested].map({dict: "an object", list: "a list", bool: "true or false"})
    problems = pd.DataFrame({ROW_NUMBER: line_numbers[nested], "column": CONTRACT_COLUMN[role],
                             "reason": "expected a string or a number, not " + kind_names})
    return value.mask(nested, _NOT_TEXT).fillna("").astype(str).to_numpy(), problems


_UNIX_SECONDS = r"-?[0-9]{1,10}(?:\.[0-9]{1,9})?"
UNIX_SECONDS_MAX = 9_000_000_000
_HAS_OFFSET = r".*(?:Z|z|[+-][0-9]{2}(?::?[0-9]{2})?)"


def _instants_text(text: pd.Series, time_format: str) -> pd.Series:
    """The source's times as the contract writes them (ISO 8601 with an offset).

    RFC 3339 passes as written. ISO 8601 in UTC (Orb) gains `Z` when it carries no offset.
    Unix seconds become UTC, to the nanosecond; text that is not a number of seconds is
    left as written, so validation rejects it (the reason then names the source field).
    """
    if time_format == "rfc3339":
        return text
    if time_format == "iso8601_utc":
        needs_zone = (text != "") & text.str.contains("T") & ~text.str.fullmatch(_HAS_OFFSET)
        return text.where(~needs_zone, text + "Z")
    parts = text.str.partition(".")
    # Seconds past 9,000,000,000 (the year 2255) are refused: nanoseconds must fit 64 bits.
    numeric = text.str.fullmatch(_UNIX_SECONDS) & (parts[0].str.lstrip("-").str.len() <= 10)
    parts = parts.where(numeric, "0")
    whole = parts[0].astype("int64")
    numeric &= whole.abs() <= UNIX_SECONDS_MAX
    fraction = parts[2].str.pad(9, side="right", fillchar="0").replace("", "0").astype("int64")
    nanoseconds = whole.where(numeric, 0) * 10**9 + fraction.where(whole >= 0, -fraction)
    instants = pd.to_datetime(nanoseconds, unit="ns", utc=True)
    # Arrow writes "YYYY-MM-DD HH:MM:SS.fffffffff"; the contract's form has a T, a Z, and
    # no trailing zeros in the fraction (none at all for whole seconds).
    written = pc.utf8_replace_slice(
        pa.array(instants.dt.tz_localize(None), type=pa.timestamp("ns")).cast(pa.string()),
        10, 11, "T")
    written = pd.Series(written.to_pandas(), index=text.index, dtype=object).str.replace(
        r"(\.[0-9]*[1-9])0+$|\.0+$", r"\1", regex=True) + "Z"
    return text.where(~numeric, written)


def in_source_terms(intake: DocumentIntake, input_file: SourceFile) -> SourceIntake:
    """The intake with rejected rows named as the source writes them: the field path in
    `column_name` and the reasons, and the original JSON line as `raw_row`."""
    source, rejected = input_file.source, intake.rejected.copy()
    if len(rejected) and input_file.rating is not None:
        rejected = _named_by_rating(rejected, input_file.rating)
    if len(rejected) and len(input_file.field_problems):
        rejected = _named_by_field_problems(rejected, input_file.field_problems)
    if len(rejected):
        named = {CONTRACT_COLUMN[role]: source.field_name(role) for role in FIELD_ROLES}
        rejected["column_name"] = rejected["column_name"].map(lambda column: named.get(
            column, column))
        columns = "|".join(named)
        reasons = rejected["reason"].str.replace(
            rf"(^|; )({columns}):", lambda match: match.group(1) + named[match.group(2)] + ":",
            regex=True).str.replace(r"\bevent_id\b", named["event_id"], regex=True)
        if source.time_format == "unix_seconds":
            reasons = reasons.str.replace(
                rf"(^|; ){re.escape(named['occurred_at'])}: (must be an|is not a valid) ISO 8601 "
                "timestamp", rf"\g<1>{named['occurred_at']}: is not a number of seconds since "
                "the Unix epoch", regex=True)
        rejected["reason"] = reasons
        lines = input_file.raw_lines.reindex(rejected[ROW_NUMBER].to_numpy()).fillna("")
        rejected["raw_row"] = lines.str.slice(0, RAW_LINE_MAX_CHARACTERS).to_numpy()
    return SourceIntake(document=intake.document, file_name=intake.file_name,
                        sha256=intake.sha256, rows_read=intake.rows_read,
                        accepted=intake.accepted, duplicate_count=intake.duplicate_count,
                        rejected=rejected, source_path=input_file.path)


_CONTRACT_COLUMNS = "|".join(CONTRACT_COLUMN.values())
# A contract reason about credits or quantity, up to the next column's reason or the end.
_PRICED_REASON = rf"(?:^|; )(?:credits|quantity): .*?(?=; (?:{_CONTRACT_COLUMNS}): |$)"


def _named_by_rating(rejected: pd.DataFrame, rating: pd.DataFrame) -> pd.DataFrame:
    """The rejected events the rate card did not price: the contract's complaint about the
    missing credits (and about the quantity) gives way to the rating's own reason, still in
    contract column names (`in_source_terms` then names the source's fields)."""
    unpriced = rating.reindex(rejected[ROW_NUMBER].to_numpy())
    rows = (unpriced["credits_micro"] == 0).to_numpy()
    if not rows.any():
        return rejected
    rejected, unpriced = rejected.copy(), unpriced[rows]
    kept = rejected.loc[rows, "reason"].str.replace(_PRICED_REASON, "", regex=True)
    kept = kept.str.removeprefix("; ").to_numpy(dtype=object)
    own = np.where(unpriced["problem_role"] != "",
                   unpriced["problem_role"] + ": " + unpriced["problem"], "")
    reasons = pd.Series(np.where((kept != "") & (own != ""), kept + "; " + own, kept + own))
    rejected.loc[rows, "reason"] = reasons.to_numpy()
    rejected.loc[rows, "column_name"] = reasons.str.extract(r"^([a-z_]+):")[0].to_numpy()
    return rejected


def _named_by_field_problems(rejected: pd.DataFrame, field_problems: pd.DataFrame
                             ) -> pd.DataFrame:
    """The events with a value that is not text or a number: the contract's complaint about
    the control character standing in for it gives way to what the value is. A loop over
    these malformed events only (each is quarantined)."""
    rejected = rejected.copy()
    for row_number, column, reason in field_problems.itertuples(index=False):
        at = rejected.index[rejected[ROW_NUMBER] == row_number]
        complaint = rf"(^|; ){column}: .*?(?=; (?:{_CONTRACT_COLUMNS}): |$)"
        rejected.loc[at, "reason"] = rejected.loc[at, "reason"].str.replace(
            complaint, lambda match, own=f"{column}: {reason}": match.group(1) + own,
            regex=True)
    return rejected


def archive_source_file(writer: PartitionWriter, intake: SourceIntake) -> RecordedPartition:
    """Copy the original file into the archive beside the day's rows as `<document>_source`
    (usage_source, purchases_source, refunds_source), named by its bytes (on local disk or
    object storage alike: `PartitionWriter.copy_in`)."""
    archived_as = f"{intake.document}_source"
    writer.remove_leftovers((archived_as,))
    return writer.copy_in(Path(intake.source_path), archived_as, intake.rows_read, ".jsonl")
