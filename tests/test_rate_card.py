"""Unrated usage (issue 23): the policy's versioned [rate_card] prices a metering system's raw
quantities in credits (rules/rate_card.py), exactly, rounded half to even to the
micro-credit, with graduated tiers per event; the card's version is on every burn slice.

The day below is written twice: as CloudEvents carrying raw quantities with the rate card,
and as the CSV contract carrying the credits worked out by hand. Both post the same books.
"""

from __future__ import annotations

import json
import random
import tomllib
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

import pandas as pd
import pytest

from intake.sources import read_usage_source
from ledger.chain import chain_head
from reports.subledger import exceptions, lot_balances
from reports.trace import trace_purchase, trace_usage
from rules.policy import DEFAULT_POLICY_FILE, PolicyError, load_policy, policy_from_document
from rules.rate_card import MeterRate, RateCard, Tier
from tests.support.landing import write_document
from tests.support.nights import post_days
from tests.support.scenario import purchase, trial_balance_of

PURCHASE_DAY, USAGE_DAY = date(2026, 1, 30), date(2026, 1, 31)
RATE_CARD = {
    "version": "2026-01",
    "meters": {
        "api": {"credits_per_unit": "0.5"},
        # Graduated: the first unit at 2, units above 1 up to 10 at 1.5, above 10 at 1.
        "gpu": {"credits_per_unit": "2", "tiers": [{"above": "1", "credits_per_unit": "1.5"},
                                                   {"above": "10", "credits_per_unit": "1"}]},
        "tokens": {"credits_per_unit": "0.0000025"},
        "search": {"credits_per_unit": "0.333333333333"},
    },
}
CARD = RateCard("2026-01", {
    "api": MeterRate(Decimal("0.5")),
    "gpu": MeterRate(Decimal("2"), (Tier(Decimal("1"), Decimal("1.5")),
                                    Tier(Decimal("10"), Decimal("1")))),
    "tokens": MeterRate(Decimal("0.0000025")),
    "search": MeterRate(Decimal("0.333333333333")),
})
# (id, customer, meter, quantity as the source writes it, credits worked out by hand)
DAY = [
    ("E-1", "A", "api", 3, "1.5"),          # 3 x 0.5
    ("E-2", "A", "gpu", "12.5", "18"),      # 1 x 2 + 9 x 1.5 + 2.5 x 1 = 2 + 13.5 + 2.5
    ("E-3", "B", "tokens", 1234567, "3.086418"),    # 3.0864175: a tie, to the even 8
    ("E-4", "B", "tokens", "1234565", "3.086412"),  # 3.0864125: a tie, to the even 2
    ("E-5", "A", "gpu", 0.5, "1"),          # within the first band: 0.5 x 2
    ("E-6", "A", "tokens", 333, "0.000832"),        # 0.0008325: a tie, to the even 2
    ("E-7", "B", "search", 2, "0.666667"),  # 0.666666666666: not a tie, up
]


def cloud_event(event_id, customer, meter, quantity, time="2026-01-31T09:00:00Z") -> str:
    return json.dumps({"specversion": "1.0", "id": event_id, "source": "gateway", "type": meter,
                       "subject": customer, "time": time, "data": {"value": quantity}})


def policy_document(rated: bool) -> dict:
    document = tomllib.loads(DEFAULT_POLICY_FILE.read_text(encoding="utf-8"))
    document["rate_card"] = RATE_CARD
    if rated:
        document["sources"] = {"usage": {"format": "cloudevents", "quantity": "data.value",
                                         "rated": True}}
    return document


def land_purchases(root: Path) -> None:
    write_document(root / "landing", PURCHASE_DAY.isoformat(), "purchases", [
        purchase("P-A", "A", "100", "100.00"), purchase("P-B", "B", "20", "10.00")])


def land_events(root: Path, lines: list[str]) -> None:
    directory = root / "landing" / USAGE_DAY.isoformat()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "usage.jsonl").write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def books(store) -> dict:
    with store.engine.connect() as connection:
        head = chain_head(connection)
    return {"trial balance": trial_balance_of(store, "2026-01"), "lots": lot_balances(store),
            "chain head": (head.sequence, head.chain_hash)}


def burn_slices(store) -> pd.DataFrame:
    return store.read_frame("SELECT customer_id, purchase_id, meter, credits_micro, value_minor, "
                            "rate_card_version FROM burn_slices ORDER BY customer_id, meter")


@pytest.fixture
def rated_store(store_type_path):
    store, root = store_type_path("rated")
    land_purchases(root)
    land_events(root, [cloud_event(event_id, customer, meter, quantity)
                       for event_id, customer, meter, quantity, _ in DAY])
    post_days(store, policy_from_document(policy_document(rated=True), "policy.toml"), root,
              PURCHASE_DAY, USAGE_DAY)
    return store, root


@pytest.fixture
def store_type_path(sqlite_store, tmp_path):
    def make(name: str):
        store = type(sqlite_store)(f"sqlite:///{tmp_path / f'{name}.db'}")
        store.initialise()
        return store, tmp_path / name
    return make


@pytest.mark.slow  # two nights twice: over a second here
def test_raw_quantities_and_a_rate_card_post_the_same_books_as_the_credits_in_the_contract(
        rated_store, store_type_path):
    contract_store, root = store_type_path("contract")
    land_purchases(root)
    write_document(root / "landing", USAGE_DAY.isoformat(), "usage", [
        {"event_id": event_id, "customer_id": customer, "occurred_at": "2026-01-31T09:00:00Z",
         "meter": meter, "credits": credits} for event_id, customer, meter, _, credits in DAY])
    contract_policy = policy_from_document(policy_document(rated=False), "policy.toml")
    post_days(contract_store, contract_policy, root, PURCHASE_DAY, USAGE_DAY)
    store, _ = rated_store

    # The version names the rules (the rate card among them), not where files come from.
    assert contract_policy.version == policy_from_document(policy_document(True)).version
    # The chain seals entries, which carry no rate card version: the heads are equal too.
    assert books(store) == books(contract_store)
    assert exceptions(store) == [] and exceptions(contract_store) == []
    # The figures, so that equal books cannot be two empty ones: A used 20.500832 credits of
    # 100 bought for 100.00 (20.50), B 6.839497 of 20 for 10.00 (3.4197485: 3.42).
    trial_balance = books(store)["trial balance"]
    assert trial_balance[("Income:Revenue:Usage", "USD")][3] == "-23.92"
    rated, carried = burn_slices(store), burn_slices(contract_store)
    assert rated["credits_micro"].tolist() == [1_500_000, 19_000_000, 832, 666_667, 6_172_830]
    assert rated.drop(columns="rate_card_version").equals(
        carried.drop(columns="rate_card_version"))
    assert rated["rate_card_version"].tolist() == ["2026-01"] * 5
    assert carried["rate_card_version"].isna().all()


def test_trace_shows_the_rate_card_that_priced_a_burn(rated_store):
    store, root = rated_store
    document = trace_usage(store, root / "archive", "E-2")
    assert document["event"]["credits"] == "18"
    assert {(row["meter"], row["rate_card_version"]) for row in document["burn_slices"]} == {
        ("api", "2026-01"), ("gpu", "2026-01"), ("tokens", "2026-01")}
    life = trace_purchase(store, "P-B")
    assert [(row["meter"], row["credits"], row["rate_card_version"])
            for row in life["burn_slices_by_day"]] == [
        ("search", "0.666667", "2026-01"), ("tokens", "6.17283", "2026-01")]


def rated(meters: list[str], quantities: list[str]) -> pd.DataFrame:
    return CARD.rate(pd.Series(meters, dtype=object), pd.Series(quantities, dtype=object))


def test_graduated_tiers_are_computed_exactly_on_a_hand_worked_example():
    quantities = ["0.5", "1", "1.000001", "10", "12.5", "1000"]
    result = rated(["gpu"] * len(quantities), quantities)
    # 0.5 x 2; 1 x 2; 2 + 0.000001 x 1.5 = 2.0000015 (a tie, to the even 2.000002);
    # 2 + 9 x 1.5; 2 + 13.5 + 2.5 x 1; 2 + 13.5 + 990 x 1.
    assert result["credits_micro"].tolist() == [1_000_000, 2_000_000, 2_000_002, 15_500_000,
                                                18_000_000, 1_005_500_000]
    assert (result["problem"] == "").all()


def test_fractional_credits_are_rounded_half_to_even_to_the_micro_credit():
    result = rated(["tokens", "tokens", "tokens", "tokens", "search", "api"],
                   ["1234567", "1234565", "1", "3", "2", "0.000001"])
    # 3.0864175 -> 3.086418 and 3.0864125 -> 3.086412 (ties to even, where half up would give
    # ...413); 0.0000025 -> 0.000002; 0.0000075 -> 0.000008; 0.666666666666 -> 0.666667;
    # 0.0000005 -> 0 (a tie, to the even 0: refused, below).
    assert result["credits_micro"].tolist() == [3_086_418, 3_086_412, 2, 8, 666_667, 0]
    assert result["problem_role"].tolist() == ["", "", "", "", "", "quantity"]


def test_rating_matches_decimal_arithmetic_on_many_quantities():
    generator = random.Random(23)
    meters = [generator.choice(["api", "gpu", "tokens", "search"]) for _ in range(2_000)]
    quantities = [f"{generator.randrange(0, 10**6)}.{generator.randrange(0, 10**6):06d}"
                  for _ in meters]
    expected = []
    for meter, quantity in zip(meters, quantities, strict=True):  # the reference, one by one
        rate, units, credits = CARD.meters[meter], Decimal(quantity), Decimal(0)
        bands = [(Decimal(0), rate.credits_per_unit), *((tier.above_units, tier.credits_per_unit)
                                                         for tier in rate.tiers)]
        for number, (start, per_unit) in enumerate(bands):
            end = bands[number + 1][0] if number + 1 < len(bands) else units
            credits += max(Decimal(0), min(units, end) - start) * per_unit
        expected.append(int(credits.quantize(Decimal("0.000001"), ROUND_HALF_EVEN) * 10**6))
    result = rated(meters, quantities)
    priced = result["problem_role"] == ""
    assert result["credits_micro"][priced].tolist() == [
        value for value, ok in zip(expected, priced, strict=True) if ok]
    assert set(result.loc[~priced, "problem_role"]) <= {"quantity"}  # rated to 0 only
    assert priced.sum() > 1_900


def test_what_cannot_be_rated_says_why():
    result = rated(["api", "api", "api", "storage", "", "api", "search"],
                   ["ten", "", "1.0000001", "5", "5", "0", "9999999999"])
    assert list(zip(result["problem_role"], result["problem"], strict=True)) == [
        ("quantity", "is not a decimal number"),
        ("quantity", "is required: the rate card prices it"),
        ("quantity", "has more than 6 decimal places"),
        ("meter", "is not a meter of rate card 2026-01 (add it under [rate_card.meters] or "
                  "correct the event)"),
        ("", ""),  # no meter: the contract's own check names it
        ("quantity", "rates to 0 credits at rate card 2026-01 (rounded half to even to 6 decimal "
                     "places); usage must carry credits"),
        ("quantity", "rates to more than 1,000,000,000 credits, the most one event may carry"),
    ]
    assert (result["credits_micro"] == 0).all()


def test_quantities_in_json_exponent_form_are_rated_exactly_and_a_negative_one_is_named(
        tmp_path):
    source = policy_from_document(policy_document(rated=True), "policy.toml").usage_source
    template = ('{"specversion":"1.0","id":"E-%s","source":"gw","type":"%s","subject":"A",'
                '"time":"2026-01-31T09:00:00Z","data":{"value":%s}}\n')
    events = [("api", "1e3"), ("gpu", "1.5e1"), ("api", "1E+2"), ("tokens", "4e-1"),
              ("api", "1e-07"), ("api", "-5"), ("api", "1e+21")]
    path = tmp_path / "usage.jsonl"
    path.write_text("".join(template % (number, meter, value)
                            for number, (meter, value) in enumerate(events, start=1)))
    read = read_usage_source(path, source)
    # 1000 x 0.5; 1 x 2 + 9 x 1.5 + 5 x 1; 100 x 0.5; 0.4 x 0.0000025 = 0.000001
    assert read.frame["credits"].tolist() == ["500.000000", "20.500000", "50.000000",
                                              "0.000001", "", "", ""]
    assert read.frame["quantity"].tolist()[:5] == ["1000", "15", "100", "0.4", "0.0000001"]
    assert list(zip(read.rating["problem_role"], read.rating["problem"], strict=True))[4:] == [
        ("quantity", "has more than 6 decimal places"),
        ("quantity", "must be positive: a number of units"),
        ("quantity", "is more units than the books can hold")]


def test_a_missing_meter_and_a_bad_quantity_are_quarantined_naming_the_source_field(
        sqlite_store, tmp_path):
    land_purchases(tmp_path)
    good = [cloud_event(event_id, customer, meter, quantity)
            for event_id, customer, meter, quantity, _ in DAY]
    bad = [cloud_event("E-8", "A", "storage", 5),
           cloud_event("E-9", "A", "api", "ten"),
           cloud_event("E-10", "A", "api", 0),
           cloud_event("E-11", "A", "storage", 5, time="yesterday"),
           json.dumps({"specversion": "1.0", "id": "E-12", "source": "gateway", "type": "api",
                       "subject": "A", "time": "2026-01-31T09:00:00Z", "data": {}})]
    land_events(tmp_path, good + bad)
    post_days(sqlite_store, policy_from_document(policy_document(rated=True), "policy.toml"),
              tmp_path, PURCHASE_DAY, USAGE_DAY)

    counts = sqlite_store.read_frame(
        "SELECT rows_read, rows_accepted, rows_duplicate, rows_rejected FROM batch_files "
        "WHERE document = 'usage'").iloc[0].tolist()
    assert counts == [12, 7, 0, 5]
    not_a_meter = ("type: is not a meter of rate card 2026-01 (add it under [rate_card.meters] "
                   "or correct the event)")
    quarantined = sorted(((row["source"], row["column"], row["reason"], row["raw_values"])
                          for row in exceptions(sqlite_store) if row["kind"] == "rejected"),
                         key=lambda row: int(row[0].rsplit(" ", 1)[1]))
    assert quarantined == [
        ("usage.jsonl row 8", "type", not_a_meter, bad[0]),
        ("usage.jsonl row 9", "data.value", "data.value: is not a decimal number", bad[1]),
        ("usage.jsonl row 10", "data.value",
         "data.value: rates to 0 credits at rate card 2026-01 (rounded half to even to 6 "
         "decimal places); usage must carry credits", bad[2]),
        ("usage.jsonl row 11", "time", f"time: must be an ISO 8601 timestamp; {not_a_meter}",
         bad[3]),
        ("usage.jsonl row 12", "data.value",
         "data.value: is required: the rate card prices it", bad[4]),
    ]


@pytest.mark.parametrize(("rate_card", "sources", "message"), [
    ({"meters": {"api": {"credits_per_unit": "1"}}}, None,
     '[rate_card] version is required: name this card\'s rates (e.g. "2026-01"); every burn '
     "slice it rates records it"),
    ({"version": "v1", "meters": {"api": {"credits_per_unit": 0.5}}}, None,
     '[rate_card.meters.api] credits_per_unit must be credits per unit as a decimal string '
     'such as "0.002", not 0.5'),
    ({"version": "v1", "meters": {"api": {"credits_per_unit": "0.0000000000001"}}}, None,
     "[rate_card.meters.api] credits_per_unit must be above 0, below 1,000,000,000 and have "
     'at most 12 decimal places, not "0.0000000000001"'),
    ({"version": "v1", "meters": {"gpu": {"credits_per_unit": "2", "tiers": [
        {"above": "10", "credits_per_unit": "1"}, {"above": "5", "credits_per_unit": "1"}]}}},
     None, "[rate_card.meters.gpu] tiers entry 2: above must be greater than entry 1's (10), "
           'not "5"'),
    ({"version": "v1", "meters": {"gpu": {"credits_per_unit": "2", "tiers": [
        {"above": "10", "credits_per_unit": "0"}]}}},
     None, "[rate_card.meters.gpu] tiers entry 1: credits_per_unit must be above 0, below "
           '1,000,000,000 and have at most 12 decimal places, not "0"'),
    ({"version": "v1", "meters": {"gpu": {"rate": "2"}}}, None,
     "[rate_card.meters.gpu] rate is not a known key (known: credits_per_unit, tiers)"),
    (None, {"format": "cloudevents", "quantity": "data.value", "rated": True},
     "[sources.usage] rated needs a [rate_card] (its version and [rate_card.meters.NAME] "
     "rates) to turn quantities into credits"),
    (RATE_CARD, {"format": "cloudevents", "rated": True},
     "[sources.usage] rated needs the field that holds each event's quantity: set quantity = "
     '"data.value" (the field path of the raw quantity)'),
    (RATE_CARD, {"format": "cloudevents", "quantity": "data.value", "credits": "data.c",
                 "rated": True},
     "[sources.usage] credits is not read when rated = true: credits are the [rate_card] "
     "applied to the quantity field; remove credits or rated"),
])
def test_a_bad_rate_card_or_rated_source_is_refused_in_one_line(rate_card, sources, message):
    document = tomllib.loads(DEFAULT_POLICY_FILE.read_text(encoding="utf-8"))
    if rate_card is not None:
        document["rate_card"] = rate_card
    if sources is not None:
        document["sources"] = {"usage": sources}
    with pytest.raises(PolicyError) as refused:
        policy_from_document(document, "policy.toml")
    assert str(refused.value) == f"policy.toml: {message}"


def test_the_rate_card_is_read_from_the_policy_file(tmp_path):
    policy_file = tmp_path / "policy.toml"
    policy_file.write_text(
        '[sources.usage]\nformat = "lago"\nquantity = "properties.gb"\nrated = true\n\n'
        '[rate_card]\nversion = "2026-02"\n\n[rate_card.meters.storage]\n'
        'credits_per_unit = "0.25"\ntiers = [{ above = "100", credits_per_unit = "0.2" }]\n',
        encoding="utf-8")
    policy = load_policy(policy_file)
    assert policy.usage_source.rate_card_version == "2026-02"
    assert policy.usage_source.field_name("credits") == "properties.gb"
    assert policy.rate_card.meters["storage"] == MeterRate(
        Decimal("0.25"), (Tier(Decimal("100"), Decimal("0.2")),))
    assert load_policy().usage_source.rate_card_version is None  # the shipped policy: none
