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
         quarantine=((2, "event_id", "event_id: must be 1 to 200 printable characters"),)),
    Case("not UTF-8", {"usage.csv": usage(VALID)["usage.csv"] + b"E-2,C\xff1,x,api,1\n"},
         refused="usage.csv row 2: not UTF-8 text (byte 0xff at offset 87); save the file as "
                 "UTF-8"),
    Case("a line tens of megabytes long", usage(VALID, event("E" * 20_000_000)),
         counts=(2, 1, 0, 1),
         quarantine=((2, "event_id", "event_id: must be 1 to 200 printable characters"),)),
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
    _rejected_usage("too many digits", event(credits="1" * 13), "credits",
                    "credits: is too large"),
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
                    "event_id: must be 1 to 200 printable characters"),
    Case("id of 200 characters", usage(VALID, event("E" * 200)), counts=(2, 2, 0, 0)),
    Case("SQL metacharacters in ids", usage(VALID, event(SQL_ID, meter=SQL_ID)),
         counts=(2, 2, 0, 0)),
    Case("formula injection in ids", usage(VALID, event(FORMULA_ID, meter="@SUM(A1:A9)")),
         counts=(2, 2, 0, 0)),
]
