"""A month of landing days for the close benchmark: every customer active every day.

Day one lands one large non-expiring pack per customer; every day of the month lands
`events_per_day` usage events spread over all customers (each customer at least once a
day, so the month has exactly `customers` active customers).
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from bench.generate import METERS, _customer_ids

MONTH_FIRST_DAY = date(2026, 3, 1)


def write_month(root: Path, customers: int, events_per_day: int, seed: int) -> list[date]:
    rng = np.random.default_rng(seed)
    landing = Path(root) / "landing"
    days = [MONTH_FIRST_DAY + timedelta(days=offset) for offset in range(31)]
    first = landing / days[0].isoformat()
    first.mkdir(parents=True, exist_ok=True)
    pacsv.write_csv(pa.table({
        "purchase_id": pc.binary_join_element_wise(
            "P", pa.array(np.arange(customers)).cast(pa.string()), ""),
        "customer_id": _customer_ids(np.arange(customers)),
        "purchased_at": pa.array(np.full(customers, "2026-03-01T00:00:00Z")),
        "credits": pa.array(np.full(customers, "1000000")),
        "amount": pa.array(np.full(customers, "5000.00")),
        "currency": pa.array(np.full(customers, "USD")),
    }), first / "purchases.csv")
    for offset, day in enumerate(days):
        directory = landing / day.isoformat()
        directory.mkdir(parents=True, exist_ok=True)
        owner = np.concatenate([np.arange(customers),
                                rng.integers(0, customers, size=max(0, events_per_day
                                                                    - customers))])
        count = len(owner)
        start = np.datetime64(day.isoformat(), "us")
        occurred = start + rng.integers(0, 86_400_000_000, size=count).astype("timedelta64[us]")
        pq.write_table(pa.table({
            "event_id": pc.binary_join_element_wise(
                f"E{offset}-", pa.array(np.arange(count)).cast(pa.string()), ""),
            "customer_id": _customer_ids(owner),
            "occurred_at": pa.array(occurred).cast(pa.timestamp("us", "UTC")),
            "meter": pa.array(np.array(METERS)[rng.integers(0, len(METERS), size=count)]),
            "credits": pa.array(rng.integers(1, 5, size=count)).cast(pa.string()).cast(
                pa.decimal128(18, 6)),
        }), directory / "usage.parquet")
    return days
