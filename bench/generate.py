"""Synthetic landing days at benchmark scale, reproducible from a seed, written in bulk.

`write_bench_days` lands two business days: the first holds every customer's lots
(several packs per customer at different per-credit values, promotional grants for some,
a share expiring inside the second day), the second the usage: E events drawn from a
long-tailed distribution over customers, on three meters, a share of them late (dated
the day before), a few re-sent, a few bad rows (no customer). Usage is written as
Parquet (instants as timestamps, credits as decimal(18,6)) or CSV, ten million events
at a time, so a day larger than memory can be written. Everything is numpy and pyarrow
compute: no loop per event.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

FIRST_DAY = date(2026, 3, 1)
METERS = ("api-calls", "gpu-seconds", "storage-gb")
# (credits, price in cents) per pack: bigger packs are cheaper per credit.
PACKS = np.array([(1_000, 1_000), (10_000, 8_000), (100_000, 60_000)])
LATE_SHARE = 0.01
RESENT_SHARE = 0.0005
BAD_SHARE = 0.00001
EXPIRING_SHARE = 0.05
PROMOTIONAL_SHARE = 0.2
ROW_GROUP_ROWS = 1_000_000
GENERATED_EVENTS_AT_ONCE = 10_000_000


@dataclass(frozen=True)
class BenchDays:
    landing: Path
    purchases_day: date
    usage_day: date
    usage_file: Path
    events: int
    customers: int


def _customer_ids(numbers: np.ndarray) -> pa.Array:
    return pc.binary_join_element_wise(
        "C", pc.utf8_lpad(pa.array(numbers).cast(pa.string()), 7, "0"), "")


def _lots(rng: np.random.Generator, customers: int, day: date) -> pa.Table:
    """One to three paid packs per customer, plus promotional grants for some."""
    packs_per_customer = rng.integers(1, 4, size=customers)
    owner = np.repeat(np.arange(customers), packs_per_customer)
    pack = rng.integers(0, len(PACKS), size=len(owner))
    promotional = rng.random(customers) < PROMOTIONAL_SHARE
    owner = np.concatenate([owner, np.flatnonzero(promotional)])
    pack = np.concatenate([pack, np.zeros(int(promotional.sum()), dtype=np.int64)])
    is_grant = np.arange(len(owner)) >= len(pack) - int(promotional.sum())
    count = len(owner)
    start = np.datetime64(day.isoformat(), "s")
    purchased = start + rng.integers(0, 86_400, size=count).astype("timedelta64[s]")
    expiring = rng.random(count) < EXPIRING_SHARE
    # Expiring lots end inside the usage day (the next day), so burns cross an expiry.
    expires = (start + np.timedelta64(86_400, "s")
               + rng.integers(1, 86_400, size=count).astype("timedelta64[s]"))
    credits = PACKS[pack, 0]
    cents = np.where(is_grant, 0, PACKS[pack, 1])
    amount = pc.binary_join_element_wise(
        pa.array(cents // 100).cast(pa.string()),
        pc.utf8_lpad(pa.array(cents % 100).cast(pa.string()), 2, "0"), ".")
    expires_text = pc.strftime(pa.array(expires).cast(pa.timestamp("s", "UTC")),
                               "%Y-%m-%dT%H:%M:%SZ")
    return pa.table({
        "purchase_id": pc.binary_join_element_wise(
            "P", pa.array(np.arange(count)).cast(pa.string()), ""),
        "customer_id": _customer_ids(owner),
        "purchased_at": pc.strftime(pa.array(purchased).cast(pa.timestamp("s", "UTC")),
                                    "%Y-%m-%dT%H:%M:%SZ"),
        "credits": pa.array(credits).cast(pa.string()),
        "amount": amount,
        "currency": pa.array(np.full(count, "USD")),
        "expires_at": pc.if_else(pa.array(expiring), expires_text, ""),
        "kind": pa.array(np.where(is_grant, "promotional", "paid")),
    })


def _usage(rng: np.random.Generator, weights: np.ndarray, events: int, day: date,
           first_event: int) -> pa.Table:
    """`events` events numbered from `first_event`, owners drawn by `weights`."""
    owner = rng.choice(len(weights), size=events, p=weights / weights.sum())
    start = np.datetime64(day.isoformat(), "us")
    offsets = rng.integers(0, 86_400_000_000, size=events)
    late = rng.random(events) < LATE_SHARE
    offsets = np.where(late, offsets - 86_400_000_000, offsets)
    occurred = pa.array(start + offsets.astype("timedelta64[us]")).cast(pa.timestamp("us", "UTC"))
    micro_credits = rng.integers(1, 20_000_000, size=events)  # up to 20 credits an event
    credits_text = pc.binary_join_element_wise(
        pa.array(micro_credits // 1_000_000).cast(pa.string()),
        pc.utf8_lpad(pa.array(micro_credits % 1_000_000).cast(pa.string()), 6, "0"), ".")
    event_ids = pc.binary_join_element_wise(
        "E", pa.array(np.arange(first_event, first_event + events)).cast(pa.string()), "")
    resent = np.flatnonzero(rng.random(events) < RESENT_SHARE)
    order = np.arange(events)
    order[resent] = np.maximum(resent - 1, 0)  # a re-sent event repeats its neighbour's row
    return pa.table({
        "event_id": event_ids,
        "customer_id": _customer_ids(owner),
        "occurred_at": occurred,
        "meter": pa.array(np.array(METERS)[rng.integers(0, len(METERS), size=events)]),
        "credits": credits_text.cast(pa.decimal128(18, 6)),
    }).take(pa.array(order))


def _usage_parts(rng: np.random.Generator, customers: int, events: int,
                 day: date) -> Iterator[pa.Table]:
    """The day's usage, at most GENERATED_EVENTS_AT_ONCE events at a time (each with its
    few bad rows), so a day larger than memory can be written."""
    # Long tail: customer weights from a Pareto distribution.
    weights = rng.pareto(1.2, size=customers) + 0.05
    for first_event in range(0, events, GENERATED_EVENTS_AT_ONCE):
        count = min(GENERATED_EVENTS_AT_ONCE, events - first_event)
        yield _with_bad_rows(rng, _usage(rng, weights, count, day, first_event))


def _with_bad_rows(rng: np.random.Generator, table: pa.Table) -> pa.Table:
    """A few rows without a customer (rejected by validation in either format)."""
    bad = pa.array(rng.random(len(table)) < BAD_SHARE)
    return table.set_column(1, "customer_id", pc.if_else(bad, "", table["customer_id"]))


def write_bench_days(root: Path, customers: int, events: int, seed: int,
                     file_format: str = "parquet") -> BenchDays:
    """Land the lots day and the usage day under root/landing; returns where they are."""
    rng = np.random.default_rng(seed)
    landing = Path(root) / "landing"
    purchases_day, usage_day = FIRST_DAY, FIRST_DAY + timedelta(days=1)
    for day in (purchases_day, usage_day):
        (landing / day.isoformat()).mkdir(parents=True, exist_ok=True)
    pacsv.write_csv(_lots(rng, customers, purchases_day),
                    landing / purchases_day.isoformat() / "purchases.csv")
    usage_file = landing / usage_day.isoformat() / f"usage.{file_format}"
    parts = _usage_parts(rng, customers, events, usage_day)
    if file_format == "parquet":
        first = next(parts)
        with pq.ParquetWriter(usage_file, first.schema) as writer:
            for part in itertools.chain([first], parts):
                writer.write_table(part, row_group_size=ROW_GROUP_ROWS)
    else:
        usage = pa.concat_tables(parts)
        as_text = usage.set_column(2, "occurred_at", pc.strftime(
            usage["occurred_at"], "%Y-%m-%dT%H:%M:%SZ"))
        pacsv.write_csv(as_text.set_column(4, "credits", usage["credits"].cast(pa.string())),
                        usage_file)
    return BenchDays(landing, purchases_day, usage_day, usage_file, events, customers)
