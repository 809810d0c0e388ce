"""Burn order and the vectorised burn-down, on hand-traced cases."""

from datetime import date

import pandas as pd
import pytest

from ledger.periods import business_day
from rules.burn import burn, burn_order_ranks
from rules.policy import BURN_ORDER_KEYS

DAY = business_day(date(2026, 1, 5), "UTC")
MICRO = 1_000_000


def at(text):
    return pd.Timestamp(text, tz="UTC")


def make_lots(rows):
    lots = pd.DataFrame(rows, columns=["purchase_id", "customer_id", "purchased_at", "expires_at",
                                       "amount_minor", "credits_micro", "priority"])
    lots["expires_at"] = pd.to_datetime(lots["expires_at"], utc=True)
    lots["credits_available_micro"] = lots["credits_micro"]
    lots["burn_rank"] = burn_order_ranks(lots, BURN_ORDER_KEYS)
    return lots


def make_events(rows):
    return pd.DataFrame(rows, columns=["event_id", "customer_id", "occurred_at", "meter",
                                       "credits_micro"])


def slices_of(result):
    return {(row.purchase_id, row.meter): row.credits_micro
            for row in result.slices.itertuples(index=False)}


def test_default_burn_order_priority_then_expiry_then_cheapest_then_oldest_then_id():
    lots = make_lots([
        ("never-cheap", "c", at("2026-01-01"), None, 100, 10 * MICRO, 0),
        ("soon", "c", at("2026-01-01"), at("2026-02-01"), 1000, 10 * MICRO, 0),
        ("promo", "c", at("2026-01-01"), None, 0, 10 * MICRO, 0),
        ("high-priority-number", "c", at("2026-01-01"), at("2026-01-10"), 0, 10 * MICRO, 5),
        ("never-cheap-older", "c", at("2025-12-01"), None, 100, 10 * MICRO, 0),
        ("never-cheap-b", "c", at("2025-12-01"), None, 100, 10 * MICRO, 0),
    ])
    order = lots.sort_values("burn_rank")["purchase_id"].tolist()
    assert order == ["soon", "promo", "never-cheap-b", "never-cheap-older", "never-cheap",
                     "high-priority-number"]


def test_events_follow_lots_that_activate_and_expire_during_the_day():
    lots = make_lots([
        ("A", "c1", at("2026-01-01"), None, 1000, 10 * MICRO, 0),
        ("B", "c1", at("2026-01-05T12:00"), None, 500, 10 * MICRO, 0),
        ("P", "c1", at("2026-01-01"), at("2026-01-05T10:00"), 0, 2 * MICRO, 0),
    ])
    events = make_events([
        ("e1", "c1", at("2026-01-05T09:00"), "api", 3 * MICRO),
        ("e2", "c1", at("2026-01-05T11:00"), "api", 4 * MICRO),
        ("e3", "c1", at("2026-01-05T13:00"), "gpu", 12 * MICRO),
        ("e4", "c1", at("2026-01-03T00:00"), "api", 1 * MICRO),  # late: burns at day start
        ("e5", "c2", at("2026-01-05T01:00"), "api", 5 * MICRO),  # no lots at all
    ])
    result = burn(events, lots, DAY)
    # e4 (late, at 00:00) and e1 use the promo lot P first (cheapest, expires soonest): P gives 2.
    # e1's other 2 come from A (B is not active until 12:00). e2 at 11:00: P expired -> A 4.
    # e3 at 13:00: B (cheaper per credit) 10, then A 2.
    assert slices_of(result) == {("P", "api"): 2 * MICRO, ("A", "api"): 6 * MICRO,
                                 ("A", "gpu"): 2 * MICRO, ("B", "gpu"): 10 * MICRO}
    assert result.uncovered.to_dict("records") == [
        {"customer_id": "c2", "meter": "api", "credits_micro": 5 * MICRO, "event_count": 1}]


def test_an_event_at_the_expiry_instant_cannot_use_the_lot_and_one_at_purchase_can():
    lots = make_lots([
        ("old", "c", at("2026-01-01"), at("2026-01-05T10:00"), 100, 5 * MICRO, 0),
        ("new", "c", at("2026-01-05T10:00"), None, 100, 5 * MICRO, 0),
    ])
    events = make_events([("e", "c", at("2026-01-05T10:00"), "api", 1 * MICRO)])
    assert slices_of(burn(events, lots, DAY)) == {("new", "api"): MICRO}


def test_usage_beyond_all_credits_is_split_into_burned_and_uncovered():
    lots = make_lots([("A", "c", at("2026-01-01"), None, 100, 2 * MICRO, 0)])
    events = make_events([
        ("e1", "c", at("2026-01-05T01:00"), "api", 1_500_000),
        ("e2", "c", at("2026-01-05T02:00"), "gpu", 1_000_000),
    ])
    result = burn(events, lots, DAY)
    assert slices_of(result) == {("A", "api"): 1_500_000, ("A", "gpu"): 500_000}
    assert result.uncovered[["meter", "credits_micro"]].to_dict("records") == [
        {"meter": "gpu", "credits_micro": 500_000}]


@pytest.mark.parametrize("available", [0, 1])
def test_lots_with_no_credits_left_are_skipped(available):
    lots = make_lots([("empty", "c", at("2026-01-01"), at("2026-01-09"), 100, 5 * MICRO, 0),
                      ("full", "c", at("2026-01-01"), None, 100, 5 * MICRO, 0)])
    lots.loc[0, "credits_available_micro"] = available
    events = make_events([("e", "c", at("2026-01-05T03:00"), "api", 2)])
    expected = {("full", "api"): 2} if available == 0 else {("empty", "api"): 1, ("full", "api"): 1}
    assert slices_of(burn(events, lots, DAY)) == expected


def test_events_at_the_same_instant_burn_in_event_id_order_whatever_the_file_order():
    lots = make_lots([("A", "c", at("2026-01-01"), None, 100, 3 * MICRO, 0)])
    # Three events tie on the instant; "e-a" burns first, then "e-b"; "e-c" finds A empty.
    # A fourth, earlier event of another customer checks ties are only within a customer.
    events = make_events([
        ("e-c", "c", at("2026-01-05T09:00"), "gpu", 2 * MICRO),
        ("e-b", "c", at("2026-01-05T09:00"), "api", 2 * MICRO),
        ("e-a", "c", at("2026-01-05T09:00"), "storage", 1 * MICRO),
        ("e-0", "d", at("2026-01-05T09:00"), "api", 1 * MICRO),
    ])
    result = burn(events, lots, DAY)
    assert slices_of(result) == {("A", "storage"): MICRO, ("A", "api"): 2 * MICRO}
    assert result.uncovered[["customer_id", "meter", "credits_micro"]].to_dict("records") == [
        {"customer_id": "c", "meter": "gpu", "credits_micro": 2 * MICRO},
        {"customer_id": "d", "meter": "api", "credits_micro": MICRO}]
