"""Unit economics on the hand-worked scenario plus cost lines, every figure worked by hand.

Costs (USD): K1 gpu 0.30 variable on Jan 31; K2 `*` 1.00 variable on Jan 31; K3 `*` 10.00
fixed on Jan 30. Credits burned Jan 31: gpu 1 (A), api 0.5 (B), so K2 splits
1.00 x 0.5/1.5 = 0.333 and 1.00 x 1/1.5 = 0.667: floors 33 and 66, the last cent to the
larger remainder (gpu): api 0.33, gpu 0.67. Jan 30 burned only api: K3 all to api.
January: costs 11.30 (variable 1.30); credits burned 1 + 33.333333 + 1 + 0.5 = 35.833333;
USD usage revenue 0.67 on 2 paid USD credits: price 0.335000; cost per credit
11.30 / 35.833333 = 0.315349; variable 1.30 / 35.833333 = 0.036279; gross margin per credit
0.298721 (89.17 %); profit per credit (0.67 + 5.00 - 11.30) / 35.833333 = -0.157116.
Active customers A, B, D (D's usage was uncovered but it is usage): 3; events 5.
Burstiness, api in January: hours 10:00 Jan 30 (1 + 33.333333), 23:00 Jan 29 (0.5, late),
06:00 Jan 31 (7): peak 34.333333; average 41.833333 / 744 hours = 0.056228; ratio
34.333333 x 744 / 41.833333 = 610.6135: 610.61.
Runway at the end of January: A 13 credits at 2 / 30 a day = 195.0 days; B 66.166667 at
33.833333 / 30 = 58.7 days. Expansion in February: A burned 2 in January, 4.5 in
February: +125.00 %.
"""

from __future__ import annotations

import csv
from datetime import date
from decimal import Decimal

import pytest

from creditbooks.night.run import run_night
from reports.kpis import allocated_costs, burstiness, credit_runway, kpi_summary, kpis_by
from reports.statements import trial_balance
from rules.policy import load_policy, policy_from_document
from tests.support.close import close
from tests.support.landing import write_document
from tests.support.nights import post_days
from tests.support.scenario import NIGHTS, run_nights, write_scenario


def cost(cost_id, on, meter, amount, cost_type="variable", currency="USD"):
    return {"cost_id": cost_id, "date": on, "meter": meter, "amount": amount, "currency": currency,
            "cost_type": cost_type, "vendor": "cloud", "memo": ""}


def write_costs(landing):
    write_document(landing, "2026-01-31", "costs", [
        cost("K1", "2026-01-31", "gpu", "0.30"), cost("K2", "2026-01-31", "*", "1.00"),
        cost("K3", "2026-01-30", "*", "10.00", "fixed"),
        cost("K9", "2026-01-31", "api", "1.00", currency="USX")])


@pytest.fixture
def books(store, policy, tmp_path):
    write_scenario(tmp_path / "landing")
    write_costs(tmp_path / "landing")
    run_nights(store, policy, tmp_path)
    return store


def summary_of(store, period, policy):
    return {(row["metric"], row["currency"]): row[f"this_period ({period})"]
            for row in kpi_summary(store, period, policy)}


def test_a_shared_cost_line_is_allocated_exactly_by_credits_burned_that_day(books):
    allocated = allocated_costs(books, "2026-01")
    assert sorted(map(tuple, allocated[["cost_id", "meter", "amount_minor"]].values.tolist())) == [
        ("K1", "gpu", 30), ("K2", "api", 33), ("K2", "gpu", 67), ("K3", "api", 1000)]


@pytest.mark.slow  # over a second here: not in make test-fast
def test_unit_economics_of_january_by_hand(books, policy):
    kpis = summary_of(books, "2026-01", policy)
    assert kpis[("credits burned", "")] == "35.833333"
    assert kpis[("usage events", "")] == "5"
    assert kpis[("active customers", "")] == "3"
    assert kpis[("new active customers", "")] == "3"
    assert kpis[("average credits burned per active customer", "")] == "11.944444"
    assert kpis[("usage revenue", "USD")] == "0.67"
    assert kpis[("costs", "USD")] == "11.30"
    assert kpis[("effective price per credit", "USD")] == "0.335000"
    assert kpis[("cost per credit", "USD")] == "0.315349"
    assert kpis[("gross margin per credit", "USD")] == "0.298721"
    assert kpis[("gross margin %", "USD")] == "89.17"
    assert kpis[("profit per credit", "USD")] == "-0.157116"
    assert kpis[("breakage rate of expired lots", "USD")] == "1.0000"
    assert kpis[("effective price per credit", "JPY")] == "9.990148"
    assert kpis[("cost per credit", "JPY")] == ""  # no JPY cost lines: unknown, not free
    assert kpis[("top 5 customers' share of credits burned", "")] == "1.0000"
    february = summary_of(books, "2026-02", policy)
    assert february[("expansion usage % of existing customers", "")] == "125.00"
    assert february[("promotional share of credits burned", "")] == "0.4444"  # P-G 2 of 4.5


@pytest.mark.slow  # over a second here: not in make test-fast
def test_revenue_above_the_base_tier_follows_the_policy_price(books):
    document = {"kpis": {"base_tier_price_per_credit": {"USD": "0.34"}}}
    cheap_base = policy_from_document(document)  # P-A at 0.3333 a credit is below 0.34
    assert summary_of(books, "2026-01", cheap_base)[
        ("share of usage revenue above the base tier", "USD")] == "1.0000"
    assert summary_of(books, "2026-01", load_policy())[
        ("share of usage revenue above the base tier", "USD")] == "0.0000"


def test_kpis_by_meter_carry_allocated_costs_and_margin(books):
    by_meter = {(row["meter"], row["currency"]): row for row in kpis_by(books, "2026-01", "meter")}
    api = by_meter[("api", "USD")]
    assert (api["credits_burned"], api["usage_revenue"], api["price_per_credit"], api["costs"],
            api["cost_per_credit"], api["gross_margin_per_credit"]) == (
        "1", "0.33", "0.330000", "10.33", "0.296555", "0.320526")
    gpu = by_meter[("gpu", "USD")]
    assert (gpu["costs"], gpu["cost_per_credit"], gpu["gross_margin_per_credit"]) == (
        "0.97", "0.970000", "-0.630000")
    assert "costs" not in by_meter[("api", "JPY")]


def test_burstiness_and_runway_by_hand(books, tmp_path):
    meters = {row["meter"]: row for row in burstiness(books, "2026-01", tmp_path / "archive", "UTC")}
    assert meters["api"] == {"meter": "api", "peak_hourly_credits": "34.333333",
                             "average_hourly_credits": "0.056228", "peak_to_average": "610.61"}
    assert meters["gpu"]["peak_to_average"] == "744.00"
    runway = {row["customer_id"]: row for row in credit_runway(books, "2026-01")}
    assert (runway["A"]["credits_remaining"], runway["A"]["days_left"]) == ("13", "195.0")
    assert (runway["B"]["days_left"], runway["B"]["top_up_soon"]) == ("58.7", False)


@pytest.mark.slow  # over a second here: not in make test-fast
def test_cost_lines_are_quarantined_and_deduplicated_like_every_input(sqlite_store, policy,
                                                                      tmp_path):
    write_scenario(tmp_path / "landing")
    write_costs(tmp_path / "landing")
    write_document(tmp_path / "landing", "2026-02-01", "costs", [cost("K1", "2026-01-31", "gpu", "0.30"),
                                                                 cost("K2", "2026-01-31", "*", "2.00")])
    outcomes = run_nights(sqlite_store, policy, tmp_path)
    january_31 = next(doc for doc in outcomes[1].documents if doc.document == "costs")
    assert (january_31.rows_read, january_31.accepted, january_31.rejected) == (4, 3, 1)
    february_1 = next(doc for doc in outcomes[2].documents if doc.document == "costs")
    assert (february_1.duplicates, february_1.rejected) == (1, 1)  # K1 again; K2 changed
    reasons = sqlite_store.read_frame("SELECT reason FROM quarantine WHERE document = 'costs' "
                                      "ORDER BY business_date")["reason"].tolist()
    assert reasons == ["currency: is not an ISO 4217 currency with a minor unit",
                       "conflict: cost_id was accepted on 2026-01-31 with different contents; "
                       "not overwritten"]


@pytest.mark.slow  # over a second here: not in make test-fast
def test_costs_post_to_the_ledger_when_the_policy_says_so(sqlite_store, tmp_path):
    document = {"costs": {"post": True}}
    posting = policy_from_document(document)
    write_scenario(tmp_path / "landing")
    write_costs(tmp_path / "landing")
    for night in NIGHTS:
        run_night(sqlite_store, posting, tmp_path / "landing", tmp_path / "archive", night)
    balances = {(row["account"], row["currency"]): row["closing"]
                for row in trial_balance(sqlite_store, "2026-01")}
    assert balances[("Expenses:CostOfRevenue:Serving", "USD")] == "11.30"
    assert balances[("Liabilities:AccruedCosts:Serving", "USD")] == "-11.30"


@pytest.mark.slow  # over a second here: not in make test-fast
def test_the_close_package_carries_kpis_that_tie_to_the_revenue_reports(sqlite_store, policy,
                                                                        tmp_path):
    write_scenario(tmp_path / "landing")
    write_costs(tmp_path / "landing")
    post_days(sqlite_store, policy, tmp_path, date(2026, 1, 1), date(2026, 1, 31))
    package = close(sqlite_store, policy, tmp_path, "2026-01").package

    def rows(name):
        with (package / f"{name}.csv").open() as handle:
            return list(csv.DictReader(handle))

    kpis = {(row["metric"], row["currency"]): row["this_period (2026-01)"] for row in rows("kpis")}
    rollforward = {row["currency"]: row for row in rows("rollforward")}
    burned_by_customer = sum(Decimal(row["credits"]) for row in rows("revenue_by_customer"))
    assert kpis[("usage revenue", "USD")] == rollforward["USD"]["usage_revenue"] == "0.67"
    assert kpis[("usage revenue", "JPY")] == rollforward["JPY"]["usage_revenue"] == "338"
    assert Decimal(kpis[("credits burned", "")]) == burned_by_customer == Decimal("35.833333")
    assert {row["meter"] for row in rows("kpis_by_meter")} == {"api", "gpu"}
    html = (package / "summary.html").read_text()
    assert html.count('class="chart trend"') >= 5
    assert "Price vs cost per credit (USD)" in html and "Gross margin % (USD)" in html
