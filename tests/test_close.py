"""Month-end close on the hand-worked scenario (tests/support/scenario.py), January complete.

Open lots at the end of January: P-A (USD, 1 credit = 0.33, expires 2026-02-01 12:00),
P-B (USD, 10 credits = 20.00, never), P-G (promotional, 2 credits, never), P-J (JPY,
66.166667 credits = 662, never). Closing deferred: USD 20.33, JPY 662.

Waterfall by contractual expiry: USD 2026-02 0.33, thereafter 20.00; JPY thereafter 662.
Burn forecast, trailing 30 days: A burned 2 credits (rate 2/30 a day), B 33.833333.
  USD Feb: demand floor(2/30 x 28) = 1.866666 credits: P-A's last credit (67 -> 100: 0.33),
       then P-G 0.866666 (no value). Mar: demand 2.066666: P-G's other 1.133334, then P-B
       0.933332 -> round(2000 x 0.933332 / 10) = 187: 1.87. Apr: 2.000000 more of P-B ->
       round(586.6664) = 587: +4.00.
  JPY Feb: demand floor(33.833333 / 30 x 28) = 31.577777 -> used 65.411110 ->
       round(654.1111) = 654: +316.
Unit economics January: paid credits purchased 3 + 10 + 5 + 100 = 118, promotional 2,
burned 35.833333, expired 5; active A, B and D (usage, even uncovered); USD price per paid
credit 0.67 / 2 = 0.335; JPY 338 / 33.833333 = 9.990148; breakage of the expired USD lot
P-M 5.00 of its 5.00.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import tempfile
from datetime import date, datetime
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from creditbooks.close import CloseRefusedError, reopen_period
from creditbooks.night.run import run_night
from ledger.journal import JournalBatch
from ledger.locks import PeriodLockedError, locked_periods, record_period_event
from ledger.periods import Period
from ledger.store import post_journal
from reports.outputs.package import PackageWriter, neutralise, sha256_of
from tests.support.close import close
from tests.support.landing import write_document
from tests.support.nights import post_days
from tests.support.scenario import purchase, usage, write_scenario

pytestmark = pytest.mark.slow  # posts and closes whole months


def rows_of(package: Path, name: str) -> list[dict]:
    with (package / f"{name}.csv").open() as handle:
        return list(csv.DictReader(handle))


def test_close_writes_a_package_with_the_hand_worked_figures(january, policy, tmp_path):
    outcome = close(january, policy, tmp_path, "2026-01")
    assert (outcome.status, outcome.version) == ("closed", 1)
    assert len(outcome.empty_days) == 29
    package = outcome.package
    assert package == tmp_path / "close" / "2026-01" / "v1"

    waterfall = {(row["method"], row["currency"]): row for row in rows_of(package, "waterfall")}
    expiry_usd = waterfall[("contractual expiry", "USD")]
    assert (expiry_usd["2026-02"], expiry_usd["thereafter"], expiry_usd["total"]) == (
        "0.33", "20.00", "20.33")
    forecast_usd = waterfall[("burn forecast", "USD")]
    assert (forecast_usd["2026-02"], forecast_usd["2026-03"], forecast_usd["2026-04"],
            forecast_usd["total"]) == ("0.33", "1.87", "4.00", "20.33")
    assert waterfall[("burn forecast", "JPY")]["2026-02"] == "316"
    assert waterfall[("contractual expiry", "JPY")]["thereafter"] == "662"

    aging = {(row["currency"], row["bucket"]): (row["lots"], row["credits_remaining"],
                                                row["value_remaining"])
             for row in rows_of(package, "lot_aging")}
    assert aging == {("USD", "< 30 days"): ("1", "1", "0.33"), ("USD", "never"): ("2", "12", "20.00"),
                     ("JPY", "never"): ("1", "66.166667", "662")}

    economics = {(row["metric"], row["currency"]): row["this_period (2026-01)"]
                 for row in rows_of(package, "kpis")}
    assert economics[("credits purchased (paid)", "")] == "118"
    assert economics[("credits granted (promotional)", "")] == "2"
    assert economics[("credits burned", "")] == "35.833333"
    assert economics[("credits expired", "")] == "5"
    assert economics[("active customers", "")] == "3"  # A, B, and D whose usage was uncovered
    assert economics[("effective price per credit", "USD")] == "0.335000"
    assert economics[("effective price per credit", "JPY")] == "9.990148"
    assert economics[("breakage rate of expired lots", "USD")] == "1.0000"  # P-M: 5.00 of 5.00

    by_customer = {(row["currency"], row["customer"]): row
                   for row in rows_of(package, "rollforward_by_customer")}
    assert (by_customer[("USD", "A")]["purchases"], by_customer[("USD", "A")]["usage_revenue"],
            by_customer[("USD", "A")]["closing"]) == ("21.00", "0.67", "20.33")
    assert (by_customer[("USD", "C")]["breakage"], by_customer[("USD", "C")]["closing"]) == (
        "5.00", "0.00")
    assert all(row["passed"] == "True" for row in rows_of(package, "reconciliations"))

    assert [(row["currency"], row["line"], row["amount"])
            for row in rows_of(package, "income_statement")] == [
        ("JPY", "Income:Revenue:Usage", "338"), ("JPY", "Total revenue", "338"),
        ("JPY", "Net income", "338"),
        ("USD", "Income:Revenue:Breakage", "5.00"), ("USD", "Income:Revenue:Usage", "0.67"),
        ("USD", "Total revenue", "5.67"), ("USD", "Net income", "5.67")]
    usd_sheet = {row["line"]: row["amount"] for row in rows_of(package, "balance_sheet")
                 if row["currency"] == "USD"}
    assert usd_sheet == {"Assets:Cash:Clearing": "26.08", "Total assets": "26.08",
                         "Liabilities:DeferredRevenue:Credits": "20.33",
                         "Liabilities:Tax:Sales": "0.08", "Total liabilities": "20.41",
                         "Equity:RetainedEarnings": "5.67", "Total equity": "5.67",
                         "Total liabilities and equity": "26.08",
                         "assets - (liabilities + equity)": "0.00"}
    assert [(row["customer_id"], row["meter"], row["currency"], row["credits"], row["revenue"])
            for row in rows_of(package, "revenue_by_customer")] == [
        ("A", "api", "USD", "1", "0.33"), ("A", "gpu", "USD", "1", "0.34"),
        ("B", "api", "JPY", "33.833333", "338")]
    assert [(row["purchase_id"], row["credits_expired"], row["breakage"])
            for row in rows_of(package, "breakage_by_lot")] == [("P-M", "5", "5.00")]

    manifest = json.loads((package / "manifest.json").read_text())
    assert manifest["version"] == 1 and manifest["closed_by"] == "tester"
    entries = january.read_frame("SELECT COUNT(*) AS n FROM journal_entries")["n"][0]
    assert manifest["chain_head"]["sequence"] == entries and len(manifest["chain_head"]["hash"]) == 64
    assert manifest["files"] == {path.name: sha256_of(path) for path in package.iterdir()
                                 if path.name != "manifest.json"}
    workbook = openpyxl.load_workbook(package / "close-2026-01.xlsx")
    sheet = workbook["rollforward"]
    assert sheet.freeze_panes == "A2"
    header, *rows = sheet.iter_rows(values_only=True)
    usd = next(row for row in rows if row[header.index("currency")] == "USD")
    # Closing, after refunds, escheat and (none here) manual journals.
    assert float(usd[header.index("closing")]) == pytest.approx(20.33)
    with january.engine.connect() as connection:
        assert locked_periods(connection) == {"2026-01"}


def test_revenue_out_of_the_opening_balance_and_late_usage_in_the_next_period(january, policy,
                                                                             tmp_path):
    close(january, policy, tmp_path, "2026-01")
    # Feb 1 from the scenario, plus an event that happened on Jan 31 but arrives a day late.
    rows = [usage("U5", "A", "2026-02-01T08:00:00Z", "api", "0.50"),
            usage("U6", "A", "2026-02-01T13:00:00Z", "gpu", "4"),
            usage("U9", "B", "2026-01-31T23:00:00Z", "api", "1")]
    write_document(tmp_path / "landing", "2026-02-01", "usage", rows)
    post_days(january, policy, tmp_path, date(2026, 2, 1), date(2026, 2, 28))
    outcome = close(january, policy, tmp_path, "2026-02")
    opening = {row["currency"]: row for row in rows_of(outcome.package, "revenue_from_opening")}
    assert (opening["USD"]["usage_revenue"], opening["USD"]["breakage"], opening["USD"]["total"]) == (
        "4.16", "0.17", "4.33")
    assert opening["JPY"]["usage_revenue"] == "10"  # U9: 1 credit of P-J, 338 -> 348
    late = rows_of(outcome.package, "late_usage")
    assert late == [{"business_date": "2026-02-01", "customer_id": "B", "meter": "api",
                     "occurred_period": "2026-01", "events": "1", "credits": "1"}]


def test_a_failing_reconciliation_blocks_the_lock_unless_accepted_with_a_reason(january, policy,
                                                                                 tmp_path):
    with january.transaction() as connection:  # accepted usage nobody burned: a real break
        connection.exec_driver_sql(
            "INSERT INTO usage_daily (business_date, customer_id, meter, event_count, "
            "late_event_count, credits_micro, batch_id) VALUES "
            "('2026-01-15', 'X', 'api', 1, 0, 2000000, 'nightly-2026-01-15')")
    with pytest.raises(CloseRefusedError, match=r"usage credits accepted = burned \+ uncovered: "
                       r"2026-01-15: accepted 2, burned 0 \+ uncovered 0"):
        close(january, policy, tmp_path, "2026-01")
    with january.engine.connect() as connection:
        assert locked_periods(connection) == set()
    assert not (tmp_path / "close" / "2026-01").exists()
    with pytest.raises(CloseRefusedError, match="needs --reason"):
        close(january, policy, tmp_path, "2026-01", accept_exceptions=True)
    outcome = close(january, policy, tmp_path, "2026-01", accept_exceptions=True,
                    reason="test data injected on purpose")
    assert outcome.failed_reconciliations == ("usage credits accepted = burned + uncovered",)
    event = january.read_frame("SELECT action, reason, accepted_exceptions FROM period_events")
    assert event.iloc[0].tolist() == ["close", "test data injected on purpose", True]


def test_a_locked_period_accepts_no_postings_and_late_nights_post_into_the_next(store, policy,
                                                                               tmp_path):
    with store.transaction() as connection:
        record_period_event(connection, "2026-01", "close", 1, "tester", "", False, "",
                            datetime(2026, 2, 3))
    entry = JournalBatch(
        pd.DataFrame([{"entry_id": "manual/1", "kind": "usage", "business_date": date(2026, 1, 20),
                       "period": "2026-01", "customer_id": "A", "source_ref": "manual"}]),
        pd.DataFrame([{"entry_id": "manual/1", "line_number": 1, "account": "A", "currency": "USD",
                       "amount_minor": 1, "functional_minor": 1, "meter": None,
                       "purchase_id": None},
                      {"entry_id": "manual/1", "line_number": 2, "account": "B", "currency": "USD",
                       "amount_minor": -1, "functional_minor": -1, "meter": None,
                       "purchase_id": None}]))
    with pytest.raises(PeriodLockedError, match="period 2026-01 is locked"):
        with store.transaction() as connection:
            post_journal(connection, entry, {"batch_id": "x", "policy_version": "x",
                                             "recorded_at": pd.Timestamp("2026-02-03")})
    write_document(tmp_path / "landing", "2026-01-30", "purchases", [purchase("P-L", "L", "5", "5.00")])
    run_night(store, policy, tmp_path / "landing", tmp_path / "archive", date(2026, 1, 30))
    posted = store.read_frame("SELECT entry_id, business_date, period FROM journal_entries")
    assert posted.astype(str).values.tolist() == [["purchase/P-L", "2026-01-30", "2026-02"]]


def test_periods_close_in_order_close_once_and_reopen_on_the_record(january, policy, tmp_path):
    post_days(january, policy, tmp_path, date(2026, 2, 1), date(2026, 2, 28))
    with pytest.raises(CloseRefusedError, match="close 2026-01 first"):
        close(january, policy, tmp_path, "2026-02")
    assert close(january, policy, tmp_path, "2026-01").status == "closed"
    assert close(january, policy, tmp_path, "2026-01").status == "already closed"
    assert close(january, policy, tmp_path, "2026-02").status == "closed"
    with pytest.raises(CloseRefusedError, match="reopen 2026-02 first"):
        reopen_period(january, "2026-01", "found an error", actor="controller", policy=policy,
                      approved_by="cfo")
    reopen_period(january, "2026-02", "late vendor credit note", actor="controller",
                  policy=policy, approved_by="cfo")
    again = close(january, policy, tmp_path, "2026-02")
    assert (again.version, again.package.name) == (2, "v2")
    assert (tmp_path / "close" / "2026-02" / "v1" / "manifest.json").exists()
    events = january.read_frame("SELECT period, action, version, actor, reason FROM period_events "
                                "ORDER BY id")
    assert events.values.tolist() == [
        ["2026-01", "close", 1, "tester", ""], ["2026-02", "close", 1, "tester", ""],
        ["2026-02", "reopen", 1, "controller", "late vendor credit note"],
        ["2026-02", "close", 2, "tester", ""]]


def test_an_incomplete_period_is_not_closed(sqlite_store, policy, tmp_path):
    write_scenario(tmp_path / "landing")
    post_days(sqlite_store, policy, tmp_path, date(2026, 1, 1), date(2026, 1, 29))
    with pytest.raises(CloseRefusedError, match="no published nightly batch for 2026-01-30, 2026-01-31"):
        close(sqlite_store, policy, tmp_path, "2026-01")


def test_spreadsheet_formula_injection_is_neutralised(tmp_path):
    rows = [{"customer_id": "=HYPERLINK(\"http://x\")", "currency": "USD", "amount": "-5.00"},
            {"customer_id": "@SUM(A1)", "currency": "USD", "amount": "1.00"}]
    writer = PackageWriter(tmp_path / "2026-01", Period("2026-01"), ["rows"])
    writer.add("rows", rows)  # the package's CSV and its workbook sheet, as a close writes them
    package = writer.finish({"rows": rows}, {}, dict).parent
    assert (package / "rows.csv").read_text().splitlines()[1].startswith("\"'=HYPERLINK")
    sheet = openpyxl.load_workbook(package / "close-2026-01.xlsx")["rows"]
    assert sheet["A2"].value == "'=HYPERLINK(\"http://x\")" and sheet["A2"].data_type == "s"
    assert float(sheet["C2"].value) == -5.0
    assert neutralise("-5.00") == "-5.00" and neutralise("+SUM(1)") == "'+SUM(1)"


def test_the_summary_renders_in_a_real_headless_browser_with_its_charts(january, policy, tmp_path):
    package = close(january, policy, tmp_path, "2026-01").package
    command = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
               "--no-first-run", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", f"--user-data-dir={tempfile.mkdtemp()}"]
    dom = subprocess.run([*command, "--dump-dom", (package / "summary.html").as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    assert dom.count('<svg class="chart bridge"') == 2  # one bridge per currency (JPY, USD)
    assert dom.count('<svg class="chart waterfall"') == 2
    assert '<text class="value"' in dom and ">20.33</text>" in dom
    screenshot = tmp_path / "summary.png"
    subprocess.run([*command, "--window-size=900,1400", f"--screenshot={screenshot}",
                    (package / "summary.html").as_uri()], capture_output=True, timeout=120)
    assert screenshot.stat().st_size > 10_000  # a rendered page, not a blank one


def test_a_closed_period_is_unchanged_by_later_nights(january, policy, tmp_path):
    from ledger.digest import journal_digest
    from reports.statements import trial_balance

    package = close(january, policy, tmp_path, "2026-01").package
    manifest = json.loads((package / "manifest.json").read_text())
    before = trial_balance(january, "2026-01")
    post_days(january, policy, tmp_path, date(2026, 2, 1), date(2026, 2, 28))
    with january.engine.connect() as connection:
        digest, lines = journal_digest(connection, "2026-01")
    assert (digest, lines) == (manifest["journal_digest"], manifest["journal_lines"])
    assert trial_balance(january, "2026-01") == before


def test_every_close_report_is_in_the_package_as_csv_and_json_and_on_the_command_line(
        sqlite_store, policy, tmp_path):
    from reports.catalogue import REPORT_NAMES, report_builders

    write_scenario(tmp_path / "landing")
    post_days(sqlite_store, policy, tmp_path, date(2026, 1, 1), date(2026, 1, 31))
    assert set(report_builders(sqlite_store, policy, "2026-01", tmp_path / "archive")) == set(
        REPORT_NAMES)
    package = close(sqlite_store, policy, tmp_path, "2026-01").package
    for name in REPORT_NAMES:
        document = json.loads((package / f"{name}.json").read_text())
        assert (document["report"], document["period"]) == (name, "2026-01")
        with (package / f"{name}.csv").open() as handle:
            assert len(list(csv.DictReader(handle))) == len(document["rows"])
    shown = subprocess.run(
        [str(Path(sys.executable).with_name("creditbooks")), "--db", sqlite_store.url, "report",
         "waterfall", "--period", "2026-01", "--archive", str(tmp_path / "archive"), "--format",
         "json"], capture_output=True, text=True, check=True).stdout
    assert json.loads(shown)["rows"] == json.loads((package / "waterfall.json").read_text())["rows"]
