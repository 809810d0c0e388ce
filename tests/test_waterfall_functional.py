"""Issue 19: the functional-currency waterfall converts each lot at its own purchase rate.

Worked by hand (functional USD; deferred revenue is non-monetary, carried at the rate of
the day it was bought, rules/fx.py):
03-01  P-1 (customer A): 3 credits for 10.00 EUR at 1.10, expires 2026-06-15; A uses 1
       credit on 03-02 (3.33 EUR). Owed 6.67 EUR, carried at round(10.00 x 1.1) - round(3.33 x 1.1)
       = 11.00 - 3.66 = 7.34 USD.
03-02  P-2 (customer B): 1 credit for 10.00 EUR at 1.30, expires 2026-05-20; carried 13.00.
Closing deferred 2026-03: 16.67 EUR = 20.34 USD.
Contractual expiry: May 13.00 (P-2), June 7.34 (P-1).
Burn forecast: A burned 1 credit in the trailing 30 days, so 1 credit a month: April
takes P-1 from owing 6.67 to 3.33 EUR: 7.34 - (11.00 - round(6.67 x 1.1)) = 7.34 - 3.66
= 3.68 USD; May takes the last credit: 3.66 USD, and P-2 lapses at expiry: 13.00; May 16.66.
One average rate for EUR (20.34 USD / 16.67 EUR) would have put 12.20 in May and 8.14
in June by contractual expiry.
"""

from __future__ import annotations

from datetime import date

import pytest

from reports.statements import trial_balance
from reports.waterfall import waterfall
from tests.support.landing import write_document
from tests.support.nights import post_days
from tests.support.scenario import purchase, usage


def write_two_rate_scenario(landing):
    write_document(landing, "2026-03-01", "purchases", [
        purchase("P-1", "A", "3", "10.00", currency="EUR", purchased_at="2026-03-01T09:00:00Z",
                 expires_at="2026-06-15T00:00:00Z")])
    write_document(landing, "2026-03-02", "usage", [
        usage("U-1", "A", "2026-03-02T10:00:00Z", "api", "1")])
    write_document(landing, "2026-03-02", "purchases", [
        purchase("P-2", "B", "1", "10.00", currency="EUR", purchased_at="2026-03-02T09:00:00Z",
                 expires_at="2026-05-20T00:00:00Z")])
    for day, rate in (("2026-03-01", "1.10"), ("2026-03-02", "1.30")):
        write_document(landing, day, "fx_rates", [
            {"date": day, "currency": "EUR", "rate_to_functional": rate}])


@pytest.mark.slow  # over a second here: not in make test-fast
def test_each_lot_is_converted_at_its_own_purchase_rate_and_the_total_ties(sqlite_store, policy,
                                                                           tmp_path):
    write_two_rate_scenario(tmp_path / "landing")
    post_days(sqlite_store, policy, tmp_path, date(2026, 3, 1), date(2026, 3, 2))

    rows = {row["method"]: row for row in waterfall(sqlite_store, "2026-03", policy,
                                                    functional=True)}
    assert {row["currency"] for row in rows.values()} == {"USD"}
    expiry, forecast = rows["contractual expiry"], rows["burn forecast"]
    assert (expiry["2026-04"], expiry["2026-05"], expiry["2026-06"], expiry["thereafter"]) == (
        "0.00", "13.00", "7.34", "0.00")
    assert (forecast["2026-04"], forecast["2026-05"], forecast["2026-06"]) == (
        "3.68", "16.66", "0.00")
    # The disclosure ties to the functional closing deferred balance of the ledger.
    ledger = {(row["account"], row["currency"]): row["closing"]
              for row in trial_balance(sqlite_store, "2026-03", "USD")}
    assert ledger[(policy.accounts.deferred_revenue, "USD")] == "-20.34"
    assert expiry["total"] == forecast["total"] == "20.34"
    # In EUR, the same lots: the functional figures are not one rate times these.
    in_eur = {row["method"]: row for row in waterfall(sqlite_store, "2026-03", policy)}
    assert (in_eur["contractual expiry"]["2026-05"], in_eur["contractual expiry"]["2026-06"]) == (
        "10.00", "6.67")


@pytest.mark.slow  # over a second here: not in make test-fast
def test_a_ledger_line_no_lots_rate_explains_is_allocated_so_the_total_still_ties(
        sqlite_store, policy, tmp_path):
    write_two_rate_scenario(tmp_path / "landing")
    post_days(sqlite_store, policy, tmp_path, date(2026, 3, 1), date(2026, 3, 2))
    with sqlite_store.engine.begin() as connection:  # P-1's usage line 1 cent off its rate
        connection.exec_driver_sql("DROP TRIGGER journal_lines_no_update")  # append-only
        connection.exec_driver_sql(
            "UPDATE journal_lines SET functional_minor = functional_minor + 1 "
            "WHERE entry_id = 'usage/A/2026-03-02' AND account = ?",
            (policy.accounts.deferred_revenue,))
    rows = {row["method"]: row for row in waterfall(sqlite_store, "2026-03", policy,
                                                    functional=True)}
    # The ledger's 20.33 against the lots' 20.34: the -0.01 goes by largest remainder to
    # the biggest column (May: 13.00 of 20.34 by expiry, 16.66 by forecast).
    expiry, forecast = rows["contractual expiry"], rows["burn forecast"]
    assert (expiry["2026-05"], expiry["2026-06"], expiry["total"]) == ("12.99", "7.34", "20.33")
    assert (forecast["2026-04"], forecast["2026-05"], forecast["total"]) == (
        "3.68", "16.65", "20.33")
