"""Overage, per customer: in arrears at a list price, or a negative balance a purchase pays.

Policy: A in arrears at USD 0.015 a credit; N on a negative balance; everyone else an
exception (the default).
03-01  A: P-A1 2 credits 2.00; uses 3 api (1 uncovered) and 0.5 gpu (uncovered)
          billed: api 1 x 0.015 = 0.015 -> 0.02; gpu 0.5 x 0.015 = 0.0075 -> 0.01 (half even)
       N: no credits; uses 4 api: owed
       E: no credits; uses 1 api: an exception
03-02  N: 1 gpu at 09:00 (owed), buys P-N1 10 credits 5.00 at 12:00, 2 api at 15:00
          the day's own usage burns 2 from P-N1; at the end of the day the 4 + 1 owed burn
          from it too: 7 used, value 5.00 x 7 / 10 = 3.50 (api own 1.00, api owed 2.00,
          gpu owed 0.50)
03-03  N: 4 api: 3 from P-N1 (1.50), 1 owed again (no purchase pays it yet)
March: usage 2.00 + 3.50 + 1.50 = 7.00, overage 0.03, receivables 0.03, deferred 0.00.
"""

from __future__ import annotations

import tomllib
from datetime import date

import pytest

from creditbooks.night.run import run_night
from reports.controls import run_controls
from reports.subledger import exceptions
from rules.overage import OverageRuleError
from rules.policy import DEFAULT_POLICY_FILE, policy_from_document
from tests.support.landing import write_document
from tests.support.nights import post_days
from tests.support.scenario import purchase, trial_balance_of, usage


def overage_policy(prices):
    document = tomllib.loads(DEFAULT_POLICY_FILE.read_text())
    document["usage"] |= {"overage_customers": {"A": "arrears", "N": "negative_balance"},
                          "overage_price_per_credit": prices}
    return policy_from_document(document)


def write_overage_scenario(landing, currency="USD"):
    write_document(landing, "2026-03-01", "purchases", [
        purchase("P-A1", "A", "2", "2.00", currency=currency, purchased_at="2026-03-01T08:00:00Z")])
    write_document(landing, "2026-03-01", "usage", [
        usage("U1", "A", "2026-03-01T10:00:00Z", "api", "3"),
        usage("U2", "A", "2026-03-01T11:00:00Z", "gpu", "0.5"),
        usage("U3", "N", "2026-03-01T10:00:00Z", "api", "4"),
        usage("U4", "E", "2026-03-01T10:00:00Z", "api", "1")])
    write_document(landing, "2026-03-02", "purchases", [
        purchase("P-N1", "N", "10", "5.00", purchased_at="2026-03-02T12:00:00Z")])
    write_document(landing, "2026-03-02", "usage", [
        usage("U5", "N", "2026-03-02T09:00:00Z", "gpu", "1"),
        usage("U6", "N", "2026-03-02T15:00:00Z", "api", "2")])
    write_document(landing, "2026-03-03", "usage", [
        usage("U7", "N", "2026-03-03T10:00:00Z", "api", "4")])


def test_arrears_are_billed_and_a_negative_balance_is_paid_by_the_next_purchase(store, tmp_path):
    policy = overage_policy({"USD": "0.015"})
    write_overage_scenario(tmp_path / "landing")
    post_days(store, policy, tmp_path, date(2026, 3, 1), date(2026, 3, 3))

    charges = store.read_frame("SELECT customer_id, meter, credits_micro, price_per_credit, "
                               "amount_minor, currency FROM overage_charges ORDER BY meter")
    assert charges.values.tolist() == [["A", "api", 1_000_000, "0.015", 2, "USD"],
                                       ["A", "gpu", 500_000, "0.015", 1, "USD"]]
    overage = store.read_frame("""
        SELECT l.account, l.amount_minor, l.meter FROM journal_lines l
        WHERE l.entry_id = 'overage/A/2026-03-01' ORDER BY l.line_number""")
    assert overage.values.tolist() == [["Assets:Receivables:Customers", 3, None],
                                       ["Income:Revenue:Overage", -2, "api"],
                                       ["Income:Revenue:Overage", -1, "gpu"]]
    settled = store.read_frame("SELECT business_date, purchase_id, meter, credits_micro, "
                               "value_minor FROM overage_settlements ORDER BY meter")
    assert settled.astype(str).values.tolist() == [["2026-03-02", "P-N1", "api", "4000000", "200"],
                                                   ["2026-03-02", "P-N1", "gpu", "1000000", "50"]]
    usage_lines = store.read_frame("""
        SELECT l.meter, l.amount_minor FROM journal_lines l
        WHERE l.entry_id = 'usage/N/2026-03-02' AND l.meter IS NOT NULL ORDER BY l.meter""")
    assert usage_lines.values.tolist() == [["api", -300], ["gpu", -50]]
    books = trial_balance_of(store, "2026-03")
    assert books[("Income:Revenue:Usage", "USD")][3] == "-7.00"
    assert books[("Income:Revenue:Overage", "USD")][3] == "-0.03"
    assert books[("Assets:Receivables:Customers", "USD")][3] == "0.03"
    assert books[("Liabilities:DeferredRevenue:Credits", "USD")][3] == "0.00"

    uncovered = [(row["business_date"], row["customer_id"], row["credits"], row["reason"])
                 for row in exceptions(store) if row["kind"] == "uncovered"]
    assert uncovered == [
        ("2026-03-01", "A", "1", "usage found no active credits; billed in arrears at the list price"),
        ("2026-03-01", "A", "0.5",
         "usage found no active credits; billed in arrears at the list price"),
        ("2026-03-01", "E", "1", "usage found no active credits; recorded, not revenue"),
        ("2026-03-01", "N", "4",
         "usage found no active credits; owed, paid first by the next purchase"),
        ("2026-03-02", "N", "1",
         "usage found no active credits; owed, paid first by the next purchase"),
        ("2026-03-03", "N", "1",
         "usage found no active credits; owed, paid first by the next purchase"),
    ]
    assert all(result.passed for result in run_controls(store, policy.accounts.deferred_revenue))


def test_an_overage_the_policy_cannot_price_stops_the_night(sqlite_store, tmp_path):
    policy = overage_policy({"USD": "0.015"})
    write_overage_scenario(tmp_path / "landing", currency="EUR")
    write_document(tmp_path / "landing", "2026-03-01", "fx_rates", [
        {"date": "2026-03-01", "currency": "EUR", "rate_to_functional": "1.08"}])
    with pytest.raises(OverageRuleError, match="no price in EUR, needed to bill overage of "
                                               "customer A; nothing was posted"):
        run_night(sqlite_store, policy, tmp_path / "landing", tmp_path / "archive",
                  date(2026, 3, 1))
    assert sqlite_store.read_frame("SELECT COUNT(*) AS n FROM batches")["n"][0] == 0
