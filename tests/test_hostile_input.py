"""Hostile and malformed input: each case of tests/support/hostile_corpus.py has its exact outcome."""

from __future__ import annotations

import dataclasses
from datetime import date

import pandas as pd
import pytest

from creditbooks.night.run import StrictModeRejectionError, run_night
from intake.documents import InputFileError
from intake.usage_buckets import DEFAULT_CHUNK_ROWS
from intake.validation import MAX_CREDITS_MICRO, exact_sum, exact_sums_by
from ledger.store import Store
from rules.fx import FxRateMissingError
from tests.support.cli import creditbooks
from tests.support.hostile_corpus import (
    CASES,
    FORMULA_ID,
    SQL_ID,
    USAGE_HEADER,
    VALID,
    Case,
    event,
    fx_rates,
    lot,
    purchases,
    usage,
)
from tests.support.landing import write_document

DAY = date(2026, 1, 31)


def _land(landing, case: Case) -> None:
    write_document(landing, "2026-01-30", "purchases", [{
        "purchase_id": "P-C1", "customer_id": "C1", "purchased_at": "2026-01-30T09:00:00Z",
        "credits": "100", "amount": "10.00", "currency": "USD"}])
    for name, content in case.earlier.items():
        (landing / "2026-01-30" / name).write_bytes(content)
    day = landing / DAY.isoformat()
    day.mkdir(parents=True)
    for name, content in case.files.items():
        (day / name).write_bytes(content)


# A usage file of more than one row is also taken in one row at a time: the same outcome.
@pytest.mark.slow  # over a second here: not in make test-fast
@pytest.mark.parametrize("chunk_rows", [DEFAULT_CHUNK_ROWS, 1], ids=["whole", "chunked"])
@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_each_hostile_case_has_its_exact_outcome(case, chunk_rows, sqlite_store, policy, tmp_path):
    landing, archive = tmp_path / "landing", tmp_path / "archive"
    _land(landing, case)
    run_night(sqlite_store, policy, landing, archive, date(2026, 1, 30))
    if case.refused:
        with pytest.raises(InputFileError) as refusal:
            run_night(sqlite_store, policy, landing, archive, DAY, chunk_rows=chunk_rows)
        assert str(refusal.value).replace(str(landing / DAY.isoformat()), "DAY") == case.refused
        assert sqlite_store.read_frame("SELECT COUNT(*) AS n FROM batches")["n"][0] == 1
        return
    assert run_night(sqlite_store, policy, landing, archive, DAY,
                     chunk_rows=chunk_rows).status == "posted"
    counts = sqlite_store.read_frame(
        "SELECT rows_read, rows_accepted, rows_duplicate, rows_rejected FROM batch_files "
        "WHERE batch_id = 'nightly-2026-01-31' AND document = :document", document=case.document)
    assert tuple(int(value) for value in counts.iloc[0]) == case.counts
    quarantine = sqlite_store.read_frame(
        "SELECT file_name, row_number, column_name, reason, raw_row FROM quarantine "
        "WHERE batch_id = 'nightly-2026-01-31' ORDER BY row_number")
    assert set(quarantine["file_name"]) <= set(case.files)
    assert all(len(raw) < 2_000 for raw in quarantine["raw_row"])  # a 20 MB value is cut
    assert [(int(row.row_number), row.column_name, row.reason)
            for row in quarantine.itertuples(index=False)] == list(case.quarantine)
    if case.counts[1] == 0:
        return
    if case.document == "usage":  # the valid row E-ok burned 1 credit (0.10 USD) of P-C1
        burned = sqlite_store.read_frame(
            "SELECT SUM(value_minor) AS value FROM burn_slices WHERE purchase_id = 'P-C1' "
            "AND business_date = '2026-01-31' AND customer_id = 'C1'")
        assert int(burned["value"][0]) >= 10
    elif case.document == "purchases":  # the valid lot P-ok was posted
        assert sqlite_store.read_frame(
            "SELECT amount_minor FROM lots WHERE purchase_id = 'P-ok'")["amount_minor"][0] == 100
    else:  # the valid rate GBP 1.25 was recorded
        assert sqlite_store.read_frame(
            "SELECT currency, rate_to_functional FROM fx_rates").to_dict("records") == [
            {"currency": "GBP", "rate_to_functional": "1.25"}]


@pytest.mark.slow  # over a second here: not in make test-fast
def test_strict_mode_refuses_the_whole_batch_for_any_rejected_row(sqlite_store, policy, tmp_path):
    rejecting = [case for case in CASES if case.quarantine and not case.earlier]
    assert len(rejecting) >= 20
    for number, case in enumerate(rejecting):
        root = tmp_path / str(number)
        _land(root / "landing", case)
        store = Store(f"sqlite:///{root / 'ledger.db'}")
        store.initialise()
        run_night(store, policy, root / "landing", root / "archive", date(2026, 1, 30))
        with pytest.raises(StrictModeRejectionError, match="rejected"):
            run_night(store, policy, root / "landing", root / "archive", DAY, strict=True)
        assert store.read_frame("SELECT COUNT(*) AS n FROM batches")["n"][0] == 1, case.name
        store.dispose()


def test_hostile_ids_are_stored_verbatim_and_never_run(sqlite_store, policy, tmp_path):
    case = Case("ids", usage(event(SQL_ID, customer=SQL_ID), event(FORMULA_ID, customer="C1")))
    landing = tmp_path / "landing"
    _land(landing, case)
    for day in (date(2026, 1, 30), DAY):
        run_night(sqlite_store, policy, landing, tmp_path / "archive", day)
    uncovered = sqlite_store.read_frame("SELECT customer_id, meter FROM uncovered_usage")
    assert uncovered.to_dict("records") == [{"customer_id": SQL_ID, "meter": "api"}]
    tables = sqlite_store.read_frame("SELECT name FROM sqlite_master WHERE type = 'table'")
    assert "journal_lines" in set(tables["name"])


def test_business_days_cut_at_the_reporting_timezone_across_daylight_saving(sqlite_store, policy,
                                                                          tmp_path):
    """New York's 2026-03-08 is 23 hours: 05:00Z to 04:00Z the next day."""
    new_york = dataclasses.replace(policy, reporting_timezone="America/New_York")
    landing = tmp_path / "landing"
    write_document(landing, "2026-03-08", "purchases", [{
        "purchase_id": "P-1", "customer_id": "C1", "purchased_at": "2026-03-08T05:00:00Z",
        "credits": "100", "amount": "10.00", "currency": "USD"}])
    write_document(landing, "2026-03-08", "usage", [
        dict(zip(USAGE_HEADER, row, strict=True)) for row in [
            event("last-second", occurred_at="2026-03-09T03:59:59Z"),
            event("next-day", occurred_at="2026-03-09T04:00:00Z"),
            event("local-time", occurred_at="2026-03-08T23:30:00-04:00"),
        ]])
    run_night(sqlite_store, new_york, landing, tmp_path / "archive", date(2026, 3, 8))
    quarantine = sqlite_store.read_frame("SELECT row_number, reason FROM quarantine")
    assert quarantine.to_dict("records") == [
        {"row_number": 2, "reason": "occurred_at: is after business date 2026-03-08"}]
    accepted = sqlite_store.read_frame("SELECT SUM(credits_micro) AS n FROM usage_daily")
    assert int(accepted["n"][0]) == 4_000_000


def test_a_link_in_the_landing_day_is_refused_not_followed(sqlite_store, policy, tmp_path):
    outside = tmp_path / "elsewhere.csv"
    outside.write_bytes(usage(event())["usage.csv"])
    day = tmp_path / "landing" / DAY.isoformat()
    day.mkdir(parents=True)
    (day / "usage.csv").symlink_to(outside)
    with pytest.raises(InputFileError) as refusal:
        run_night(sqlite_store, policy, tmp_path / "landing", tmp_path / "archive", DAY)
    assert str(refusal.value) == (f"{day}: usage.csv is not a regular file (links and "
                                  "directories are not read)")
    assert sqlite_store.read_frame("SELECT COUNT(*) AS n FROM batches")["n"][0] == 0


@pytest.mark.slow  # over a second here: not in make test-fast
@pytest.mark.parametrize("chunk_rows", [DEFAULT_CHUNK_ROWS, 2_000], ids=["whole", "chunked"])
def test_credits_a_day_cannot_sum_are_refused_naming_file_and_customer(sqlite_store, policy,
                                                                       tmp_path, chunk_rows):
    """9,224 rows at the bound of one row pass int64 in the day's totals: never a wrapped sum."""
    rows = [event(f"E-{number}", customer="C-big", credits="1000000000")
            for number in range(9_224)]
    case = Case("sum past int64", usage(VALID, *rows))
    landing = tmp_path / "landing"
    _land(landing, case)
    run_night(sqlite_store, policy, landing, tmp_path / "archive", date(2026, 1, 30))
    with pytest.raises(InputFileError) as refusal:
        run_night(sqlite_store, policy, landing, tmp_path / "archive", DAY, chunk_rows=chunk_rows)
    assert str(refusal.value) == (
        "usage.csv: the accepted credits add up to 9,224,000,000,001 credits, more than the "
        "9,223,372,036,854.775807 credits a day's totals can hold; customer C-big accounts for "
        "9,224,000,000,000 credits (a row may carry at most 1,000,000,000 credits)")
    assert sqlite_store.read_frame("SELECT COUNT(*) AS n FROM batches")["n"][0] == 1


def test_a_missing_rate_names_the_rate_row_that_was_rejected(sqlite_store, policy, tmp_path):
    """A rate of 0 is rejected; the night that needs it says so, not just 'no rate'."""
    case = Case("rate of zero needed", {**purchases(lot(currency="EUR")),
                                        **fx_rates(["2026-01-31", "EUR", "0"])})
    landing = tmp_path / "landing"
    _land(landing, case)
    run_night(sqlite_store, policy, landing, tmp_path / "archive", date(2026, 1, 30))
    with pytest.raises(FxRateMissingError) as refusal:
        run_night(sqlite_store, policy, landing, tmp_path / "archive", DAY)
    assert str(refusal.value) == (
        "no exchange rate to USD for EUR on 2026-01-31: land an fx_rates file with them and "
        "run the night again; nothing was posted; fx_rates.csv row 2 gave EUR on 2026-01-31 "
        "but was rejected (rate_to_functional: must be greater than zero)")
    assert sqlite_store.read_frame("SELECT COUNT(*) AS n FROM batches")["n"][0] == 1


def test_sums_of_credits_and_amounts_are_exact_past_int64():
    values = pd.Series([MAX_CREDITS_MICRO] * 9_224 + [7], dtype="int64")
    customers = pd.Series(["C-big"] * 9_224 + ["C1"])
    assert int(values.sum()) < 0  # numpy wraps without a word
    assert exact_sum(values) == 9_224 * 10**15 + 7
    assert exact_sums_by(values, customers).to_dict() == {"C-big": 9_224 * 10**15, "C1": 7}
    assert exact_sum(pd.Series([-5, 3], dtype="int64")) == -2


REFUSED_AT_THE_COMMAND_LINE = ["a trailing comma on every row", "a Parquet list column",
                               "Parquet text that is not UTF-8", "a lone surrogate in JSON lines"]


@pytest.mark.slow  # over a second here: not in make test-fast
@pytest.mark.parametrize("name", REFUSED_AT_THE_COMMAND_LINE)
def test_the_command_line_refuses_a_hostile_file_in_one_line(name, tmp_path):
    """These ended in tracebacks (ArrowNotImplementedError, "Invalid UTF8 payload",
    UnicodeEncodeError) or were read shifted; now: exit 1 and one line naming what to fix."""
    case = next(case for case in CASES if case.name == name)
    _land(tmp_path / "landing", case)
    creditbooks("init", cwd=tmp_path)
    creditbooks("nightly", "--date", "2026-01-30", cwd=tmp_path)
    refused = creditbooks("nightly", "--date", DAY.isoformat(), cwd=tmp_path, check=False)
    assert refused.returncode == 1
    assert refused.stderr.splitlines() == [f"creditbooks: error: {case.refused}"]
