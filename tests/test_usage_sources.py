"""Usage from a metering system (issue 23): CloudEvents (OpenMeter), Lago, Orb, Metronome and
Stripe meter events, each a preset of the policy's [sources.usage] mapping (intake/sources.py).

The samples in tests/fixtures/sources/ describe one day of usage, 2026-01-31, in each format
and as a contract CSV (usage.csv): the same six events, one of them late (occurred the day
before), one with a +02:00 offset, Orb's third event in UTC without an offset, Lago's fourth
timestamp a string. Every format must post the same books as the CSV, and keep the
contract's promises: counted, quarantined naming the SOURCE field, de-duplicated by the
source's own id, archived with the original file.
"""

from __future__ import annotations

import json
import shutil
import tomllib
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from intake.documents import InputFileError
from intake.sources import USAGE_SOURCE_PRESETS, read_usage_source
from ledger.archive_index import recorded_partitions
from ledger.chain import chain_head
from reports.controls import archive_matches_ledger
from reports.subledger import exceptions, lot_balances
from rules.policy import DEFAULT_POLICY_FILE, PolicyError, load_policy, policy_from_document
from tests.support.landing import write_document
from tests.support.nights import post_days
from tests.support.scenario import purchase, trial_balance_of

FIXTURES = Path(__file__).parent / "fixtures" / "sources"
FORMATS = ("cloudevents", "lago", "orb", "metronome", "stripe_meter_events")
PURCHASE_DAY, USAGE_DAY, NEXT_DAY = date(2026, 1, 30), date(2026, 1, 31), date(2026, 2, 1)
# Where each format keeps the time, the customer and the credits (as a problem names them).
TIME_FIELD = {"cloudevents": "time", "lago": "timestamp", "orb": "timestamp",
              "metronome": "timestamp", "stripe_meter_events": "timestamp"}
CUSTOMER_FIELD = {"cloudevents": "subject",
                  "lago": "external_customer_id or external_subscription_id",
                  "orb": "external_customer_id or customer_id", "metronome": "customer_id",
                  "stripe_meter_events": "payload.stripe_customer_id"}
CREDITS_FIELD = {"cloudevents": "data.value", "lago": "properties.credits",
                 "orb": "properties.credits", "metronome": "properties.credits",
                 "stripe_meter_events": "payload.value"}
ID_FIELD = {"cloudevents": "id", "lago": "transaction_id", "orb": "idempotency_key",
            "metronome": "transaction_id", "stripe_meter_events": "identifier"}
NOT_A_TIME = {"cloudevents": "must be an ISO 8601 timestamp",
              "lago": "is not a number of seconds since the Unix epoch",
              "orb": "must be an ISO 8601 timestamp",
              "metronome": "must be an ISO 8601 timestamp",
              "stripe_meter_events": "is not a number of seconds since the Unix epoch"}


def policy_for(format_name: str):
    """The shipped policy with [sources.usage] format set."""
    document = tomllib.loads(DEFAULT_POLICY_FILE.read_text(encoding="utf-8"))
    document["sources"] = {"usage": {"format": format_name}}
    return policy_from_document(document, source="policy.toml")


def land_purchases(root: Path) -> None:
    """The lots the day's usage burns: A's three (P-A expiring soonest, promotional P-G,
    P-B), C's P-M expiring at midnight after the usage day, B's JPY lot and its rates."""
    landing = root / "landing"
    write_document(landing, PURCHASE_DAY.isoformat(), "purchases", [
        purchase("P-A", "A", "3", "1.00", tax_amount="0.08", expires_at="2026-02-01T12:00:00Z"),
        purchase("P-B", "A", "10", "20.00"),
        purchase("P-G", "A", "2", "0", kind="promotional", product="promo"),
        purchase("P-M", "C", "5", "5.00", expires_at="2026-02-01T00:00:00Z"),
        purchase("P-J", "B", "100", "1000", currency="JPY"),
    ])
    for day in (PURCHASE_DAY, USAGE_DAY):
        write_document(landing, day.isoformat(), "fx_rates", [
            {"date": day.isoformat(), "currency": "JPY", "rate_to_functional": "0.0067"}])


def land_usage(root: Path, day: date, file_name: str, lines: list[str]) -> Path:
    directory = root / "landing" / day.isoformat()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / file_name
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def sample_lines(format_name: str) -> list[str]:
    return (FIXTURES / f"{format_name}.jsonl").read_text(encoding="utf-8").splitlines()


def books(store) -> dict:
    with store.engine.connect() as connection:
        head = chain_head(connection)
    return {"trial balance": trial_balance_of(store, "2026-01"), "lots": lot_balances(store),
            "chain head": (head.sequence, head.chain_hash)}


def new_store(store_type, path: Path):
    store = store_type(f"sqlite:///{path}")
    store.initialise()
    return store


@pytest.fixture
def contract_books(sqlite_store, tmp_path):
    """The books the contract CSV sample posts (and the quarantine it leaves: none)."""
    root = tmp_path / "contract"
    land_purchases(root)
    (root / "landing" / USAGE_DAY.isoformat()).mkdir(parents=True, exist_ok=True)
    shutil.copy(FIXTURES / "usage.csv", root / "landing" / USAGE_DAY.isoformat() / "usage.csv")
    post_days(sqlite_store, load_policy(), root, PURCHASE_DAY, USAGE_DAY)
    assert exceptions(sqlite_store) == []  # nothing quarantined, nothing uncovered
    return books(sqlite_store)


@pytest.mark.slow  # over a second here: not in make test-fast
@pytest.mark.parametrize("format_name", FORMATS)
def test_one_day_in_each_format_posts_the_same_books_as_the_csv_contract(
        contract_books, sqlite_store, tmp_path, format_name):
    root = tmp_path / format_name
    land_purchases(root)
    landed = land_usage(root, USAGE_DAY, "usage.jsonl", sample_lines(format_name))
    store = new_store(type(sqlite_store), tmp_path / f"{format_name}.db")
    post_days(store, policy_for(format_name), root, PURCHASE_DAY, USAGE_DAY)

    assert books(store) == contract_books
    # The figures themselves, so that equal books cannot be two empty ones: A burns 4 credits
    # (P-A's 3 at 1.00, then promotional P-G) and C 3 of P-M's 5 at 1.00 each.
    trial_balance = contract_books["trial balance"]
    assert trial_balance[("Income:Revenue:Usage", "USD")][3] == "-4.00"
    assert trial_balance[("Income:Revenue:Usage", "JPY")][3] == "-338"
    counts = store.read_frame("SELECT rows_read, rows_accepted, rows_duplicate, rows_rejected "
                              "FROM batch_files WHERE document = 'usage'").iloc[0].tolist()
    assert counts == [6, 6, 0, 0]
    # The archive holds the accepted rows, each pointing at its line, and the file as landed.
    with store.engine.connect() as connection:
        partitions = {partition.document: partition for partition in recorded_partitions(connection)
                      if partition.business_date == USAGE_DAY}
    original = tmp_path / format_name / "archive" / partitions["usage_source"].relative_path
    assert original.read_bytes() == landed.read_bytes()
    assert partitions["usage_source"].row_count == 6
    archived = tmp_path / format_name / "archive" / partitions["usage"].relative_path
    rows = pd.read_parquet(archived)
    assert sorted(zip(rows["event_id"], rows["source_row"], strict=True)) == [
        ("E-1", 1), ("E-2", 2), ("E-3", 3), ("E-4", 4), ("E-5", 5), ("E-6", 6)]
    # The original file is checked like every partition: an edited copy is named.
    archive = tmp_path / format_name / "archive"
    assert archive_matches_ledger(store, archive).passed
    original.write_bytes(original.read_bytes().replace(b"E-1", b"E-9"))
    check = archive_matches_ledger(store, archive)
    assert not check.passed and "usage_source" in check.detail


def _event(format_name: str) -> dict:
    return json.loads(sample_lines(format_name)[0])


def _set(event: dict, path: str, value) -> dict:
    *parents, last = path.split(".")
    target = event
    for key in parents:
        target = target[key]
    target[last] = value
    return event


def _malformed_lines(format_name: str) -> list[str]:
    """Three bad events (lines 7 to 9 after the six good ones) and a re-sent E-1 (line 10)."""
    bad_time = _set(_event(format_name), TIME_FIELD[format_name], "yesterday")
    bad_time = _set(bad_time, ID_FIELD[format_name], "BAD-TIME")
    no_customer = _set(_event(format_name), ID_FIELD[format_name], "NO-CUSTOMER")
    for path in CUSTOMER_FIELD[format_name].split(" or "):
        *parents, last = path.split(".")
        target = no_customer
        for key in parents:
            target = target[key]
        target.pop(last, None)
    not_numeric = _set(_event(format_name), CREDITS_FIELD[format_name], "ten")
    not_numeric = _set(not_numeric, ID_FIELD[format_name], "NOT-NUMERIC")
    return [json.dumps(event) for event in (bad_time, no_customer, not_numeric)]


@pytest.mark.parametrize("format_name", FORMATS)
def test_a_malformed_event_is_quarantined_naming_its_source_field_and_line(
        sqlite_store, tmp_path, format_name):
    land_purchases(tmp_path)
    bad = _malformed_lines(format_name)
    lines = sample_lines(format_name) + bad + [sample_lines(format_name)[0]]
    land_usage(tmp_path, USAGE_DAY, "usage.jsonl", lines)
    post_days(sqlite_store, policy_for(format_name), tmp_path, PURCHASE_DAY, USAGE_DAY)

    counts = sqlite_store.read_frame(
        "SELECT rows_read, rows_accepted, rows_duplicate, rows_rejected FROM batch_files "
        "WHERE document = 'usage'").iloc[0].tolist()
    assert counts == [10, 6, 1, 3]  # read = accepted + duplicates + rejected
    quarantined = [(row["source"], row["column"], row["reason"], row["raw_values"])
                   for row in exceptions(sqlite_store) if row["kind"] == "rejected"]
    customer = CUSTOMER_FIELD[format_name]
    assert quarantined == [
        ("usage.jsonl row 7", TIME_FIELD[format_name],
         f"{TIME_FIELD[format_name]}: {NOT_A_TIME[format_name]}", bad[0]),
        ("usage.jsonl row 8", customer, f"{customer}: is required", bad[1]),
        ("usage.jsonl row 9", CREDITS_FIELD[format_name],
         f"{CREDITS_FIELD[format_name]}: must be a positive decimal number of credits", bad[2]),
    ]


def test_credits_in_json_exponent_form_are_read_exactly(sqlite_store, tmp_path):
    """`1e-05` is a JSON number like `0.00001`: read exactly, then the contract's limits."""
    land_purchases(tmp_path)
    template = ('{"specversion":"1.0","id":"X-%s","source":"gw","type":"api","subject":"A",'
                '"time":"2026-01-31T09:00:00Z","data":{"value":%s}}')
    values = ["1e-05", "1E+0", "1.5e0", "1e+21", "1e-07", "-5", "1e999999999", "0e-999999999"]
    lines = [template % (number, value) for number, value in enumerate(values, start=1)]
    path = land_usage(tmp_path, USAGE_DAY, "usage.jsonl", lines)
    assert read_usage_source(path, USAGE_SOURCE_PRESETS["cloudevents"]).frame[
        "credits"].tolist()[:6] == ["0.00001", "1", "1.5", "1000000000000000000000",
                                    "0.0000001", "-5"]
    post_days(sqlite_store, policy_for("cloudevents"), tmp_path, PURCHASE_DAY, USAGE_DAY)
    counts = sqlite_store.read_frame(
        "SELECT rows_read, rows_accepted, rows_duplicate, rows_rejected FROM batch_files "
        "WHERE document = 'usage'").iloc[0].tolist()
    assert counts == [8, 3, 0, 5]
    burned = sqlite_store.read_frame("SELECT SUM(credits_micro) AS micro FROM burn_slices")
    assert int(burned["micro"].iloc[0]) == 10 + 1_000_000 + 1_500_000
    too_many = "data.value: is more than 1,000,000,000 credits, the most one row may carry"
    assert [(row["source"], row["reason"]) for row in exceptions(sqlite_store)
            if row["kind"] == "rejected"] == [
        ("usage.jsonl row 4", too_many),
        ("usage.jsonl row 5", "data.value: has more than 6 decimal places"),
        ("usage.jsonl row 6", "data.value: must be a positive decimal number of credits"),
        ("usage.jsonl row 7", too_many),
        ("usage.jsonl row 8", "data.value: must be greater than zero")]


def test_a_boolean_or_a_list_in_a_mapped_field_is_quarantined_naming_the_field(
        sqlite_store, tmp_path):
    land_purchases(tmp_path)
    good = _event("cloudevents")
    bad = [json.dumps(_set(_event("cloudevents"), "data.value", True)),
           json.dumps(_set(_set(_event("cloudevents"), "subject", ["A"]), "id", "LIST")),
           json.dumps(_set(_set(_event("cloudevents"), "time", False), "id", "FALSE-TIME"))]
    land_usage(tmp_path, USAGE_DAY, "usage.jsonl", [json.dumps(good), *bad])
    post_days(sqlite_store, policy_for("cloudevents"), tmp_path, PURCHASE_DAY, USAGE_DAY)
    counts = sqlite_store.read_frame(
        "SELECT rows_read, rows_accepted, rows_duplicate, rows_rejected FROM batch_files "
        "WHERE document = 'usage'").iloc[0].tolist()
    assert counts == [4, 1, 0, 3]
    assert [(row["source"], row["column"], row["reason"], row["raw_values"])
            for row in exceptions(sqlite_store) if row["kind"] == "rejected"] == [
        ("usage.jsonl row 2", "data.value",
         "data.value: expected a string or a number, not true or false", bad[0]),
        ("usage.jsonl row 3", "subject", "subject: expected a string or a number, not a list",
         bad[1]),
        ("usage.jsonl row 4", "time", "time: expected a string or a number, not true or false",
         bad[2])]


def test_exceptions_name_each_mapped_row_by_the_source_s_own_id_in_row_order(
        sqlite_store, tmp_path):
    land_purchases(tmp_path)
    lines = sample_lines("cloudevents")
    bad = _malformed_lines("cloudevents")
    late = [json.dumps(_set(_set(_event("cloudevents"), "id", f"LATE-{number}"), "time", "x"))
            for number in (10, 11)]
    land_usage(tmp_path, USAGE_DAY, "usage.jsonl", lines + bad + late)
    changed = json.dumps(_set(json.loads(lines[1]), "data.value", "7"))
    land_usage(tmp_path, NEXT_DAY, "usage.jsonl", [changed])
    post_days(sqlite_store, policy_for("cloudevents"), tmp_path, PURCHASE_DAY, NEXT_DAY)
    listed = [(row["business_date"], row["kind"], row["source"], row["id"])
              for row in exceptions(sqlite_store) if row["kind"] in ("rejected", "conflict")]
    assert listed == [
        ("2026-01-31", "rejected", "usage.jsonl row 7", "BAD-TIME"),
        ("2026-01-31", "rejected", "usage.jsonl row 8", "NO-CUSTOMER"),
        ("2026-01-31", "rejected", "usage.jsonl row 9", "NOT-NUMERIC"),
        ("2026-01-31", "rejected", "usage.jsonl row 10", "LATE-10"),
        ("2026-01-31", "rejected", "usage.jsonl row 11", "LATE-11"),
        ("2026-02-01", "conflict", "usage.jsonl row 1", json.loads(lines[1])["id"])]


@pytest.mark.parametrize("format_name", FORMATS)
def test_a_re_sent_event_is_a_duplicate_by_the_sources_own_id(sqlite_store, tmp_path,
                                                               format_name):
    land_purchases(tmp_path)
    lines = sample_lines(format_name)
    land_usage(tmp_path, USAGE_DAY, "usage.jsonl", lines)
    # The next day the system re-sends E-1 as it was, and E-2 with other credits.
    changed = json.dumps(_set(json.loads(lines[1]), CREDITS_FIELD[format_name], "7"))
    land_usage(tmp_path, NEXT_DAY, "usage.jsonl", [lines[0], changed])
    post_days(sqlite_store, policy_for(format_name), tmp_path, PURCHASE_DAY, NEXT_DAY)

    counts = sqlite_store.read_frame(
        "SELECT rows_read, rows_accepted, rows_duplicate, rows_rejected FROM batch_files "
        "WHERE document = 'usage' ORDER BY batch_id").values.tolist()
    assert counts[-1] == [2, 0, 1, 1]
    (conflict,) = [row for row in exceptions(sqlite_store) if row["kind"] == "conflict"]
    assert (conflict["source"], conflict["column"]) == ("usage.jsonl row 2", ID_FIELD[format_name])
    assert conflict["reason"] == (f"conflict: {ID_FIELD[format_name]} was accepted on 2026-01-31 "
                                  "with different contents; not overwritten")


def test_an_unknown_format_is_refused_naming_the_section_and_key(tmp_path):
    policy_file = tmp_path / "policy.toml"
    policy_file.write_text('[sources.usage]\nformat = "segment"\n', encoding="utf-8")
    with pytest.raises(PolicyError) as refused:
        load_policy(policy_file)
    assert str(refused.value) == (
        f'{policy_file}: [sources.usage] format must be one of "contract", "cloudevents", '
        '"lago", "orb", "metronome", "stripe_meter_events", not "segment"')


def test_a_field_path_without_a_format_and_a_bad_path_are_refused(tmp_path):
    for text, message in (
            ('[sources.usage]\ncredits = "data.tokens"\n',
             "[sources.usage] credits maps a metering system's events; with format = "
             '"contract" (the default) the usage file has the contract\'s columns: set format '
             "first"),
            ('[sources.usage]\nformat = "lago"\ncredits = 5\n',
             '[sources.usage] credits must be a field path such as "data.value", or a list of '
             "them (the first present wins), not 5")):
        policy_file = tmp_path / "policy.toml"
        policy_file.write_text(text, encoding="utf-8")
        with pytest.raises(PolicyError) as refused:
            load_policy(policy_file)
        assert str(refused.value) == f"{policy_file}: {message}"


def test_an_overridden_path_and_fractional_lago_seconds_are_read(tmp_path):
    """A meter whose credits are in `properties.tokens`; Lago's timestamp with a fraction."""
    document = {"sources": {"usage": {"format": "lago", "credits": "properties.tokens"}}}
    source = policy_from_document(document).usage_source
    path = tmp_path / "usage.jsonl"
    path.write_text('{"transaction_id":"T-1","external_subscription_id":"sub_9","code":"llm",'
                    '"timestamp":1769850000.25,"properties":{"tokens":"0.000001"}}\n',
                    encoding="utf-8")
    row = read_usage_source(path, source).frame.iloc[0]
    assert (row["event_id"], row["customer_id"], row["occurred_at"], row["meter"],
            row["credits"]) == ("T-1", "sub_9", "2026-01-31T09:00:00.25Z", "llm", "0.000001")
    assert read_usage_source(path, USAGE_SOURCE_PRESETS["lago"]).frame.iloc[0]["credits"] == ""


def test_a_mapped_format_landed_as_csv_or_a_broken_line_stops_the_night_naming_the_file(
        sqlite_store, tmp_path):
    shutil.copy(FIXTURES / "usage.csv", tmp_path / "usage.csv")
    with pytest.raises(InputFileError, match=r"usage.csv: \[sources.usage\] format is 'orb', "
                                             "whose events are JSON lines: land them as usage.jsonl"):
        read_usage_source(tmp_path / "usage.csv", USAGE_SOURCE_PRESETS["orb"])
    lines = sample_lines("orb")
    broken = land_usage(tmp_path, USAGE_DAY, "usage.jsonl",
                        [lines[0], "", lines[1][:-1], lines[2]])
    with pytest.raises(InputFileError, match=r"usage.jsonl row 3: not valid JSON"):
        read_usage_source(broken, USAGE_SOURCE_PRESETS["orb"])
    land_usage(tmp_path, USAGE_DAY, "usage.jsonl",
               [lines[0], lines[1].replace('"m-1"}', '"m-1"},"event_name":"x"')])
    with pytest.raises(InputFileError, match="row 2: key 'event_name' appears more than once"):
        read_usage_source(broken, USAGE_SOURCE_PRESETS["orb"])
