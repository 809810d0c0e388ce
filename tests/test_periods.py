"""Period, the accounting period as a value: only a well-formed `YYYY-MM` name becomes one,
it knows its days and neighbours, and it goes wherever its name goes (it is a str)."""

from __future__ import annotations

import json
import sys
from datetime import date

import pytest
from sqlalchemy import text

from creditbooks import cli
from ledger.periods import Period
from reports.outputs.verify_package import PackageProblems, check_manifest_against_ledger


@pytest.mark.parametrize("name", ["2026-13", "2026-00", "2026-1", " 2026-01", "2026-01\n",
                                  "2026-01 ", "26-01", "2026/01", "2026-01-01", "",
                                  "\u0662\u0660\u0662\u0666-01", "\uff12\uff10\uff12\uff16-01"])
def test_a_malformed_name_is_refused_in_one_line_naming_it(name):
    with pytest.raises(ValueError) as refused:
        Period(name)
    assert str(refused.value) == f"period {name!r} is not of the form YYYY-MM"


@pytest.mark.parametrize("value", [None, 202601, 2026.01, b"2026-01", date(2026, 1, 1)])
def test_what_is_not_text_is_refused(value):
    with pytest.raises(ValueError, match="is not of the form YYYY-MM"):
        Period(value)


def test_a_period_is_its_name_and_a_period_made_again_is_the_same_one():
    period = Period("2026-01")
    assert period == "2026-01" and str(period) == "2026-01" and f"{period}" == "2026-01"
    assert Period(period) is period
    assert Period.of(date(2026, 1, 31)) == "2026-01"
    assert isinstance(Period.of(date(2026, 1, 31)), Period)
    assert Period.of(date(999, 12, 5)) == "0999-12"


def test_boundaries_are_half_open_first_day_to_the_next_periods_first_day():
    period = Period("2026-04")
    assert (period.first_day, period.following_first_day, period.last_day) == (
        date(2026, 4, 1), date(2026, 5, 1), date(2026, 4, 30))
    assert (Period("2026-12").first_day, Period("2026-12").following_first_day) == (
        date(2026, 12, 1), date(2027, 1, 1))


def test_next_and_previous_cross_year_ends():
    assert Period("2026-12").next() == "2027-01"
    assert Period("2027-01").previous() == "2026-12"
    assert Period("2026-06").next() == "2026-07" and Period("2026-06").previous() == "2026-05"
    assert isinstance(Period("2026-12").next(), Period)
    assert isinstance(Period("2027-01").previous(), Period)
    period = Period("2025-11")
    for _ in range(14):
        period = period.next()
    assert period == "2027-01"
    for _ in range(14):
        period = period.previous()
    assert period == "2025-11"


def test_days_of_february_follow_leap_years():
    leap = Period("2028-02").days()
    assert len(leap) == 29 and leap[0] == date(2028, 2, 1) and leap[-1] == date(2028, 2, 29)
    assert len(Period("2026-02").days()) == 28
    assert len(Period("2100-02").days()) == 28  # a century is not a leap year...
    assert len(Period("2000-02").days()) == 29  # ...unless it is divisible by 400
    assert Period("2028-02").last_day == date(2028, 2, 29)
    assert len(Period("2026-12").days()) == 31 and Period("2026-12").days()[-1] == date(2026, 12, 31)


def test_ordering_and_equality_are_those_of_the_name():
    periods = [Period("2027-01"), Period("2026-12"), Period("2026-02")]
    assert sorted(periods) == ["2026-02", "2026-12", "2027-01"]
    assert Period("2026-12") < Period("2027-01") and Period("2026-12") < "2027-01"
    assert max(["2026-11", Period("2026-12")]) == "2026-12"
    keyed_by_name = {"2026-01": "closed"}
    assert keyed_by_name[Period("2026-01")] == "closed"
    keyed_by_period = {Period("2026-01"): "closed"}
    assert keyed_by_period["2026-01"] == "closed"
    assert Period("2026-01") in {"2026-01", "2026-02"}
    assert hash(Period("2026-01")) == hash("2026-01")


def test_json_gives_the_plain_name():
    assert json.dumps({"period": Period("2026-01")}) == '{"period": "2026-01"}'
    assert json.dumps([Period("2026-01").next()]) == '["2026-02"]'


def test_a_period_is_a_sql_parameter_like_its_name(store):
    with store.transaction() as connection:
        connection.exec_driver_sql(
            "CREATE TABLE period_names (period VARCHAR(7) PRIMARY KEY)")
    with store.transaction() as connection:
        connection.execute(text("INSERT INTO period_names (period) VALUES (:period)"),
                           [{"period": Period("2026-01")}, {"period": "2026-02"}])
    rows = store.read_frame("SELECT period FROM period_names WHERE period >= :period ORDER BY period",
                            period=Period("2026-01"))
    assert rows["period"].tolist() == ["2026-01", "2026-02"]
    assert store.read_frame("SELECT period FROM period_names WHERE period = :period",
                            period=Period("2026-02"))["period"].tolist() == ["2026-02"]


COMMANDS_WITH_A_PERIOD = [
    ["report", "trial-balance"], ["report", "rollforward"], ["report", "waterfall"],
    ["trace", "customer", "C-1"], ["trace", "sample"], ["kpis"],
    ["export", "--format", "csv", "--out", "journal.csv"], ["close"], ["reopen", "--reason", "why"],
]


@pytest.mark.parametrize("command", COMMANDS_WITH_A_PERIOD, ids=" ".join)
def test_every_period_option_refuses_a_malformed_one_in_one_line_before_the_command_runs(
        command, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CREDITBOOKS_DEBUG", raising=False)
    ledger = tmp_path / "ledger.db"
    monkeypatch.setattr(sys, "argv", ["creditbooks", "--db", f"sqlite:///{ledger}", *command,
                                      "--period", "2026-1"])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 1
    assert capsys.readouterr().err == "creditbooks: error: period '2026-1' is not of the form YYYY-MM\n"
    assert not ledger.exists()  # refused where it entered: the command never opened the ledger


@pytest.mark.parametrize("named", ["2026-1", None, 202601, "\u0662\u0660\u0662\u0666-01"])
def test_a_package_whose_manifest_names_no_period_is_told_so_in_one_line(named, tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({"period": named}), encoding="utf-8")
    problems = PackageProblems()
    assert check_manifest_against_ledger(tmp_path, None, problems) is None
    assert problems == [f"manifest.json key period: {named!r} is not a period YYYY-MM"]
