"""A corpus of hostile and malformed landing files, each with the exact outcome it must have.

Every case lands on business day 2026-01-31, after 2026-01-30 posted customer C1's lot
of 100 credits for 10.00 USD. A case is either refused as a whole file (`refused`: the
message, with the day's directory written DAY) or read row by row (`counts`: rows read,
accepted, duplicates, rejected; `quarantine`: (row, column, reason) of each rejected
row). Row-level cases carry one valid row, which must post whatever else is in the file.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from datetime import datetime

import pyarrow as pa
import pyarrow.parquet as pq

USAGE_HEADER = ["event_id", "customer_id", "occurred_at", "meter", "credits"]
PURCHASE_HEADER = ["purchase_id", "customer_id", "purchased_at", "credits", "amount", "currency",
                   "tax_amount", "expires_at", "kind", "product", "priority"]
VALID = ["E-ok", "C1", "2026-01-31T10:00:00Z", "api", "1"]
VALID_PURCHASE = ["P-ok", "C1", "2026-01-31T09:00:00Z", "10", "1.00", "USD", "", "", "paid",
                  "pack", "0"]
SQL_ID = "x'); DROP TABLE journal_lines; --"
FORMULA_ID = '=HYPERLINK("http://evil.example","click")'


def csv_bytes(header: list[str], *rows: list[str], line_end: str = "\n") -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=line_end)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode()


def parquet_usage(zone: str | None) -> dict[str, bytes]:
    """Two events with `occurred_at` as a Parquet timestamp column, in `zone` or in none."""
    buffer = io.BytesIO()
    pq.write_table(pa.table({
        "event_id": ["E-ok", "E-1"], "customer_id": ["C1", "C1"],
        "occurred_at": pa.array([datetime(2026, 1, 31, 10), datetime(2026, 1, 31, 11)],
                                pa.timestamp("us", zone)),
        "meter": ["api", "api"], "credits": pa.array([1, 2], pa.decimal128(9, 6))}), buffer)
    return {"usage.parquet": buffer.getvalue()}


def usage(*rows: list[str], **options) -> dict[str, bytes]:
    return {"usage.csv": csv_bytes(USAGE_HEADER, *rows, **options)}


def usage_lines(*lines: str) -> dict[str, bytes]:
    """A usage CSV written by hand, line by line after the header (no quoting added)."""
    return {"usage.csv": (",".join(USAGE_HEADER) + "\n" + "".join(
        line + "\n" for line in lines)).encode()}


def usage_jsonl(*lines: str) -> dict[str, bytes]:
    """JSON lines as written: the valid event first, then each line given."""
    valid = json.dumps(dict(zip(USAGE_HEADER, VALID, strict=True)))
    return {"usage.jsonl": "\n".join([valid, *lines, ""]).encode()}


def usage_parquet(**columns: pa.Array) -> dict[str, bytes]:
    """The valid event and E-1 as Parquet, with the columns given replacing the usual ones."""
    buffer = io.BytesIO()
    pq.write_table(pa.table({
        "event_id": ["E-ok", "E-1"], "customer_id": ["C1", "C1"],
        "occurred_at": ["2026-01-31T10:00:00Z", "2026-01-31T11:00:00Z"], "meter": ["api", "api"],
        "credits": ["1", "2"], **columns}), buffer)
    return {"usage.parquet": buffer.getvalue()}


def not_utf8_strings(*values: bytes) -> pa.Array:
    """A Parquet string column holding bytes that are not UTF-8, as a careless writer makes."""
    offsets = pa.array([sum(len(value) for value in values[:end]) for end in
                        range(len(values) + 1)], pa.int32()).buffers()[1]
    return pa.Array.from_buffers(pa.string(), len(values),
                                 [None, offsets, pa.py_buffer(b"".join(values))])


def fx_rates(*rows: list[str]) -> dict[str, bytes]:
    return {"fx_rates.csv": csv_bytes(["date", "currency", "rate_to_functional"],
                                      ["2026-01-31", "GBP", "1.25"], *rows)}


def purchases(*rows: list[str]) -> dict[str, bytes]:
    return {"purchases.csv": csv_bytes(PURCHASE_HEADER, VALID_PURCHASE, *rows)}


def event(event_id="E-1", customer="C1", occurred_at="2026-01-31T11:00:00Z", meter="api",
          credits="2") -> list[str]:
    return [event_id, customer, occurred_at, meter, credits]


def lot(purchase_id="P-1", credits="10", amount="1.00", currency="USD", tax="", expires="",
        kind="paid", purchased_at="2026-01-31T09:00:00Z") -> list[str]:
    return [purchase_id, "C1", purchased_at, credits, amount, currency, tax, expires, kind, "pack",
            "0"]


@dataclass(frozen=True)
class Case:
    name: str
    files: dict[str, bytes]
    refused: str = ""
    document: str = "usage"
    counts: tuple[int, int, int, int] = (0, 0, 0, 0)
    quarantine: tuple[tuple[int, str, str], ...] = ()
    earlier: dict[str, bytes] = field(default_factory=dict)  # landed on 2026-01-30 too


CREDITS_FORMAT = "credits: must be a positive decimal number of credits"
BAD_INSTANT = "occurred_at: is not a valid ISO 8601 timestamp"
NO_OFFSET = "occurred_at: has no UTC offset; write the time with Z or +hh:mm"


def _rejected_usage(name: str, bad: list[str], column: str, reason: str) -> Case:
    return Case(name, usage(VALID, bad), counts=(2, 1, 0, 1), quarantine=((2, column, reason),))


def _rejected_purchase(name: str, bad: list[str], column: str, reason: str) -> Case:
    return Case(name, purchases(bad), document="purchases", counts=(2, 1, 0, 1),
                quarantine=((2, column, reason),))


def _refused_id(name: str, event_id: str, reason: str, column: str = "event_id") -> Case:
    bad = event(customer=event_id) if column == "customer_id" else event(event_id)
    if column == "meter":
        bad = event(meter=event_id)
    return _rejected_usage(name, bad, column, f"{column}: {reason}")


WRONG_FIELD_COUNT = ("field(s) but the header has 5; every row needs exactly one field per "
                     "column (a stray or missing comma, or an unquoted comma in a value?)")
CREDITS_PAST_BOUND = "credits: is more than 1,000,000,000 credits, the most one row may carry"


CASES: list[Case] = [
    # The file's shape
    Case("missing column", {"usage.csv": csv_bytes(USAGE_HEADER[:4], VALID[:4])},
         refused="usage.csv row 0 (header): required column 'credits' is missing"),
    Case("extra column", {"usage.csv": csv_bytes([*USAGE_HEADER, "colour"], [*VALID, "red"])},
         refused="usage.csv row 0 (header): unexpected column 'colour'; usage files have columns "
                 "event_id, customer_id, occurred_at, meter, credits, quantity"),
    Case("misspelled column", {"usage.csv": csv_bytes(["event_idd", *USAGE_HEADER[1:]], VALID)},
         refused="usage.csv row 0 (header): unexpected column 'event_idd' (did you mean "
                 "'event_id'?); usage files have columns event_id, customer_id, occurred_at, "
                 "meter, credits, quantity"),
    Case("column twice", {"usage.csv": csv_bytes([*USAGE_HEADER, "meter"], [*VALID, "api"])},
         refused="usage.csv row 0 (header): column 'meter' appears twice"),
    Case("empty file", {"usage.csv": b""},
         refused="usage.csv: the file is empty (expected at least a header row)"),
    Case("header only", usage(), counts=(0, 0, 0, 0)),
    Case("byte order mark", {"usage.csv": b"\xef\xbb\xbf" + usage(VALID)["usage.csv"]},
         counts=(1, 1, 0, 0)),
    Case("CRLF line ends", usage(VALID, event(), line_end="\r\n"), counts=(2, 2, 0, 0)),
    Case("quoted newline inside an id", usage(VALID, event("E-1\nE-2")),
         counts=(2, 1, 0, 1),
         quarantine=((2, "event_id", "event_id: contains a control character (U+000A)"),)),
    Case("not UTF-8", {"usage.csv": usage(VALID)["usage.csv"] + b"E-2,C\xff1,x,api,1\n"},
         refused="usage.csv row 2: not UTF-8 text (byte 0xff at offset 87); save the file as "
                 "UTF-8"),
    Case("a line tens of megabytes long", usage(VALID, event("E" * 20_000_000)),
         counts=(2, 1, 0, 1),
         quarantine=((2, "event_id", "event_id: is longer than 200 characters"),)),
    Case("two files for one document",
         {**usage(VALID), "usage.jsonl": json.dumps(dict(zip(USAGE_HEADER, VALID, strict=True))).encode()},
         refused="DAY: more than one usage file (usage.csv, usage.jsonl); keep one"),
    Case("unexpected file name", {**usage(VALID), "usage.CSV": b""},
         refused="DAY: unexpected file 'usage.CSV'; a landing day holds only purchases, usage, "
                 "costs, refunds, fx_rates, adjustments files ending .csv, .parquet, .jsonl"),
    Case("path traversal in a file name", {**usage(VALID), "..%2f..%2fetc%2fpasswd": b""},
         refused="DAY: unexpected file '..%2f..%2fetc%2fpasswd'; a landing day holds only "
                 "purchases, usage, costs, refunds, fx_rates, adjustments files ending .csv, "
                 ".parquet, .jsonl"),
    # Numbers
    _rejected_usage("credits not a number", event(credits="abc"), "credits", CREDITS_FORMAT),
    _rejected_usage("credits NaN", event(credits="NaN"), "credits", CREDITS_FORMAT),
    _rejected_usage("credits Inf", event(credits="Inf"), "credits", CREDITS_FORMAT),
    _rejected_usage("credits 1e309", event(credits="1e309"), "credits", CREDITS_FORMAT),
    _rejected_usage("negative credits", event(credits="-5"), "credits", CREDITS_FORMAT),
    _rejected_usage("zero credits", event(credits="0"), "credits",
                    "credits: must be greater than zero"),
    _rejected_usage("more than 6 decimals", event(credits="1.1234567"), "credits",
                    "credits: has more than 6 decimal places"),
    _rejected_usage("too many digits", event(credits="1" * 13), "credits", CREDITS_PAST_BOUND),
    _rejected_purchase("amount finer than the currency", lot(amount="100.5", currency="JPY"),
                       "amount", "amount: has more decimal places than its currency allows (0)"),
    _rejected_purchase("three decimals in USD", lot(amount="1.005"), "amount",
                       "amount: has more decimal places than its currency allows (2)"),
    _rejected_purchase("unknown currency", lot(currency="XYZ"), "currency",
                       "currency: is not an ISO 4217 currency with a minor unit"),
    _rejected_purchase("lower-case currency", lot(currency="usd"), "currency",
                       "currency: must be a three-letter ISO 4217 code"),
    _rejected_purchase("promotional lot with an amount", lot(kind="promotional"), "amount",
                       "amount: promotional credits must have amount 0 and no tax"),
    _rejected_purchase("expiry before purchase", lot(expires="2026-01-30T00:00:00Z"),
                       "expires_at", "expires_at: must be after purchased_at"),
    # Time
    _rejected_usage("timestamp without an offset", event(occurred_at="2026-01-31T11:00:00"),
                    "occurred_at", NO_OFFSET),
    _rejected_usage("a date without a time", event(occurred_at="2026-01-31"), "occurred_at",
                    NO_OFFSET),
    _rejected_usage("impossible date", event(occurred_at="2026-02-30T11:00:00Z"),
                    "occurred_at", BAD_INSTANT),
    _rejected_usage("impossible hour", event(occurred_at="2026-01-31T25:00:00Z"),
                    "occurred_at", BAD_INSTANT),
    _rejected_usage("after the business day", event(occurred_at="2026-02-01T00:00:00Z"),
                    "occurred_at", "occurred_at: is after business date 2026-01-31"),
    Case("Parquet instants with a zone", parquet_usage("UTC"), counts=(2, 2, 0, 0)),
    Case("Parquet instants without a zone", parquet_usage(None), counts=(2, 0, 0, 2),
         quarantine=((1, "occurred_at", NO_OFFSET), (2, "occurred_at", NO_OFFSET))),
    # Identity
    Case("same id twice in a file, same payload", usage(VALID, event(), event()),
         counts=(3, 2, 1, 0)),
    Case("same id twice in a file, other payload", usage(VALID, event(), event(credits="3")),
         counts=(3, 1, 0, 2), quarantine=(
             (2, "event_id", "event_id appears more than once in this file with different "
                             "contents"),
             (3, "event_id", "event_id appears more than once in this file with different "
                             "contents"))),
    Case("same id on an earlier day, same payload (the instant written another way)",
         usage(VALID, event(occurred_at="2026-01-30T11:00:00Z")),
         earlier=usage(event(occurred_at="2026-01-30T12:00:00+01:00")),
         counts=(2, 1, 1, 0)),
    Case("same id on an earlier day, other payload", usage(VALID, event()),
         earlier=usage(event(credits="7", occurred_at="2026-01-30T11:00:00Z")),
         counts=(2, 1, 0, 1), quarantine=((2, "event_id", "conflict: event_id was accepted on "
                                           "2026-01-30 with different contents; not "
                                           "overwritten"),)),
    Case("usage for an unknown customer", usage(VALID, event(customer="nobody")),
         counts=(2, 2, 0, 0)),
    _rejected_usage("id of 201 characters", event("E" * 201), "event_id",
                    "event_id: is longer than 200 characters"),
    Case("id of 200 characters", usage(VALID, event("E" * 200)), counts=(2, 2, 0, 0)),
    Case("SQL metacharacters in ids", usage(VALID, event(SQL_ID, meter=SQL_ID)),
         counts=(2, 2, 0, 0)),
    Case("formula injection in ids", usage(VALID, event(FORMULA_ID, meter="@SUM(A1:A9)")),
         counts=(2, 2, 0, 0)),
    # Ids to the byte: a quoted value is read as written, and an id that differs from
    # another only by what a person cannot see would be a second event or customer.
    _refused_id("id with a final newline", "E-1\n", "contains a control character (U+000A)"),
    _refused_id("customer id with a final newline", "C1\n",
                "contains a control character (U+000A)", column="customer_id"),
    _refused_id("id with a trailing space", "E-1 ", "has leading or trailing whitespace"),
    _refused_id("id with a leading space", " E-1", "has leading or trailing whitespace"),
    _refused_id("id with a tab", "E\t1", "contains a control character (U+0009)"),
    Case("id with a quoted carriage return",
         usage_lines("E-ok,C1,2026-01-31T10:00:00Z,api,1", '"E-1\r",C1,2026-01-31T11:00:00Z,api,2'),
         counts=(2, 1, 0, 1),
         quarantine=((2, "event_id", "event_id: contains a control character (U+000D)"),)),
    Case("a bare carriage return ends a row, as in pandas and Excel",
         usage(VALID, event("E-1\r")), refused=f"usage.csv row 2: 1 {WRONG_FIELD_COUNT}"),
    _refused_id("id with a NUL", "E-1\x00", "contains a control character (U+0000)"),
    _refused_id("id with a zero-width space", "E-1\u200b", "contains a format character (U+200B)"),
    _refused_id("id with a right-to-left override", "\u202eE-1",
                "contains a format character (U+202E)"),
    _refused_id("id ending in a no-break space", "E-1\u00a0", "has leading or trailing whitespace"),
    _refused_id("id with a no-break space inside", "E\u00a01",
                "contains a character that is not printable (U+00A0)"),
    _refused_id("id with a line separator inside", "E\u20281",
                "contains a character that is not printable (U+2028)"),
    _refused_id("id not in NFC (e + combining accent)", "Ame\u0301lie",
                "is not in Unicode NFC form"),
    _refused_id("meter with a trailing space", "api ", "has leading or trailing whitespace",
                column="meter"),
    _refused_id("empty id", "", "is required"),
    Case("id in NFC with an accent and an emoji", usage(VALID, event("Am\u00e9lie-\U0001f600")),
         counts=(2, 2, 0, 0)),
    Case("ids differing only in case are two events", usage(VALID, event("e-ok")),
         counts=(2, 2, 0, 0)),
    Case("id with a final newline in JSON lines",
         usage_jsonl(json.dumps(dict(zip(USAGE_HEADER, event("E-1\n"), strict=True)))),
         counts=(2, 1, 0, 1),
         quarantine=((2, "event_id", "event_id: contains a control character (U+000A)"),)),
    _rejected_purchase("purchase id with a final newline", lot(purchase_id="P-1\n"),
                       "purchase_id", "purchase_id: contains a control character (U+000A)"),
    _rejected_purchase("currency with a final newline", lot(currency="USD\n"), "currency",
                       "currency: must be a three-letter ISO 4217 code"),
    # Files read to the byte: a row of the wrong length is never shifted, padded or cut.
    Case("a trailing comma on every row",
         usage_lines("E-ok,C1,2026-01-31T10:00:00Z,api,1,", "E-1,C1,2026-01-31T11:00:00Z,api,2,"),
         refused=f"usage.csv row 1: 6 {WRONG_FIELD_COUNT}"),
    Case("one extra field on every row",
         usage_lines("X,E-ok,C1,2026-01-31T10:00:00Z,api,1", "X,E-1,C1,2026-01-31T11:00:00Z,api,2"),
         refused=f"usage.csv row 1: 6 {WRONG_FIELD_COUNT}"),
    Case("one row with an extra field, after a blank line and a quoted newline",
         usage_lines('"E\nok",C1,2026-01-31T10:00:00Z,api,1', "",
                     "E-1,C1,2026-01-31T11:00:00Z,api,2,3"),
         refused=f"usage.csv row 2: 6 {WRONG_FIELD_COUNT}"),
    Case("a row with a field missing",
         usage_lines("E-ok,C1,2026-01-31T10:00:00Z,api,1", "E-1,C1,2026-01-31T11:00:00Z,api"),
         refused=f"usage.csv row 2: 4 {WRONG_FIELD_COUNT}"),
    Case("a row of one field", usage_lines("E-ok,C1,2026-01-31T10:00:00Z,api,1", " "),
         refused=f"usage.csv row 2: 1 {WRONG_FIELD_COUNT}"),
    Case("a JSON object with a key twice",
         usage_jsonl('{"event_id": "E-1", "customer_id": "C1", "occurred_at": '
                     '"2026-01-31T11:00:00Z", "meter": "api", "credits": "2", "credits": "200"}'),
         refused="usage.jsonl row 2: key 'credits' appears more than once in the object; "
                 "keep one"),
    Case("a JSON object where a value belongs",
         usage_jsonl('{"event_id": {"id": "E-1"}, "customer_id": "C1", "occurred_at": '
                     '"2026-01-31T11:00:00Z", "meter": "api", "credits": "2"}'),
         refused="usage.jsonl row 2 column event_id: expected a string or a number, not an "
                 "object"),
    Case("a JSON list where a value belongs",
         usage_jsonl('{"event_id": "E-1", "customer_id": "C1", "occurred_at": '
                     '"2026-01-31T11:00:00Z", "meter": ["api"], "credits": "2"}'),
         refused="usage.jsonl row 2 column meter: expected a string or a number, not a list"),
    Case("NaN in JSON lines",
         usage_jsonl('{"event_id": "E-1", "customer_id": "C1", "occurred_at": '
                     '"2026-01-31T11:00:00Z", "meter": "api", "credits": NaN}'),
         refused="usage.jsonl row 2: NaN is not a JSON number; write the value as a decimal or "
                 "a string"),
    Case("a lone surrogate in JSON lines",
         usage_jsonl('{"event_id": "E-1\\ud800", "customer_id": "C1", "occurred_at": '
                     '"2026-01-31T11:00:00Z", "meter": "api", "credits": "2"}'),
         refused="usage.jsonl row 2 column event_id: a lone surrogate (U+D800) is not a "
                 "character; write the text as UTF-8"),
    Case("a surrogate pair in JSON lines is one character",
         usage_jsonl('{"event_id": "E-\\ud83d\\ude00", "customer_id": "C1", "occurred_at": '
                     '"2026-01-31T11:00:00Z", "meter": "api", "credits": "2"}'),
         counts=(2, 2, 0, 0)),
    Case("a Parquet list column", usage_parquet(meter=pa.array([["api"], ["api"]])),
         refused="usage.parquet column meter: holds list<element: string> values (lists or "
                 "records) where one value per row belongs; write a string, decimal or "
                 "timestamp column"),
    Case("a Parquet struct column",
         usage_parquet(credits=pa.array([{"value": "1"}, {"value": "2"}])),
         refused="usage.parquet column credits: holds struct<value: string> values (lists or "
                 "records) where one value per row belongs; write a string, decimal or "
                 "timestamp column"),
    Case("Parquet text that is not UTF-8",
         usage_parquet(customer_id=not_utf8_strings(b"C1", b"C\xff1")),
         refused="usage.parquet row 2 column customer_id: not UTF-8 text; write text columns "
                 "as UTF-8"),
    Case("Parquet binary text is read when it is UTF-8",
         usage_parquet(event_id=pa.array([b"E-ok", b"E-1"], pa.binary())), counts=(2, 2, 0, 0)),
    # Bounds: a row past them is quarantined alone, and no day's sum can wrap.
    _rejected_usage("credits past the bound", event(credits="1000000000.000001"), "credits",
                    CREDITS_PAST_BOUND),
    Case("credits at the bound", usage(VALID, event(credits="1000000000")), counts=(2, 2, 0, 0)),
    Case("twelve rows of 999999999999.999999 credits for one customer",
         usage(VALID, *[event(f"E-{number}", credits="999999999999.999999")
                        for number in range(12)]),
         counts=(13, 1, 0, 12),
         quarantine=tuple((row, "credits", CREDITS_PAST_BOUND) for row in range(2, 14))),
    _rejected_purchase("amount past the bound", lot(amount="100000000000.01"), "amount",
                       "amount: is more than 100,000,000,000.00 USD (10^13 minor units), the "
                       "most one row may carry"),
    _rejected_purchase("yen amount past the bound", lot(amount="10000000000001", currency="JPY"),
                       "amount", "amount: is more than 10,000,000,000,000 JPY (10^13 minor "
                                 "units), the most one row may carry"),
    _rejected_purchase("amount with more digits than int64 holds",
                       lot(amount="1" + "0" * 20), "amount",
                       "amount: is more than 100,000,000,000.00 USD (10^13 minor units), the "
                       "most one row may carry"),
    _rejected_purchase("tax past the bound", lot(tax="100000000000.01"), "tax_amount",
                       "tax_amount: is more than 100,000,000,000.00 USD (10^13 minor units), "
                       "the most one row may carry"),
    _rejected_purchase("lot credits past the bound", lot(credits="1000000001"), "credits",
                       CREDITS_PAST_BOUND),
    # Exchange rates: a rejected rate is recorded, and a conflict names the file's columns.
    Case("fx rate of zero", fx_rates(["2026-01-31", "EUR", "0"]), document="fx_rates",
         counts=(2, 1, 0, 1),
         quarantine=((2, "rate_to_functional", "rate_to_functional: must be greater than "
                                               "zero"),)),
    Case("negative fx rate", fx_rates(["2026-01-31", "EUR", "-1.1"]), document="fx_rates",
         counts=(2, 1, 0, 1),
         quarantine=((2, "rate_to_functional", "rate_to_functional: must be a positive decimal: "
                                               "functional currency per unit of the "
                                               "currency"),)),
    Case("two rates for one date and currency", fx_rates(["2026-01-31", "EUR", "1.1"],
                                                          ["2026-01-31", "EUR", "1.2"]),
         document="fx_rates", counts=(3, 1, 0, 2), quarantine=(
             (2, "date, currency", "date, currency appears more than once in this file with "
                                   "different contents"),
             (3, "date, currency", "date, currency appears more than once in this file with "
                                   "different contents"))),
]
