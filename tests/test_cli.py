"""The command line as other programs call it: real process, exit codes, JSON shapes."""

from __future__ import annotations

import json

import pytest

from tests.support.cli import creditbooks
from tests.support.scenario import write_scenario


@pytest.fixture
def books(tmp_path):
    write_scenario(tmp_path / "landing")
    creditbooks("init", cwd=tmp_path)
    creditbooks("nightly", "--from", "2026-01-30", "--to", "2026-02-01", cwd=tmp_path)
    return tmp_path


@pytest.mark.slow  # over a second here: not in make test-fast
def test_trial_balance_json_has_the_documented_shape_and_figures(books):
    output = creditbooks("report", "trial-balance", "--period", "2026-01", "--format", "json",
                         cwd=books).stdout
    document = json.loads(output)
    assert document["period"] == "2026-01"
    cash = next(row for row in document["rows"]
                if row["account"] == "Assets:Cash:Clearing" and row["currency"] == "USD")
    assert cash == {"currency": "USD", "account": "Assets:Cash:Clearing", "row_type": "account",
                    "opening_debit": "0.00", "opening_credit": "0.00", "period_debit": "26.08",
                    "period_credit": "0.00", "closing_debit": "26.08", "closing_credit": "0.00"}


@pytest.mark.slow  # over a second here: not in make test-fast
def test_rollforward_json_and_csv(books):
    document = json.loads(creditbooks("report", "rollforward", "--period", "2026-02", "--format",
                                      "json", cwd=books).stdout)
    usd = next(row for row in document["rows"] if row["currency"] == "USD")
    assert usd == {"currency": "USD", "opening": "20.33", "purchases": "0.00",
                   "usage_revenue": "4.16", "breakage": "0.17", "refunds": "0.00",
                   "escheat": "0.00", "manual_journals": "0.00", "closing": "16.00"}
    csv_text = creditbooks("report", "rollforward", "--period", "2026-01", "--format", "csv",
                           cwd=books).stdout
    assert csv_text.splitlines()[0] == (
        "currency,opening,purchases,usage_revenue,breakage,refunds,escheat,manual_journals,"
        "closing")
    assert "USD,0.00,26.00,0.67,5.00,0.00,0.00,0.00,20.33" in csv_text.splitlines()


@pytest.mark.slow  # over a second here: not in make test-fast
def test_balances_exceptions_and_check(books):
    lots = json.loads(creditbooks("balances", "--customer", "A", "--format", "json", cwd=books).stdout)
    assert [(lot["purchase_id"], lot["credits_remaining"], lot["value_remaining"]) for lot in lots] == [
        ("P-A", "0", "0.00"), ("P-B", "8", "16.00"), ("P-G", "0", "0.00")]
    listed = json.loads(creditbooks("exceptions", "--date", "2026-01-31", "--format", "json",
                                    cwd=books).stdout)
    assert [(row["kind"], row["customer_id"], row["credits"]) for row in listed] == [
        ("uncovered", "D", "7")]
    checked = creditbooks("check", "--format", "json", cwd=books)
    assert [row["passed"] for row in json.loads(checked.stdout)] == [True] * 6


@pytest.mark.slow  # over a second here: not in make test-fast
def test_rerunning_a_range_reports_unchanged(books):
    output = creditbooks("nightly", "--date", "2026-01-31", "--format", "json", cwd=books).stdout
    assert json.loads(output)[0]["status"] == "unchanged"


@pytest.mark.slow  # over a second here: not in make test-fast
def test_errors_are_one_line_for_a_person_with_non_zero_exit(tmp_path):
    not_initialised = creditbooks("nightly", "--date", "2026-01-30", cwd=tmp_path, check=False)
    assert not_initialised.returncode == 1
    assert not_initialised.stderr.strip().splitlines() == [
        f"creditbooks: error: no creditbooks ledger at sqlite:///{tmp_path}/creditbooks.db; "
        "run `creditbooks init` first"]
    creditbooks("init", cwd=tmp_path)
    bad_period = creditbooks("report", "trial-balance", "--period", "2026-13", cwd=tmp_path,
                             check=False)
    assert bad_period.returncode == 1
    assert bad_period.stderr.strip() == (
        "creditbooks: error: period '2026-13' is not of the form YYYY-MM")
    assert "Traceback" not in bad_period.stderr
    with_debug = creditbooks("--debug", "report", "trial-balance", "--period", "2026-13",
                             cwd=tmp_path, check=False)
    assert "Traceback" in with_debug.stderr


@pytest.mark.slow  # over a second here: not in make test-fast
def test_check_fails_loudly_when_the_books_are_tampered_with(books):
    import sqlite3

    connection = sqlite3.connect(books / "creditbooks.db")
    connection.execute("UPDATE lot_balances SET usage_value_minor = usage_value_minor + 1 "
                       "WHERE purchase_id = 'P-B'")
    connection.commit()
    connection.close()
    checked = creditbooks("check", cwd=books, check=False)
    assert checked.returncode == 1
    assert "control(s) failed" in checked.stderr
    assert ("lot P-B: running totals differ from slices, refunds, adjustments, accruals and "
            "expiries") in checked.stdout


@pytest.mark.slow  # over a second here: not in make test-fast
def test_demo_posts_a_quarter_whose_rollforwards_tie(tmp_path):
    output = creditbooks("demo", "--customers", "12", "--out", str(tmp_path / "demo"),
                         cwd=tmp_path).stdout
    assert output.count("ties in every currency") == 3
    # The trial balances as accountants read them: debit and credit columns, no signs.
    assert output.count("closing_debit") == 3
    assert "DOES NOT TIE" not in output
    assert "False" not in output
    again = creditbooks("demo", "--customers", "12", "--out", str(tmp_path / "demo"),
                        cwd=tmp_path).stdout
    assert "nights: 90 unchanged" in again


@pytest.mark.postgres
def test_the_command_line_runs_the_same_books_on_postgresql(tmp_path, postgres_server):
    url = postgres_server.create_database()
    write_scenario(tmp_path / "landing")
    creditbooks("--db", url, "init", cwd=tmp_path)
    creditbooks("--db", url, "nightly", "--from", "2026-01-30", "--to", "2026-02-01", cwd=tmp_path)
    document = json.loads(creditbooks("--db", url, "report", "rollforward", "--period", "2026-02",
                                      "--format", "json", cwd=tmp_path).stdout)
    usd = next(row for row in document["rows"] if row["currency"] == "USD")
    assert (usd["opening"], usd["usage_revenue"], usd["breakage"], usd["closing"]) == (
        "20.33", "4.16", "0.17", "16.00")
    assert creditbooks("--db", url, "check", cwd=tmp_path).returncode == 0


@pytest.mark.slow  # over a second here: not in make test-fast
def test_nightly_in_chunks_of_two_rows_reports_and_posts_what_the_whole_files_do(books, tmp_path):
    chunked = tmp_path / "chunked"
    chunked.mkdir()
    (chunked / "landing").symlink_to(books / "landing")
    creditbooks("init", cwd=chunked)
    lines = creditbooks("nightly", "--from", "2026-01-30", "--to", "2026-02-01", "--chunk-rows",
                        "2", "--format", "json", cwd=chunked).stdout
    assert [(night["business_date"], night["rows_read"], night["accepted"], night["duplicates"],
             night["rejected"]) for night in json.loads(lines)] == [
        ("2026-01-30", 8, 8, 0, 0), ("2026-01-31", 4, 4, 0, 0), ("2026-02-01", 5, 2, 1, 2)]
    for directory in (books, chunked):
        assert creditbooks("check", cwd=directory).returncode == 0
    trial_balance = ["report", "trial-balance", "--period", "2026-02", "--format", "json"]
    assert (creditbooks(*trial_balance, cwd=chunked).stdout
            == creditbooks(*trial_balance, cwd=books).stdout)
    refused = creditbooks("nightly", "--date", "2026-02-02", "--chunk-rows", "0", cwd=chunked,
                          check=False)
    assert refused.returncode != 0 and "--chunk-rows" in refused.stderr
