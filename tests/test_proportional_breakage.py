"""Proportional breakage (ASC 606-10-55-48, first sentence), worked by hand.

Published figures (ACCOUNTING.md, the textbook gift-card problem): 160,000 of cards, 5%
expected breakage, 144,000 redeemed: breakage 8,000 x 144,000 / 152,000 = 7,578.95 and
a liability left of 8,421.05.

A change of estimate mid-life (USD, product "gift"; breakage to date =
value x r x used / (credits x (1 - r)), half even, capped at the value not yet recognised):
  P-A  cust X  1,000 credits  100.00  never expires
  P-B  cust Y    100 credits   10.00  expires 2026-03-06 12:00
  The policy in force for 03-01..02 expects 5%; accountants then add 10% from 03-03 and
  2% from 03-05 (a new policy version).
  03-01  X uses 200, Y uses 50   A: 10000 x 200 / (1000 x 19) = 105.26 -> 105
                                 B:  1000 x 50 / (100 x 19)  =  26.32 ->  26
  03-02  X uses 100              A: 3,000,000 / 19,000 = 157.89 -> 158 (+53)
  03-03  rate 10%                A: 3,000,000 / 9,000 = 333.33 -> 333 (+175)
                                 B:    50,000 / 900   =  55.56 ->  56 (+30)
  03-04  X uses 200              A: 5,000,000 / 9,000 = 555.56 -> 556 (+223)
  03-05  rate 2%                 A: 5,000,000 / 49,000 = 102.04 -> 102 (-454)
                                 B:    50,000 / 4,900  =  10.20 ->  10 (-46)
  03-06  X uses 500: A used up, cap 0 -> 0 (-102): usage 100.00, breakage 0.00
         B expires: 10.00 - 5.00 - 0.10 = 4.90 more breakage; B's breakage 5.00
  March: usage 105.00, breakage 5.00, deferred 0.
"""

from __future__ import annotations

from datetime import date

import pytest

from reports.breakage_review import breakage_estimates
from reports.controls import run_controls
from reports.statements import rollforward
from rules.policy import PolicyError
from tests.support.gift_cards import gift_card_policy
from tests.support.landing import write_document
from tests.support.nights import post_days
from tests.support.scenario import purchase, trial_balance_of, usage


def test_the_published_gift_card_figures(store, tmp_path):
    policy = gift_card_policy(("2026-01-01", "0.05"))
    write_document(tmp_path / "landing", "2026-03-01", "purchases", [
        purchase("G-1", "X", "160000", "160000.00", product="gift",
                 purchased_at="2026-03-01T09:00:00Z")])
    write_document(tmp_path / "landing", "2026-03-01", "usage", [
        usage("U1", "X", "2026-03-01T10:00:00Z", "redeem", "144000")])
    post_days(store, policy, tmp_path, date(2026, 3, 1), date(2026, 3, 1))
    books = trial_balance_of(store, "2026-03")
    assert books[("Income:Revenue:Usage", "USD")][3] == "-144000.00"
    assert books[("Income:Revenue:Breakage", "USD")][3] == "-7578.95"
    assert books[("Liabilities:DeferredRevenue:Credits", "USD")][3] == "-8421.05"


def write_estimate_change(landing):
    write_document(landing, "2026-03-01", "purchases", [
        purchase("P-A", "X", "1000", "100.00", product="gift", purchased_at="2026-03-01T09:00:00Z"),
        purchase("P-B", "Y", "100", "10.00", product="gift", purchased_at="2026-03-01T09:00:00Z",
                 expires_at="2026-03-06T12:00:00Z"),
    ])
    days = {"01": [("X", "200"), ("Y", "50")], "02": [("X", "100")], "04": [("X", "200")],
            "06": [("X", "500")]}
    for day, uses in days.items():
        write_document(landing, f"2026-03-{day}", "usage", [
            usage(f"U-{day}-{customer}", customer, f"2026-03-{day}T10:00:00Z", "redeem", credits)
            for customer, credits in uses])


@pytest.mark.slow  # over a second here: not in make test-fast
def test_a_change_of_estimate_is_a_cumulative_catch_up_and_lots_tie_out(store, tmp_path):
    first = gift_card_policy(("2026-01-01", "0.05"))
    revised = gift_card_policy(("2026-01-01", "0.05"), ("2026-03-03", "0.10"), ("2026-03-05", "0.02"))
    write_estimate_change(tmp_path / "landing")
    post_days(store, first, tmp_path, date(2026, 3, 1), date(2026, 3, 2))
    post_days(store, revised, tmp_path, date(2026, 3, 3), date(2026, 3, 6))

    accruals = store.read_frame("""
        SELECT a.business_date, a.purchase_id, a.rate, a.change_minor, a.breakage_to_date_minor,
               a.policy_version, e.source_ref, e.policy_version AS entry_policy
        FROM breakage_accruals a JOIN journal_entries e
          ON e.entry_id = 'breakage/' || a.purchase_id || '/' || a.business_date
        ORDER BY a.business_date, a.purchase_id""")
    assert accruals[["business_date", "purchase_id", "rate", "change_minor",
                     "breakage_to_date_minor"]].astype(str).values.tolist() == [
        ["2026-03-01", "P-A", "0.05", "105", "105"], ["2026-03-01", "P-B", "0.05", "26", "26"],
        ["2026-03-02", "P-A", "0.05", "53", "158"],
        ["2026-03-03", "P-A", "0.10", "175", "333"], ["2026-03-03", "P-B", "0.10", "30", "56"],
        ["2026-03-04", "P-A", "0.10", "223", "556"],
        ["2026-03-05", "P-A", "0.02", "-454", "102"], ["2026-03-05", "P-B", "0.02", "-46", "10"],
        ["2026-03-06", "P-A", "0.02", "-102", "0"],
    ]
    assert (accruals["policy_version"] == accruals["entry_policy"]).all()
    assert accruals["policy_version"].tolist()[:3] == [first.version] * 3
    assert set(accruals["policy_version"].tolist()[3:]) == {revised.version}
    assert accruals["source_ref"].iloc[3] == "P-A proportional at rate 0.10"

    expiry = store.read_frame("SELECT purchase_id, value_minor, destination FROM lot_expiries")
    assert expiry.values.tolist() == [["P-B", 490, "breakage"]]
    at_expiry = store.read_frame("SELECT source_ref, policy_version FROM journal_entries "
                                 "WHERE entry_id = 'breakage/P-B'")
    assert at_expiry.values.tolist() == [["P-B proportional at rate 0.02", revised.version]]
    books = trial_balance_of(store, "2026-03")
    assert books[("Income:Revenue:Usage", "USD")][3] == "-105.00"
    assert books[("Income:Revenue:Breakage", "USD")] == ("0.00", "6.02", "-11.02", "-5.00")
    assert books[("Liabilities:DeferredRevenue:Credits", "USD")][3] == "0.00"
    [usd] = rollforward(store, "2026-03", revised.accounts.deferred_revenue)
    assert (usd.purchases_minor, usd.usage_revenue_minor, usd.breakage_minor,
            usd.closing_minor) == (11000, 10500, 500, 0)
    lots = store.read_frame("SELECT purchase_id, usage_value_minor, breakage_minor, is_open "
                            "FROM lot_balances ORDER BY purchase_id")
    assert lots.astype({"is_open": bool}).values.tolist() == [["P-A", 10000, 0, False],
                                                             ["P-B", 500, 500, False]]
    assert all(result.passed for result in run_controls(store, revised.accounts.deferred_revenue))

    # The estimate under review: P-B expired when 2% was expected, and half of it lapsed.
    assert breakage_estimates(store, "2026-03", revised) == [{
        "cumulative_to": "2026-03-31", "product": "gift", "currency": "USD",
        "method": "proportional", "lots_expired": 1,
        "value": "10.00", "estimated_breakage": "0.20", "actual_breakage": "5.00",
        "difference": "4.80", "estimated_rate": "0.0200", "actual_rate": "0.5000"}]


def test_a_proportional_product_needs_an_expected_rate_below_one():
    with pytest.raises(PolicyError, match="needs at least one expected rate"):
        gift_card_policy()
    with pytest.raises(PolicyError, match="must be at least 0 and below 1"):
        gift_card_policy(("2026-01-01", "1"))
    with pytest.raises(PolicyError, match="in date order"):
        gift_card_policy(("2026-02-01", "0.1"), ("2026-01-01", "0.2"))
