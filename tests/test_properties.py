"""Property tests: random lots and usage against a reference burn, and random nights' invariants."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from creditbooks.night.run import run_night
from ledger.periods import business_day
from ledger.store import Store
from reports.controls import run_controls
from reports.statements import rollforward
from rules.burn import burn, burn_order_ranks
from rules.policy import BURN_ORDER_KEYS
from tests.support.landing import write_document

pytestmark = pytest.mark.slow  # hypothesis drives many nights

DAY = business_day(date(2026, 3, 10), "UTC")
HOUR = pd.Timedelta(hours=1)


def reference_burn(events, lots):
    """Event by event, the rule as written: the obvious loop the vectorised burn must match."""
    available = dict(zip(lots["purchase_id"], lots["credits_available_micro"], strict=True))
    ordered = lots.sort_values("burn_rank")
    slices, uncovered = defaultdict(int), defaultdict(int)
    effective = events["occurred_at"].where(events["occurred_at"] >= DAY.starts_at_utc,
                                            DAY.starts_at_utc)
    timeline = events.assign(effective_at=effective).sort_values(
        ["effective_at", "occurred_at", "event_id"])
    for event in timeline.itertuples(index=False):
        need = event.credits_micro
        for lot in ordered.itertuples(index=False):
            if need == 0:
                break
            active = lot.purchased_at <= event.effective_at and (
                pd.isna(lot.expires_at) or event.effective_at < lot.expires_at)
            if lot.customer_id != event.customer_id or not active:
                continue
            taken = min(need, available[lot.purchase_id])
            if taken:
                available[lot.purchase_id] -= taken
                slices[(lot.purchase_id, event.meter)] += taken
                need -= taken
        if need:
            uncovered[(event.customer_id, event.meter)] += need
    return dict(slices), dict(uncovered)


lot_strategy = st.tuples(
    st.sampled_from(["c1", "c2", "c3"]),
    st.integers(-48, 20),               # purchased, hours from day start
    st.one_of(st.none(), st.integers(1, 60)),  # lifetime in hours, or never
    st.integers(0, 5000),               # amount minor
    st.integers(1, 5_000_000),          # credits micro
    st.integers(0, 2),                  # priority
)
event_strategy = st.tuples(
    st.sampled_from(["c1", "c2", "c3", "c4"]),
    st.integers(-30, 23 * 60 + 59),      # minutes from day start (negative: late)
    st.sampled_from(["api", "gpu"]),
    st.integers(1, 2_000_000),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(lot_strategy, max_size=8), st.lists(event_strategy, min_size=1, max_size=25))
def test_vectorised_burn_matches_the_event_by_event_reference(lot_specs, event_specs):
    start = DAY.starts_at_utc
    lots = pd.DataFrame([{
        "purchase_id": f"L{index}", "customer_id": customer,
        "purchased_at": start + hours * HOUR,
        "expires_at": start + (hours + lifetime) * HOUR if lifetime else pd.NaT,
        "amount_minor": amount, "credits_micro": credits, "priority": priority,
    } for index, (customer, hours, lifetime, amount, credits, priority) in enumerate(lot_specs)],
        columns=["purchase_id", "customer_id", "purchased_at", "expires_at", "amount_minor",
                 "credits_micro", "priority"])
    lots["purchased_at"] = pd.to_datetime(lots["purchased_at"], utc=True)
    lots["expires_at"] = pd.to_datetime(lots["expires_at"], utc=True)
    lots["credits_available_micro"] = lots["credits_micro"]
    lots["burn_rank"] = burn_order_ranks(lots, BURN_ORDER_KEYS) if len(lots) else []
    events = pd.DataFrame([{
        "event_id": f"E{index:03d}", "customer_id": customer,
        "occurred_at": start + pd.Timedelta(minutes=minutes), "meter": meter, "credits_micro": credits,
    } for index, (customer, minutes, meter, credits) in enumerate(event_specs)])
    result = burn(events, lots, DAY)
    expected_slices, expected_uncovered = reference_burn(events, lots)
    assert {(row.purchase_id, row.meter): row.credits_micro
            for row in result.slices.itertuples(index=False)} == expected_slices
    assert {(row.customer_id, row.meter): row.credits_micro
            for row in result.uncovered.itertuples(index=False)} == expected_uncovered


night_purchase = st.tuples(st.integers(0, 4), st.sampled_from(["A", "B"]),
                           st.sampled_from(["USD", "JPY"]), st.integers(1, 30),
                           st.integers(0, 9999), st.one_of(st.none(), st.integers(1, 5)),
                           st.booleans())
night_usage = st.tuples(st.integers(0, 4), st.sampled_from(["A", "B", "Z"]), st.integers(0, 23),
                        st.sampled_from(["api", "gpu"]), st.integers(1, 9_000))


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(night_purchase, max_size=8), st.lists(night_usage, max_size=30))
def test_random_nights_keep_every_invariant(tmp_path_factory, policy, purchases, usages):
    root = tmp_path_factory.mktemp("nights")
    first = date(2026, 4, 28)
    for day_offset in range(5):
        business_date = (first + timedelta(days=day_offset)).isoformat()
        day_purchases = [{
            "purchase_id": f"P{index}", "customer_id": customer,
            "purchased_at": f"{business_date}T00:30:00Z", "credits": str(credits),
            "amount": "0" if promotional else (f"{amount / 100:.2f}" if currency == "USD"
                                              else str(amount)),
            "currency": currency, "tax_amount": "",
            "expires_at": "" if life is None else
            f"{(first + timedelta(days=day_offset + life)).isoformat()}T00:00:00Z",
            "kind": "promotional" if promotional else "paid", "product": "p", "priority": "0",
        } for index, (offset, customer, currency, credits, amount, life, promotional)
            in enumerate(purchases) if offset == day_offset]
        day_usage = [{
            "event_id": f"E{index}", "customer_id": customer,
            "occurred_at": f"{business_date}T{hour:02d}:00:00Z", "meter": meter,
            "credits": f"{milli // 1000}.{milli % 1000:03d}",
        } for index, (offset, customer, hour, meter, milli) in enumerate(usages)
            if offset == day_offset]
        if day_purchases:
            write_document(root / "landing", business_date, "purchases", day_purchases)
        if day_usage:
            write_document(root / "landing", business_date, "usage", day_usage)
    for day_offset in range(12):  # a JPY rate that moves every day
        business_date = (first + timedelta(days=day_offset)).isoformat()
        write_document(root / "landing", business_date, "fx_rates", [
            {"date": business_date, "currency": "JPY",
             "rate_to_functional": f"0.{6700 + 13 * day_offset:06d}"}])
    store = Store(f"sqlite:///{root / 'ledger.db'}")
    store.initialise()
    for day_offset in range(12):  # past every expiry
        run_night(store, policy, root / "landing", root / "archive", first + timedelta(days=day_offset))
    results = run_controls(store, policy.accounts.deferred_revenue)
    assert [result.detail for result in results if not result.passed] == []
    for period in ("2026-04", "2026-05"):
        assert all(row.difference_minor == 0
                   for row in rollforward(store, period, policy.accounts.deferred_revenue))
    # Every lot has expired or been used up by now: each ties out to its amount exactly.
    untied = store.read_frame("""
        SELECT l.purchase_id FROM lots l JOIN lot_balances b ON b.purchase_id = l.purchase_id
        WHERE b.usage_value_minor + b.breakage_minor <> l.amount_minor AND l.expires_at IS NOT NULL
    """)
    assert untied.empty
    store.dispose()
