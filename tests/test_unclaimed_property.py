"""Unclaimed property: expired value owed to a state is a liability, never revenue.

Policy: countries = ["DE"]; product "gift" is proportional at 5%.
  P-E  cust E (DE)  10 credits 10.00, expires 2026-03-02 12:00; 4 used on 03-01
  P-N  cust N (US)  10 credits 10.00, same; 4 used on 03-01
P-E accrues no breakage (it can never be revenue) and at expiry its 6.00 moves to the
unclaimed-property liability. P-N accrues 10.00 x 0.05 x 4 / (10 x 0.95) = 0.21 and its
remaining 5.79 becomes breakage at expiry: 6.00 of breakage in all.
"""

from __future__ import annotations

from datetime import date

from reports.catalogue import report_builders
from reports.controls import run_controls
from reports.statements import rollforward
from tests.support.gift_cards import gift_card_policy
from tests.support.landing import write_document
from tests.support.nights import post_days
from tests.support.scenario import purchase, trial_balance_of, usage


def test_expired_value_in_an_escheat_country_goes_to_the_liability(store, tmp_path):
    policy = gift_card_policy(("2026-01-01", "0.05"), escheat_countries=("DE",))
    lot = {"product": "gift", "purchased_at": "2026-03-01T09:00:00Z",
           "expires_at": "2026-03-02T12:00:00Z"}
    write_document(tmp_path / "landing", "2026-03-01", "purchases", [
        purchase("P-E", "E", "10", "10.00", country="DE", **lot),
        purchase("P-N", "N", "10", "10.00", country="US", **lot)])
    write_document(tmp_path / "landing", "2026-03-01", "usage", [
        usage("U-E", "E", "2026-03-01T10:00:00Z", "api", "4"),
        usage("U-N", "N", "2026-03-01T10:00:00Z", "api", "4")])
    post_days(store, policy, tmp_path, date(2026, 3, 1), date(2026, 3, 2))

    books = trial_balance_of(store, "2026-03")
    assert books[("Liabilities:UnclaimedProperty:Credits", "USD")][3] == "-6.00"
    assert books[("Income:Revenue:Breakage", "USD")][3] == "-6.00"
    assert books[("Income:Revenue:Usage", "USD")][3] == "-8.00"
    assert books[("Liabilities:DeferredRevenue:Credits", "USD")][3] == "0.00"
    accrued = store.read_frame("SELECT purchase_id, breakage_to_date_minor FROM breakage_accruals")
    assert accrued.values.tolist() == [["P-N", 21]]
    entries = store.read_frame("SELECT entry_id, kind FROM journal_entries "
                               "WHERE kind IN ('breakage', 'escheat') ORDER BY entry_id")
    assert entries.values.tolist() == [["breakage/P-N", "breakage"],
                                       ["breakage/P-N/2026-03-01", "breakage"],
                                       ["escheat/P-E", "escheat"]]
    [usd] = rollforward(store, "2026-03", policy.accounts.deferred_revenue)
    assert (usd.breakage_minor, usd.escheat_minor, usd.closing_minor, usd.difference_minor) == (
        600, 600, 0, 0)
    by_lot = report_builders(store, policy, "2026-03", tmp_path / "archive")["breakage_by_lot"]()
    assert [(row["purchase_id"], row["breakage"], row["escheat"]) for row in by_lot] == [
        ("P-E", "0.00", "6.00"), ("P-N", "5.79", "0.00")]
    assert all(result.passed for result in run_controls(store, policy.accounts.deferred_revenue))
