"""Several nights from files to books: the hand-worked scenario of tests/support/scenario.py,
every figure of which is worked out by hand in that module's docstring."""

from __future__ import annotations

from datetime import date

import pytest

from creditbooks.night.run import BatchConflictError, StrictModeRejectionError
from intake.documents import InputFileError
from reports.controls import run_controls
from reports.statements import rollforward
from reports.subledger import exceptions, lot_balances
from tests.support.landing import write_document
from tests.support.scenario import NIGHTS, purchase, run_nights, trial_balance_of, usage, write_scenario


@pytest.mark.slow  # over a second here: not in make test-fast
def test_several_nights_produce_the_hand_worked_books(store, policy, tmp_path):
    write_scenario(tmp_path / "landing")
    outcomes = run_nights(store, policy, tmp_path)
    assert [outcome.status for outcome in outcomes] == ["posted", "posted", "posted"]

    assert trial_balance_of(store, "2026-01") == {
        ("Assets:Cash:Clearing", "JPY"): ("0", "1000", "0", "1000"),
        ("Assets:Cash:Clearing", "USD"): ("0.00", "26.08", "0.00", "26.08"),
        ("Income:Revenue:Breakage", "USD"): ("0.00", "0.00", "-5.00", "-5.00"),
        ("Income:Revenue:Usage", "JPY"): ("0", "0", "-338", "-338"),
        ("Income:Revenue:Usage", "USD"): ("0.00", "0.00", "-0.67", "-0.67"),
        ("Liabilities:DeferredRevenue:Credits", "JPY"): ("0", "338", "-1000", "-662"),
        ("Liabilities:DeferredRevenue:Credits", "USD"): ("0.00", "5.67", "-26.00", "-20.33"),
        ("Liabilities:Tax:Sales", "USD"): ("0.00", "0.00", "-0.08", "-0.08"),
    }
    february = trial_balance_of(store, "2026-02")
    assert february[("Income:Revenue:Usage", "USD")] == ("-0.67", "0.00", "-4.16", "-4.83")
    assert february[("Income:Revenue:Breakage", "USD")] == ("-5.00", "0.00", "-0.17", "-5.17")
    assert february[("Liabilities:DeferredRevenue:Credits", "USD")] == (
        "-20.33", "4.33", "0.00", "-16.00")

    january = {row.currency: row.as_strings() for row in
               rollforward(store, "2026-01", policy.accounts.deferred_revenue)}
    assert january["USD"] == {"currency": "USD", "opening": "0.00", "purchases": "26.00",
                              "usage_revenue": "0.67", "breakage": "5.00", "refunds": "0.00",
                              "escheat": "0.00", "manual_journals": "0.00", "closing": "20.33"}
    assert january["JPY"] == {"currency": "JPY", "opening": "0", "purchases": "1000",
                              "usage_revenue": "338", "breakage": "0", "refunds": "0",
                              "escheat": "0", "manual_journals": "0", "closing": "662"}
    february_rollforward = rollforward(store, "2026-02", policy.accounts.deferred_revenue)
    usd = next(row for row in february_rollforward if row.currency == "USD")
    assert (usd.opening_minor, usd.usage_revenue_minor, usd.breakage_minor, usd.closing_minor) == (
        2033, 416, 17, 1600)
    assert all(row.difference_minor == 0 for row in february_rollforward)

    lots = {row["purchase_id"]: row for row in lot_balances(store)}
    assert (lots["P-A"]["usage_revenue"], lots["P-A"]["breakage"], lots["P-A"]["credits_expired"],
            lots["P-A"]["value_remaining"]) == ("0.83", "0.17", "0.5", "0.00")
    assert (lots["P-B"]["credits_remaining"], lots["P-B"]["value_remaining"]) == ("8", "16.00")
    assert lots["P-G"]["credits_remaining"] == "0"
    assert lots["P-M"]["breakage"] == "5.00"
    assert lots["P-J"]["credits_remaining"] == "66.166667"
    as_of_january = {row["purchase_id"]: row for row in lot_balances(store, as_of=date(2026, 1, 31))}
    assert as_of_january["P-A"]["credits_remaining"] == "1"
    assert as_of_january["P-A"]["value_remaining"] == "0.33"

    assert all(result.passed for result in run_controls(store, policy.accounts.deferred_revenue))


def test_every_input_row_is_accounted_for_and_exceptions_say_why(store, policy, tmp_path):
    write_scenario(tmp_path / "landing")
    last = run_nights(store, policy, tmp_path)[-1]
    (summary,) = last.documents
    assert (summary.rows_read, summary.accepted, summary.duplicates, summary.rejected) == (5, 2, 1, 2)
    listed = exceptions(store)
    kinds = sorted((row["business_date"], row["kind"], row["source"]) for row in listed)
    assert kinds == [("2026-01-31", "uncovered", "1 event(s)"),
                     ("2026-02-01", "conflict", "usage.csv row 4"),
                     ("2026-02-01", "rejected", "usage.csv row 5")]
    by_kind = {row["kind"]: row for row in listed}
    assert by_kind["uncovered"]["customer_id"] == "D" and by_kind["uncovered"]["credits"] == "7"
    assert "accepted on 2026-01-30 with different contents" in by_kind["conflict"]["reason"]
    assert by_kind["rejected"]["reason"] == "credits: must be a positive decimal number of credits"
    files = store.read_frame(
        "SELECT rows_read, rows_accepted, rows_duplicate, rows_rejected, credits_accepted_micro "
        "FROM batch_files WHERE batch_id = 'nightly-2026-02-01'")
    assert files.iloc[0].tolist() == [5, 2, 1, 2, 4_500_000]


def test_running_nights_again_changes_nothing(store, policy, tmp_path):
    write_scenario(tmp_path / "landing")
    run_nights(store, policy, tmp_path)
    before = store.read_frame("SELECT * FROM journal_lines ORDER BY entry_id, line_number")
    balances_before = store.read_frame("SELECT * FROM lot_balances ORDER BY purchase_id")
    again = run_nights(store, policy, tmp_path)
    assert [outcome.status for outcome in again] == ["unchanged"] * 3
    assert store.read_frame("SELECT * FROM journal_lines ORDER BY entry_id, line_number").equals(before)
    assert store.read_frame("SELECT * FROM lot_balances ORDER BY purchase_id").equals(balances_before)


def test_a_posted_day_with_changed_files_is_a_conflict_not_an_overwrite(store, policy, tmp_path):
    write_scenario(tmp_path / "landing")
    run_nights(store, policy, tmp_path)
    write_document(tmp_path / "landing", "2026-01-31", "usage",
                   [usage("U3", "A", "2026-01-31T12:00:00Z", "gpu", "2")])
    with pytest.raises(BatchConflictError, match="already posted .* from different landing files"):
        run_nights(store, policy, tmp_path, nights=[date(2026, 1, 31)])


@pytest.mark.slow  # over a second here: not in make test-fast
@pytest.mark.parametrize("file_format", ["jsonl", "parquet"])
def test_jsonl_and_parquet_landing_files_post_the_same_books_as_csv(sqlite_store, policy, tmp_path,
                                                                    file_format):
    write_scenario(tmp_path / "csv" / "landing")
    run_nights(sqlite_store, policy, tmp_path / "csv")
    expected = trial_balance_of(sqlite_store, "2026-02")
    other = type(sqlite_store)(f"sqlite:///{tmp_path / 'other.db'}")
    other.initialise()
    write_scenario(tmp_path / file_format / "landing", file_format)
    run_nights(other, policy, tmp_path / file_format)
    assert trial_balance_of(other, "2026-02") == expected


def test_strict_mode_refuses_the_whole_batch_when_any_row_is_bad(sqlite_store, policy, tmp_path):
    write_scenario(tmp_path / "landing")
    run_nights(sqlite_store, policy, tmp_path, nights=NIGHTS[:2])
    with pytest.raises(StrictModeRejectionError, match=r"usage.csv row 4 column event_id"):
        run_nights(sqlite_store, policy, tmp_path, nights=NIGHTS[2:], strict=True)
    assert sqlite_store.read_frame(
        "SELECT COUNT(*) AS n FROM batches WHERE business_date = '2026-02-01'")["n"][0] == 0


def test_a_bad_file_names_file_row_and_column_and_posts_nothing(store, policy, tmp_path):
    directory = tmp_path / "landing" / "2026-01-30"
    directory.mkdir(parents=True)
    (directory / "usage.csv").write_text(
        "event_id,customer_id,occurred_at,meter,credit\nU1,A,2026-01-30T10:00:00Z,api,1\n")
    with pytest.raises(InputFileError, match=r"usage.csv row 0 \(header\): unexpected column 'credit'"):
        run_nights(store, policy, tmp_path, nights=NIGHTS[:1])
    assert store.read_frame("SELECT COUNT(*) AS n FROM batches")["n"][0] == 0


def test_a_day_with_no_files_still_expires_lots_and_is_recorded_as_empty(sqlite_store, policy,
                                                                          tmp_path):
    write_document(tmp_path / "landing", "2026-01-30", "purchases", [
        purchase("P-X", "X", "4", "4.00", expires_at="2026-01-31T06:00:00Z")])
    outcomes = run_nights(sqlite_store, policy, tmp_path, nights=NIGHTS[:2])
    assert [outcome.status for outcome in outcomes] == ["posted", "empty"]
    assert trial_balance_of(sqlite_store, "2026-01")[("Income:Revenue:Breakage", "USD")][3] == "-4.00"


def test_usage_dated_after_the_business_date_is_rejected(sqlite_store, policy, tmp_path):
    write_document(tmp_path / "landing", "2026-01-30", "usage", [
        usage("U1", "A", "2026-01-30T23:59:59Z", "api", "1"),
        usage("U2", "A", "2026-01-31T00:00:00Z", "api", "1")])
    outcome = run_nights(sqlite_store, policy, tmp_path, nights=NIGHTS[:1])[0]
    (summary,) = outcome.documents
    assert (summary.accepted, summary.rejected) == (1, 1)
    assert [row["reason"] for row in exceptions(sqlite_store) if row["kind"] == "rejected"] == [
        "occurred_at: is after business date 2026-01-30"]


def test_float_parquet_columns_and_broken_json_lines_are_refused_naming_file_and_row(
        sqlite_store, policy, tmp_path):
    import pandas as pd

    day = tmp_path / "landing" / "2026-01-30"
    day.mkdir(parents=True)
    pd.DataFrame({"event_id": ["U1"], "customer_id": ["A"], "occurred_at": ["2026-01-30T10:00:00Z"],
                  "meter": ["api"], "credits": [0.1]}).to_parquet(day / "usage.parquet")
    with pytest.raises(InputFileError, match="usage.parquet column credits: floating-point"):
        run_nights(sqlite_store, policy, tmp_path, nights=NIGHTS[:1])
    (day / "usage.parquet").unlink()
    (day / "usage.jsonl").write_text('{"event_id": "U1"}\n{"event_id": \n')
    with pytest.raises(InputFileError, match=r"usage.jsonl row 2: not valid JSON"):
        run_nights(sqlite_store, policy, tmp_path, nights=NIGHTS[:1])
    assert sqlite_store.read_frame("SELECT COUNT(*) AS n FROM batches")["n"][0] == 0
