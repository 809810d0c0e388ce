"""`creditbooks demo`: a realistic synthetic quarter, posted night by night.

A few hundred customers buy volume packs at different per-credit prices (USD, EUR,
JPY), receive promotional grants, top up, and burn credits on three meters with
long-tailed usage. Some packs expire inside the quarter, a few are refunded in part or
rolled over; some events arrive late or twice; a few rows are bad on purpose (so the
quarantine has something to show). Books are in USD with daily EUR and JPY rates. The
same seed always writes the same files, so running the demo again changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

import numpy as np
import pandas as pd

from creditbooks.close import close_period
from creditbooks.night.run import run_night
from ledger.domain import LotKind
from ledger.money import minor_unit_exponent
from ledger.periods import Period, days_between
from ledger.store import Store
from reports.controls import run_controls
from reports.outputs.render import OutputFormat, render_rows
from reports.statements import rollforward, trial_balance_statement
from rules.policy import Policy

QUARTER_START = date(2026, 1, 1)
QUARTER_END = date(2026, 3, 31)
METERS = np.array(["api-calls", "gpu-seconds", "storage-gb"])
# (credits, price) per pack and currency: bigger packs are cheaper per credit.
PACKS = {
    "USD": [(1_000, "10.00"), (10_000, "80.00"), (100_000, "600.00")],
    "EUR": [(1_000, "9.50"), (10_000, "76.00"), (100_000, "570.00")],
    "JPY": [(1_000, "1500"), (10_000, "12000"), (100_000, "90000")],
}
EXPIRY_DAYS = np.array([30, 60, 90, 365, 0])  # 0 = never expires
TAX_RATES = {"USD": "0.08", "EUR": "0.20", "JPY": "0.10"}


def generate_landing(landing: Path, customers: int, seed: int) -> None:
    """Write purchases, usage, costs and fx_rates files for every day of the demo quarter."""
    rng = np.random.default_rng(seed)
    days = days_between(QUARTER_START, QUARTER_END)
    customer_ids = np.array([f"CUST-{number:04d}" for number in range(1, customers + 1)])
    currencies = rng.choice(["USD", "EUR", "JPY"], size=customers, p=[0.7, 0.2, 0.1])
    # Long tail: a few heavy users, many light ones.
    daily_credits = rng.pareto(1.5, size=customers) * 40 + 5
    first_day = rng.integers(0, 20, size=customers)
    purchases = _purchases(rng, customer_ids, currencies, daily_credits, first_day, len(days))
    usage = _usage(rng, customer_ids, daily_credits, first_day, days)
    costs = _costs(rng, days, customers)
    rates = _rates(rng, len(days))
    refunds, adjustments = _refunds_and_rollovers(rng, purchases, len(days))
    for offset, business_date in enumerate(days):
        directory = landing / business_date.isoformat()
        directory.mkdir(parents=True, exist_ok=True)
        day_purchases = purchases[purchases["day"] == offset].drop(columns="day")
        day_usage = usage[usage["day"] == offset].drop(columns="day")
        if len(day_purchases):
            day_purchases.to_csv(directory / "purchases.csv", index=False)
        if len(day_usage):
            day_usage.to_csv(directory / "usage.csv", index=False)
        costs[costs["day"] == offset].drop(columns="day").to_csv(directory / "costs.csv",
                                                                 index=False)
        for name, rows in (("refunds", refunds), ("adjustments", adjustments)):
            day_rows = rows[rows["day"] == offset].drop(columns="day")
            if len(day_rows):
                day_rows.to_csv(directory / f"{name}.csv", index=False)
        pd.DataFrame({"date": business_date.isoformat(), "currency": list(rates),
                      "rate_to_functional": [walk[offset] for walk in rates.values()]}).to_csv(
            directory / "fx_rates.csv", index=False)
        (directory / "_SUCCESS").touch()  # the upstream's "this day is complete" marker


def _refunds_and_rollovers(rng, purchases: pd.DataFrame,
                           day_count: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A few customers ask for a tenth of a new pack back; support extends a few expiries.

    Some are refused on purpose by the books (a pack already used up, an expiry passed),
    so the exceptions list shows what a refused refund or rollover looks like.
    """
    paid = purchases[(purchases["kind"] == LotKind.PAID) & (purchases["day"] < day_count - 3)]
    refunded = paid.sample(n=min(12, len(paid)), random_state=int(rng.integers(1 << 31)))
    refunds = pd.DataFrame({
        "refund_id": [f"RF-{number:04d}" for number in range(1, len(refunded) + 1)],
        "purchase_id": refunded["purchase_id"].to_numpy(),
        "refunded_at": _timestamps(refunded["day"].to_numpy() + 2, np.full(len(refunded), 600)),
        "credits": [str(max(1, int(credits) // 10)) for credits in refunded["credits"]],
        "amount": "",
        "day": refunded["day"].to_numpy() + 2,
    })
    expiring = paid[paid["expires_at"] != ""]
    rolled = expiring.sample(n=min(8, len(expiring)), random_state=int(rng.integers(1 << 31)))
    expires = pd.to_datetime(rolled["expires_at"], utc=True)
    on_day = ((expires - pd.Timestamp(QUARTER_START, tz="UTC")).dt.days - 1).clip(upper=day_count - 1)
    adjustments = pd.DataFrame({
        "adjustment_id": [f"ADJ-{number:04d}" for number in range(1, len(rolled) + 1)],
        "purchase_id": rolled["purchase_id"].to_numpy(),
        "adjusted_at": _timestamps(on_day.to_numpy(), np.full(len(rolled), 600)),
        "action": "rollover",
        "new_expires_at": (expires + pd.Timedelta(days=30)).dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_numpy(),
        "reason": "goodwill extension",
        "day": on_day.to_numpy(),
    })
    return refunds, adjustments[adjustments["day"] >= 0]


def _rates(rng, day_count: int) -> dict[str, list[str]]:
    """Daily USD rates for EUR and JPY: a gentle random walk, as a treasury feed gives."""
    walks = {}
    for currency, start, places in (("EUR", 1.08, 4), ("JPY", 0.0067, 7)):
        steps = np.exp(np.cumsum(rng.normal(0, 0.004, size=day_count)))
        walks[currency] = [f"{start * step:.{places}f}" for step in steps]
    return walks


def _timestamps(days: np.ndarray, seconds: np.ndarray) -> np.ndarray:
    instants = (pd.Timestamp(QUARTER_START, tz="UTC") + pd.to_timedelta(days, unit="D")
                + pd.to_timedelta(seconds, unit="s"))
    return instants.strftime("%Y-%m-%dT%H:%M:%SZ").to_numpy()


def _purchases(rng, customer_ids, currencies, daily_credits, first_day, day_count) -> pd.DataFrame:
    rows = []
    for index, customer in enumerate(customer_ids):
        currency = currencies[index]
        rows.append((customer, currency, int(first_day[index]), "promotional", 0))
        # Heavier users buy bigger packs and top up more often.
        day, pack = int(first_day[index]), int(min(2, daily_credits[index] // 60))
        while day < day_count:
            rows.append((customer, currency, day, "paid", pack))
            credits = PACKS[currency][pack][0]
            # Most customers top up before they run out; some run dry for a while.
            day += max(3, int(credits / daily_credits[index] * rng.uniform(0.4, 1.05)))
    frame = pd.DataFrame(rows, columns=["customer_id", "currency", "day", "kind", "pack"])
    count = len(frame)
    seconds = rng.integers(0, 86_400, size=count)
    expiry_days = rng.choice(EXPIRY_DAYS, size=count, p=[0.15, 0.25, 0.3, 0.2, 0.1])
    promotional = frame["kind"].to_numpy() == "promotional"
    expiry_days = np.where(promotional, 14, expiry_days)
    purchased_at = _timestamps(frame["day"].to_numpy(), seconds)
    expires_at = np.where(expiry_days > 0,
                          _timestamps(frame["day"].to_numpy() + expiry_days, seconds), "")
    pack_credits = [PACKS[c][p][0] for c, p in zip(frame["currency"], frame["pack"], strict=True)]
    pack_price = [PACKS[c][p][1] for c, p in zip(frame["currency"], frame["pack"], strict=True)]
    with_tax = rng.random(count) < 0.5
    tax = [_tax(price, currency) if taxed else ""
           for price, currency, taxed in zip(pack_price, frame["currency"], with_tax, strict=True)]
    result = pd.DataFrame({
        "purchase_id": [f"PO-{number:06d}" for number in range(1, count + 1)],
        "customer_id": frame["customer_id"],
        "purchased_at": purchased_at,
        "credits": np.where(promotional, "500", pack_credits),
        "amount": np.where(promotional, "0", pack_price),
        "currency": frame["currency"],
        "tax_amount": np.where(promotional, "", tax),
        "expires_at": expires_at,
        "kind": frame["kind"],
        "product": np.where(promotional, "promo-grant",
                            np.array(["starter", "growth", "scale"])[frame["pack"].to_numpy()]),
        "priority": 0,
        "day": frame["day"],
    })
    bad = result.sample(n=3, random_state=int(rng.integers(1 << 31))).index
    result.loc[bad[0], "currency"] = "XYZ"
    result.loc[bad[1], "amount"] = "10.005"
    result.loc[bad[2], "purchased_at"] = "2026-02-30T10:00:00Z"
    return result


def _tax(price: str, currency: str) -> str:
    quantum = Decimal(1).scaleb(-minor_unit_exponent(currency))
    return str((Decimal(price) * Decimal(TAX_RATES[currency])).quantize(quantum, ROUND_HALF_EVEN))


def _usage(rng, customer_ids, daily_credits, first_day, days) -> pd.DataFrame:
    day_count = len(days)
    customer_index = np.repeat(np.arange(len(customer_ids)), day_count)
    day = np.tile(np.arange(day_count), len(customer_ids))
    active = day > first_day[customer_index]  # usage starts the day after the first purchase
    customer_index, day = customer_index[active], day[active]
    events_per_day = rng.poisson(np.minimum(daily_credits[customer_index] / 8, 40) + 1)
    event_customer = np.repeat(customer_index, events_per_day)
    event_day = np.repeat(day, events_per_day)
    count = len(event_customer)
    mean_credits = daily_credits[event_customer] / (daily_credits[event_customer] / 8 + 1)
    credits_milli = np.maximum(1, (rng.exponential(mean_credits) * 1000).astype(np.int64))
    seconds = rng.integers(0, 86_400, size=count)
    frame = pd.DataFrame({
        "event_id": [f"EV-{number:08d}" for number in range(1, count + 1)],
        "customer_id": customer_ids[event_customer],
        "occurred_at": _timestamps(event_day, seconds),
        "meter": rng.choice(METERS, size=count, p=[0.6, 0.3, 0.1]),
        "credits": pd.Series(credits_milli).map(lambda milli: f"{milli // 1000}.{milli % 1000:03d}"),
        "day": event_day,
    })
    late = (rng.random(count) < 0.01) & (event_day < day_count - 3)
    frame.loc[late, "day"] = frame.loc[late, "day"] + rng.integers(1, 3, size=int(late.sum()))
    resent = frame[rng.random(count) < 0.003].copy()
    resent["day"] = np.minimum(resent["day"] + 1, day_count - 1)
    bad = frame.sample(n=5, random_state=int(rng.integers(1 << 31))).copy()
    bad["event_id"] = [f"EV-BAD-{number}" for number in range(len(bad))]
    bad["credits"] = ["-3", "abc", "0", "1.1234567", "2.5"]
    bad.iloc[4, bad.columns.get_loc("occurred_at")] = "yesterday"
    return pd.concat([frame, resent, bad], ignore_index=True).sort_values(
        ["day", "occurred_at", "event_id"], kind="stable")


# Daily cost of serving per meter in USD for 100 customers (scaled by the customer count).
METER_DAILY_COST = {"api-calls": Decimal("4.50"), "gpu-seconds": Decimal("9.80"),
                    "storage-gb": Decimal("1.20")}


def _costs(rng, days: list[date], customers: int) -> pd.DataFrame:
    """Cloud bill lines per meter, a shared line for all meters, a monthly fixed cost."""
    scale = Decimal(customers) / 100
    rows = []
    for offset, day in enumerate(days):
        for meter, daily in METER_DAILY_COST.items():
            amount = (daily * scale * Decimal(str(round(rng.uniform(0.8, 1.2), 2)))).quantize(
                Decimal("0.01"), ROUND_HALF_EVEN)
            rows.append((f"COST-{day}-{meter}", day, meter, amount, "variable", "cloud", offset))
        rows.append((f"COST-{day}-shared", day, "*", (Decimal("3.00") * scale).quantize(
            Decimal("0.01")), "variable", "observability", offset))
        if day.day == 1:
            rows.append((f"COST-{day}-platform", day, "*", Decimal("250.00"), "fixed", "platform",
                         offset))
    frame = pd.DataFrame(rows, columns=["cost_id", "date", "meter", "amount", "cost_type",
                                        "vendor", "day"])
    frame["amount"] = frame["amount"].astype(str)
    frame.insert(4, "currency", "USD")
    frame.loc[len(frame) // 2, "currency"] = "USX"  # one bad row for the quarantine
    return frame


def run_demo(out: Path, customers: int, seed: int, policy: Policy, database_url: str | None,
             echo: Callable[[str], None], generate_only: bool = False) -> None:
    out.mkdir(parents=True, exist_ok=True)
    landing, archive = out / "landing", out / "archive"
    generate_landing(landing, customers, seed)
    if generate_only:
        echo(f"demo: landing files for {QUARTER_START} to {QUARTER_END} written to {landing}")
        return
    store = Store(database_url or f"sqlite:///{(out / 'creditbooks.db').resolve()}")
    store.initialise()
    echo(f"demo: {customers} customers, {QUARTER_START} to {QUARTER_END}, landing files in {landing}")
    statuses: dict[str, int] = {}
    for business_date in days_between(QUARTER_START, QUARTER_END):
        outcome = run_night(store, policy, landing, archive, business_date, actor="demo")
        statuses[outcome.status] = statuses.get(outcome.status, 0) + 1
    echo("nights: " + ", ".join(f"{count} {status}" for status, count in sorted(statuses.items())))
    months: list[Period] = []
    period = Period.of(QUARTER_START)
    while period.first_day <= QUARTER_END:
        months.append(period)
        echo(render_rows(trial_balance_statement(store, period), OutputFormat.TABLE,
                         f"Trial balance {period}"))
        rows = rollforward(store, period, policy.accounts.deferred_revenue)
        echo(render_rows([row.as_strings() for row in rows], OutputFormat.TABLE,
                         f"Deferred revenue rollforward {period}"))
        ties = all(row.difference_minor == 0 for row in rows)
        echo(f"rollforward {period}: {'ties in every currency' if ties else 'DOES NOT TIE'}\n")
        period = period.next()
    results = run_controls(store, policy.accounts.deferred_revenue, policy.functional_currency)
    echo(render_rows([result.as_dict() for result in results], OutputFormat.TABLE, "Controls"))
    for period in months:
        outcome = close_period(store, policy, period, out / "close", archive, actor="demo")
        where = f"package {outcome.package}" if outcome.package else "nothing changed"
        echo(f"close {period}: {outcome.status} (version {outcome.version}); {where}")
    echo(f"ledger: {store.url}  (try: creditbooks --db {store.url} exceptions)")
