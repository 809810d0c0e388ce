"""Audit trace on the hand-worked scenario: usage to revenue and back, with the figures."""

from __future__ import annotations

import csv
import json

import pytest

import reports.trace
from reports.trace import (
    TraceKindError,
    TraceNotFoundError,
    trace_customer,
    trace_entry,
    trace_purchase,
    trace_sample,
    trace_usage,
)
from tests.support.cli import creditbooks
from tests.support.entry_kinds import post_entry_kinds_scenario
from tests.support.scenario import run_nights, write_scenario


@pytest.fixture
def books(sqlite_store, policy, tmp_path):
    write_scenario(tmp_path / "landing")
    run_nights(sqlite_store, policy, tmp_path)
    return sqlite_store


def test_a_usage_event_traces_to_its_bucket_slices_entry_and_share(books, tmp_path):
    document = trace_usage(books, tmp_path / "archive", "U6")  # A, Feb 1 13:00, gpu, 4 credits
    event = document["event"]
    assert (event["customer_id"], event["meter"], event["credits"], event["batch_id"]) == (
        "A", "gpu", "4", "nightly-2026-02-01")
    assert (event["source_file"], event["source_row"]) == ("usage.csv", 2)
    assert len(event["input_sha256"]) == 64
    assert document["customer_day_bucket"] == [{"meter": "api", "events": 1, "credits": "0.5"},
                                               {"meter": "gpu", "events": 1, "credits": "4"}]
    carried = {"rate_card_version": "(none: the usage carried credits)"}  # no rate card
    assert document["burn_slices"] == [
        {"purchase_id": "P-A", "meter": "api", "currency": "USD", "credits": "0.5", "value": "0.16",
         **carried},
        {"purchase_id": "P-B", "meter": "gpu", "currency": "USD", "credits": "2", "value": "4.00",
         **carried},
        {"purchase_id": "P-G", "meter": "gpu", "currency": "USD", "credits": "2", "value": "0.00",
         **carried}]
    assert document["entry"]["entry_id"] == "usage/A/2026-02-01"
    assert [(line["account"], line["amount"]) for line in document["entry_lines"]] == [
        ("Liabilities:DeferredRevenue:Credits", "0.16"), ("Liabilities:DeferredRevenue:Credits", "4.00"),
        ("Income:Revenue:Usage", "-0.16"), ("Income:Revenue:Usage", "-4.00")]
    assert document["event_share"] == [{"currency": "USD", "meter_value": "4.00",
                                        "event_share": "4.00",
                                        "fraction_of_meter_credits": "4000000/4000000"}]
    with pytest.raises(TraceNotFoundError, match="never accepted"):
        trace_usage(books, tmp_path / "archive", "U8")  # the quarantined row


def test_an_entry_leads_back_to_its_events_and_lots(books, tmp_path):
    document = trace_entry(books, tmp_path / "archive", "usage/A/2026-02-01",
                           events_csv=tmp_path / "events.csv")
    assert document["entry"]["policy_version"] and document["entry"]["seal_sequence"]
    assert document["usage_event_count"]["events"] == 2
    with (tmp_path / "events.csv").open() as handle:
        assert sorted(row["event_id"] for row in csv.DictReader(handle)) == ["U5", "U6"]
    purchase = trace_entry(books, tmp_path / "archive", "purchase/P-A")
    assert purchase["source"]["purchase_id"] == "P-A"
    breakage = trace_entry(books, tmp_path / "archive", "breakage/P-A")
    assert breakage["lot_life"]["ties_out"]["holds"] is True


def test_a_purchase_shows_its_whole_life_and_ties_out(books):
    life = trace_purchase(books, "P-A")
    assert [(row["business_date"], row["meter"], row["credits"], row["value"])
            for row in life["burn_slices_by_day"]] == [
        ("2026-01-30", "api", "1", "0.33"), ("2026-01-31", "gpu", "1", "0.34"),
        ("2026-02-01", "api", "0.5", "0.16")]
    assert life["expiry"] == [{"business_date": "2026-02-01", "credits": "0.5", "breakage": "0.17"}]
    assert life["ties_out"]["proof"] == ("0.83 usage + 0.00 refunds + 0.17 breakage + 0.00 escheat"
                                         " + 0.00 left = 1.00 against 1.00")
    assert life["ties_out"]["holds"] is True
    assert [line["amount"] for line in life["purchase_entry_lines"]] == ["1.08", "-1.00", "-0.08"]


def test_a_customer_period_shows_opening_closing_and_activity(books):
    february = trace_customer(books, "A", "2026-02")
    assert february["opening"] == [{"currency": "USD", "credits": "13", "value": "20.33"}]
    assert february["closing"] == [{"currency": "USD", "credits": "8", "value": "16.00"}]
    assert [(row["entry_id"], row["amount"]) for row in february["entries"]] == [
        ("breakage/P-A", "0.17"), ("usage/A/2026-02-01", "4.16")]


@pytest.mark.slow  # over a second here: not in make test-fast
def test_trace_sample_is_reproducible_from_its_seed(tmp_path):
    write_scenario(tmp_path / "landing")
    creditbooks("init", cwd=tmp_path)
    creditbooks("nightly", "--from", "2026-01-30", "--to", "2026-02-01", cwd=tmp_path)
    first = creditbooks("trace", "sample", "--period", "2026-01", "--n", "2", "--seed", "7",
                        "--format", "json", cwd=tmp_path).stdout
    again = creditbooks("trace", "sample", "--period", "2026-01", "--n", "2", "--seed", "7",
                        "--format", "json", cwd=tmp_path).stdout
    document = json.loads(first)
    assert first == again
    assert document["sample"]["events_drawn_from"] == 5  # U1 U2 U3 U4 U7
    assert len(document["usage_events"]) == 2 and len(document["revenue_lines"]) == 2
    picked = {event["event"]["event_id"] for event in document["usage_events"]}
    assert picked <= {"U1", "U2", "U3", "U4", "U7"}
    table = creditbooks("trace", "usage", "U1", cwd=tmp_path).stdout
    assert "usage/A/2026-01-30" in table and "0.33" in table


def test_a_sample_covers_every_kind_of_revenue_in_the_period(books, tmp_path):
    # February's revenue lines: usage/A/2026-02-01 (api 0.16, gpu 4.00) and breakage/P-A
    # (0.17, P-A's expiry); usage outnumbers breakage, yet each seed's one line per kind
    # includes the breakage line.
    for seed in range(1, 6):
        sample = trace_sample(books, tmp_path / "archive", "2026-02", 1, seed)
        picked = [(line["entry_id"], line["line"]) for line in sample["revenue_lines"]]
        assert picked[0] == ("breakage/P-A", 2), seed
        assert len(picked) == 2 and picked[1][0] == "usage/A/2026-02-01"
        assert [line["revenue"] for line in sample["revenue_lines"]] == ["breakage", "usage"]
        breakage = sample["revenue_lines"][0]
        assert breakage["lines"][1] == {"line": 2, "account": "Income:Revenue:Breakage",
                                        "currency": "USD", "amount": "-0.17", "meter": "",
                                        "purchase_id": "P-A"}
        assert breakage["lot_life"]["ties_out"]["breakage"] == "0.17"
        assert sample["sample"]["revenue_lines_by_kind"] == "usage 2; breakage 1"
        assert sample == trace_sample(books, tmp_path / "archive", "2026-02", 1, seed)
    # More lines asked for than kinds: the rest come from all lines, each line once.
    every = trace_sample(books, tmp_path / "archive", "2026-02", 5, 3)["revenue_lines"]
    assert sorted((line["entry_id"], line["line"]) for line in every) == [
        ("breakage/P-A", 2), ("usage/A/2026-02-01", 3), ("usage/A/2026-02-01", 4)]


@pytest.fixture
def kinds(sqlite_store, tmp_path):
    """tests/support/entry_kinds.py: a cost, an escheat, an overage and an FX entry."""
    return sqlite_store, post_entry_kinds_scenario(sqlite_store, tmp_path)


def traced(kinds, tmp_path, entry_id: str) -> dict:
    store, policy = kinds
    return trace_entry(store, tmp_path / "archive", entry_id, accounts=policy.accounts,
                       functional_currency=policy.functional_currency)


def amounts(document: dict) -> list[tuple[str, str]]:
    return [(line["account"], line["amount"]) for line in document["lines"]]


def test_a_cost_entry_traces_to_its_cost_line(kinds, tmp_path):
    document = traced(kinds, tmp_path, "cost/K1")
    assert document["cost"] == {"cost_id": "K1", "cost_date": "2026-03-30", "meter": "gpu",
                                "cost_type": "variable", "vendor": "cloud", "memo": "gpu hours",
                                "amount": "0.30", "currency": "USD"}
    assert amounts(document) == [("Expenses:CostOfRevenue:Serving", "0.30"),
                                 ("Liabilities:AccruedCosts:Serving", "-0.30")]
    assert "lots_burned" not in document


def test_an_escheat_entry_traces_to_its_lots_expiry(kinds, tmp_path):
    document = traced(kinds, tmp_path, "escheat/P-D")
    assert document["expiry"] == {
        "purchase_id": "P-D", "customer_id": "D", "country": "DE",
        "expires_at": "2026-03-31T12:00:00+00:00", "expired_on": "2026-03-31", "credits": "2",
        "value": "2.00", "destination": "escheat", "currency": "USD"}
    assert amounts(document) == [("Liabilities:DeferredRevenue:Credits", "2.00"),
                                 ("Liabilities:UnclaimedProperty:Credits", "-2.00")]


@pytest.mark.slow  # over a second here: not in make test-fast
def test_an_overage_entry_traces_to_its_charges(kinds, tmp_path):
    document = traced(kinds, tmp_path, "overage/A/2026-03-30")
    assert document["overage_charges"] == [{"meter": "api", "credits": "1",
                                            "price_per_credit": "0.015", "amount": "0.02",
                                            "currency": "USD"}]
    assert amounts(document) == [("Assets:Receivables:Customers", "0.02"),
                                 ("Income:Revenue:Overage", "-0.02")]


def test_an_fx_entry_traces_to_its_rate_and_the_cash_and_tax_it_remeasured(kinds, tmp_path):
    document = traced(kinds, tmp_path, "fx/2026-03/EUR")
    assert document["remeasurement"] == {
        "currency": "EUR", "rate_id": "2026-03-31/EUR", "rate_to_functional": "1.2",
        "functional_currency": "USD", "unrealised_gain_or_loss": "1.00"}
    # Sales tax payable is monetary too (ASC 830; IAS 21.23): at the closing rate.
    assert document["remeasured_balances"] == [
        {"account": "Assets:Cash:Clearing", "balance": "12.00", "carried_functional": "13.20",
         "remeasured_functional": "14.40", "balance_at_rate": "14.40", "holds": True},
        {"account": "Liabilities:Tax:Sales", "balance": "-2.00", "carried_functional": "-2.20",
         "remeasured_functional": "-2.40", "balance_at_rate": "-2.40", "holds": True}]
    assert amounts(document) == [("Assets:Cash:Clearing", "0.00"),
                                 ("Liabilities:Tax:Sales", "0.00"),
                                 ("Income:ForeignExchange:Unrealised", "0.00")]


def test_an_entry_of_a_kind_trace_does_not_know_is_refused_in_one_line(kinds, tmp_path,
                                                                        monkeypatch):
    real_entry = reports.trace._entry

    def of_unknown_kind(store, entry_id):
        facts, lines = real_entry(store, entry_id)
        return {**facts, "kind": "mystery"}, lines

    monkeypatch.setattr(reports.trace, "_entry", of_unknown_kind)
    with pytest.raises(TraceKindError, match=r"^trace entry cannot trace entry 'cost/K1': its "
                                             r"kind 'mystery' is not one it knows$"):
        traced(kinds, tmp_path, "cost/K1")
