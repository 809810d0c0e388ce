"""The burn forecast values a lot a manual journal changed as the nights do (rules/lot_state.py).

Worked by hand (USD): P-V (customer V), 10 credits for 100.00, bought 2026-03-01 09:00,
expiring 2026-06-15. March 1: 3 credits used (30.00). MJ-V, dated March 1, writes 10.00
off it, so it carries 60.00 for its 7 credits left, and value to date = 30.00 +
round(6000 x consumed since / 7) minor units. March 2: 1 credit used: 30.00 + 8.57.
Closing deferred 2026-03: 100.00 - 38.57 - 10.00 = 51.43, 6 credits left.
Contractual expiry: June 51.43.
Burn forecast: V burned 1 credit in the trailing 30 days (March 2), so 1 credit per 30
days, taken from P-V (4 credits consumed so far):
  April 1 credit (-> 5): 30.00 + round(6000 x 2 / 7) = 47.14, less 38.57      -> 8.57
  May 31/30 credit (-> 6.033333): 30.00 + round(6000 x 3.033333 / 7) = 56.00 -> 8.86
  June 1 credit (-> 7.033333): 30.00 + round(6000 x 4.033333 / 7) = 64.57    -> 8.57
  and what it still holds lapses at its June expiry: 51.43 - 26.00 = 25.43; June 34.00.
Valued from the original amount, the lot would forecast 50.00 (100.00 - 40.00 - 10.00),
not its 51.43 deferred balance.
"""

from __future__ import annotations

from datetime import date

import pytest

from creditbooks.journals import approve, import_journals
from reports.waterfall import waterfall
from tests.support.landing import write_document
from tests.support.manual_journals import DEFERRED, journal_file
from tests.support.nights import post_days
from tests.support.scenario import purchase, usage


@pytest.mark.slow  # over a second here: not in make test-fast
def test_the_burn_forecast_values_a_written_down_lot_as_the_nights_do(sqlite_store, policy,
                                                                      tmp_path):
    landing = tmp_path / "landing"
    write_document(landing, "2026-03-01", "purchases", [purchase(
        "P-V", "V", "10", "100.00", purchased_at="2026-03-01T09:00:00Z",
        expires_at="2026-06-15T00:00:00Z")])
    write_document(landing, "2026-03-01", "usage", [usage("V1", "V", "2026-03-01T10:00:00Z",
                                                          "api", "3")])
    write_document(landing, "2026-03-02", "usage", [usage("V2", "V", "2026-03-02T10:00:00Z",
                                                          "api", "1")])
    post_days(sqlite_store, policy, tmp_path, date(2026, 3, 1), date(2026, 3, 1))
    import_journals(sqlite_store, policy, journal_file(tmp_path, [
        f"MJ-V,2026-03-01,{DEFERRED},USD,10.00,,price concession,V,P-V,",
        "MJ-V,2026-03-01,Assets:Cash:Clearing,USD,,10.00,price concession,V,,"]), "alice")
    approve(sqlite_store, policy, "MJ-V", "bob")
    post_days(sqlite_store, policy, tmp_path, date(2026, 3, 2), date(2026, 3, 2))

    for functional in (False, True):
        rows = {row["method"]: row for row in waterfall(sqlite_store, "2026-03", policy,
                                                        functional=functional)}
        expiry, forecast = rows["contractual expiry"], rows["burn forecast"]
        assert (expiry["2026-06"], expiry["total"]) == ("51.43", "51.43")
        assert (forecast["2026-04"], forecast["2026-05"], forecast["2026-06"],
                forecast["2026-07"], forecast["thereafter"], forecast["total"]) == (
            "8.57", "8.86", "34.00", "0.00", "0.00", "51.43")
