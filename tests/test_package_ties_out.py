"""Issue 19: every figure that leaves the books ties out, on the hand-worked January close
(see test_close.py for its figures: USD net income 5.67 = breakage 5.00 + usage 0.67,
assets 26.08 = deferred 20.33 + tax 0.08 + earnings 5.67; JPY usage 338)."""

from __future__ import annotations

import csv
import json
from datetime import datetime
from pathlib import Path

import openpyxl
import pytest

from creditbooks.close import close_period
from reports.catalogue import EMPTY_REPORT_COLUMNS

pytestmark = pytest.mark.slow  # posts and closes whole months


@pytest.fixture
def package(january, policy, tmp_path) -> Path:
    return close_period(january, policy, "2026-01", tmp_path / "close", tmp_path / "archive",
                        actor="tester").package


def sheet_rows(package: Path, name: str) -> list[tuple]:
    workbook = openpyxl.load_workbook(package / "close-2026-01.xlsx")
    return [row for row in workbook[name].iter_rows(values_only=True)]


def total_rows(package: Path, name: str) -> dict[str, dict]:
    rows = sheet_rows(package, name)
    header = rows[0]
    return {row[0]: dict(zip(header, row, strict=True)) for row in rows[1:]
            if isinstance(row[0], str) and row[0].startswith("Total ")}


def header_of(package: Path, name: str) -> list[str]:
    with (package / f"{name}.csv").open() as handle:
        return next(csv.reader(handle))


def test_workbook_totals_only_add_what_adds_up_per_currency(package):
    # Statements carry their own totals; the waterfall is one balance shown two ways; KPIs
    # are counts and ratios of different things: none gets a "Total" row that adds them.
    for name in ("income_statement", "balance_sheet", "waterfall", "kpis", "trial_balance"):
        assert total_rows(package, name) == {}, name
    # Listing reports: amounts and counts, per currency; rates never.
    estimates = total_rows(package, "breakage_estimates")
    assert set(estimates) == {"Total USD"}
    assert float(estimates["Total USD"]["actual_breakage"]) == pytest.approx(5.00)
    assert estimates["Total USD"]["actual_rate"] is None
    assert estimates["Total USD"]["estimated_rate"] is None
    by_customer = total_rows(package, "rollforward_by_customer")
    assert float(by_customer["Total USD"]["closing"]) == pytest.approx(20.33)
    assert float(by_customer["Total JPY"]["closing"]) == pytest.approx(662)
    by_meter = total_rows(package, "kpis_by_meter")
    assert by_meter["Total USD"]["price_per_credit"] is None
    assert float(by_meter["Total USD"]["usage_revenue"]) == pytest.approx(0.67)


def test_empty_reports_keep_their_header(package):
    assert (package / "late_entries.csv").read_text() == (
        "business_date,entry_id,kind,customer_id,currency,amount\n")
    assert (package / "reconciliation_items.csv").read_text() == "reconciliation,item\n"
    # The catalogue's headers are the ones the reports write when they have rows.
    for name in EMPTY_REPORT_COLUMNS:
        with (package / f"{name}.csv").open() as handle:
            rows = list(csv.reader(handle))
        assert tuple(rows[0]) == EMPTY_REPORT_COLUMNS[name], name


def test_timestamps_carry_their_offset(package):
    manifest = json.loads((package / "manifest.json").read_text())
    assert datetime.fromisoformat(manifest["closed_at"]).utcoffset() is not None
    with (package / "breakage_by_lot.csv").open() as handle:
        expiring = next(csv.DictReader(handle))
    assert expiring["purchase_id"] == "P-M"
    assert datetime.fromisoformat(expiring["expires_at"]).utcoffset() is not None


def test_comparisons_without_data_say_n_a_and_charts_start_when_the_ledger_did(package):
    with (package / "kpis.csv").open() as handle:
        kpis = list(csv.DictReader(handle))
    burned = next(row for row in kpis if row["metric"] == "credits burned")
    assert burned["this_period (2026-01)"] == "35.833333"
    assert burned["previous_period (2025-12)"] == "n/a"  # the ledger began in January 2026
    assert burned["year_ago (2025-01)"] == "n/a"
    html = (package / "summary.html").read_text()
    trend = html[html.index('aria-label="Usage volume (credits burned)"'):]
    trend = trend[:trend.index("</svg>")]
    assert "2026-01" in trend and "2025-" not in trend  # no months before the ledger began
    usd_price = html[html.index('aria-label="Price vs cost per credit (USD)"'):]
    usd_price = usd_price[:usd_price.index("</svg>")]
    # January has no cost lines: cost per credit is blank in the CSV, so no bar (not a 0 bar).
    assert "<title>price per credit 2026-01: 0.335000</title>" in usd_price
    assert "<title>cost per credit" not in usd_price


def test_breakage_estimates_say_they_are_cumulative(package):
    with (package / "breakage_estimates.csv").open() as handle:
        [usd] = list(csv.DictReader(handle))
    assert (usd["cumulative_to"], usd["product"], usd["actual_breakage"]) == (
        "2026-01-31", usd["product"], "5.00")


def csv_rows(package: Path, name: str) -> list[dict]:
    with (package / f"{name}.csv").open() as handle:
        return list(csv.DictReader(handle))


FIGURES = ("opening_debit", "opening_credit", "period_debit", "period_credit", "closing_debit",
           "closing_credit")


@pytest.mark.parametrize("name", ["trial_balance", "trial_balance_functional"])
def test_the_trial_balance_has_positive_debits_and_credits_that_total_equal(package, name):
    from decimal import Decimal

    rows = csv_rows(package, name)
    assert all(not row[figure].startswith("-") for row in rows for figure in FIGURES)
    totals = {row["currency"]: row for row in rows if row["row_type"] == "total"}
    assert set(totals) == ({"USD"} if name.endswith("functional") else {"JPY", "USD"})
    for currency, total in totals.items():
        accounts = [row for row in rows if row["currency"] == currency
                    and row["row_type"] == "account"]
        for figure in FIGURES:
            assert Decimal(total[figure]) == sum(Decimal(row[figure]) for row in accounts)
        assert total["period_debit"] == total["period_credit"]
        assert total["closing_debit"] == total["closing_credit"]
    usd_cash = next(row for row in rows if row["currency"] == "USD"
                    and row["account"] == "Assets:Cash:Clearing")
    if name == "trial_balance":
        assert (usd_cash["closing_debit"], usd_cash["closing_credit"]) == ("26.08", "0.00")


def test_income_statement_and_balance_sheet_as_accountants_read_them(package):
    usd = [(row["section"], row["line"], row["row_type"], row["amount"])
           for row in csv_rows(package, "income_statement") if row["currency"] == "USD"]
    assert usd == [("Revenue", "Income:Revenue:Breakage", "account", "5.00"),
                   ("Revenue", "Income:Revenue:Usage", "account", "0.67"),
                   ("Revenue", "Total revenue", "subtotal", "5.67"),
                   ("Net income", "Net income", "total", "5.67")]
    sheet = {(row["currency"], row["line"]): row["amount"]
             for row in csv_rows(package, "balance_sheet")}
    assert sheet[("JPY", "Total assets")] == sheet[("JPY", "Total liabilities and equity")]
    assert sheet[("JPY", "Equity:RetainedEarnings")] == "338"  # cumulative net income
    assert sheet[("JPY", "assets - (liabilities + equity)")] == "0"


def test_the_statements_are_in_the_functional_currency_too(package):
    income = csv_rows(package, "income_statement_functional")
    sheet = csv_rows(package, "balance_sheet_functional")
    rollforward = csv_rows(package, "rollforward_functional")
    assert {row["currency"] for row in income + sheet + rollforward} == {"USD"}
    lines = {row["line"]: row["amount"] for row in income}
    # JPY usage 338 at the JPY purchase's own rate joins the USD 0.67: 2.93 in USD.
    assert (lines["Income:Revenue:Usage"], lines["Total revenue"], lines["Net income"]) == (
        "2.93", "7.93", "7.93")
    balance = {row["line"]: row["amount"] for row in sheet}
    assert balance["assets - (liabilities + equity)"] == "0.00"
    assert balance["Liabilities:DeferredRevenue:Credits"] == rollforward[0]["closing"] == "24.77"
    assert balance["Equity:RetainedEarnings"] == "7.93"
    waterfall = {row["method"]: row for row in csv_rows(package, "waterfall_functional")}
    assert {row["currency"] for row in waterfall.values()} == {"USD"}
    assert waterfall["contractual expiry"]["total"] == waterfall["burn forecast"]["total"] == "24.77"


def test_balance_sheet_and_waterfall_take_functional_on_the_command_line(january, package, tmp_path):
    import subprocess
    import sys

    command = [str(Path(sys.executable).with_name("creditbooks")), "--db", january.url, "report"]
    for report in ("balance-sheet", "waterfall"):
        shown = subprocess.run([*command, report, "--period", "2026-01", "--archive",
                                str(tmp_path / "archive"), "--functional", "--format", "json"],
                               capture_output=True, text=True)
        assert shown.returncode == 0, shown.stderr
        rows = json.loads(shown.stdout)["rows"]
        assert rows == json.loads((package / f"{report.replace('-', '_')}_functional.json")
                                  .read_text())["rows"]


def test_uncovered_usage_counts_every_meters_accepted_usage_and_the_package_ties_out(package):
    from decimal import Decimal

    from reports.outputs.verify_package import verify_package

    rows = csv_rows(package, "uncovered_usage")
    *meters, every = rows
    assert every["meter"] == "all meters"
    # January accepted 42.833333 credits over every meter, some with no uncovered usage.
    assert every["accepted_credits"] == "42.833333"
    assert Decimal(every["credits"]) == sum(Decimal(row["credits"]) for row in meters)
    assert verify_package(package) == []


def test_the_command_line_trial_balance_has_debit_and_credit_columns_totalled_per_currency(
        january, package, tmp_path):
    from tests.support.cli import creditbooks

    def shown(*options: str) -> list[dict]:
        output = creditbooks("--db", january.url, "report", "trial-balance", "--period",
                             "2026-01", "--format", "json", *options, cwd=tmp_path).stdout
        return json.loads(output)["rows"]

    rows = shown()
    assert [(row["currency"], row["account"], row["row_type"], row["period_debit"],
             row["period_credit"], row["closing_debit"], row["closing_credit"])
            for row in rows] == [
        ("JPY", "Assets:Cash:Clearing", "account", "1000", "0", "1000", "0"),
        ("JPY", "Income:Revenue:Usage", "account", "0", "338", "0", "338"),
        ("JPY", "Liabilities:DeferredRevenue:Credits", "account", "338", "1000", "0", "662"),
        ("JPY", "Total", "total", "1338", "1338", "1000", "1000"),
        ("USD", "Assets:Cash:Clearing", "account", "26.08", "0.00", "26.08", "0.00"),
        ("USD", "Income:Revenue:Breakage", "account", "0.00", "5.00", "0.00", "5.00"),
        ("USD", "Income:Revenue:Usage", "account", "0.00", "0.67", "0.00", "0.67"),
        # usage 0.67 + breakage 5.00 debited; purchases 26.00 credited; 20.33 deferred
        ("USD", "Liabilities:DeferredRevenue:Credits", "account", "5.67", "26.00", "0.00",
         "20.33"),
        ("USD", "Liabilities:Tax:Sales", "account", "0.00", "0.08", "0.00", "0.08"),
        ("USD", "Total", "total", "31.75", "31.75", "26.08", "26.08")]
    assert {row[side] for row in rows for side in ("opening_debit", "opening_credit")} == {
        "0", "0.00"}  # the ledger began in January
    # The same statement as the close package's: one function makes both.
    assert rows == json.loads((package / "trial_balance.json").read_text())["rows"]
    functional = shown("--functional")
    assert {row["currency"] for row in functional} == {"USD"}
    assert [(row["account"], row["period_debit"], row["period_credit"]) for row in functional
            if row["row_type"] == "total"] == [("Total", "40.71", "40.71")]
    assert next(row["closing_credit"] for row in functional
                if row["account"] == "Liabilities:DeferredRevenue:Credits") == "24.77"
    csv_text = creditbooks("--db", january.url, "report", "trial-balance", "--period", "2026-01",
                           "--format", "csv", cwd=tmp_path).stdout
    assert csv_text.splitlines()[0] == ("currency,account,row_type,opening_debit,opening_credit,"
                                        "period_debit,period_credit,closing_debit,closing_credit")
    assert not any(figure.startswith("-") for line in csv_text.splitlines()[1:]
                   for figure in line.split(",")[3:])


def test_the_summary_page_shows_the_functional_statements_and_verify_reads_them_back(
        january, package):
    from reports.outputs.verify_package import _SummaryReader, verify_package

    html = (package / "summary.html").read_text()
    reader = _SummaryReader()
    reader.feed(html)
    income = reader.tables["Income statement (functional currency)"]
    assert income[0] == ["currency", "section", "line", "row_type", "amount"]
    # JPY usage 338 at its purchase's rate joins the USD 0.67: 2.93; with breakage 5.00.
    assert [(line, amount) for _, _, line, _, amount in income[1:]] == [
        ("Income:Revenue:Breakage", "5.00"), ("Income:Revenue:Usage", "2.93"),
        ("Total revenue", "7.93"), ("Net income", "7.93")]
    sheet = {row[2]: row[4] for row in reader.tables["Balance sheet (functional currency)"][1:]}
    assert sheet["Liabilities:DeferredRevenue:Credits"] == "24.77"
    assert sheet["assets - (liabilities + equity)"] == "0.00"
    waterfall = reader.tables["Waterfall of the closing balance (functional currency)"]
    assert [row[waterfall[0].index("total")] for row in waterfall[1:]] == ["24.77", "24.77"]
    for title in ("Trial balance (functional currency)",
                  "Deferred revenue rollforward (functional currency)", "Balance sheet"):
        assert len(reader.tables[title]) > 1, title
    with january.engine.connect() as ledger:  # JPY and USD lines, and their functional sums
        assert verify_package(package, ledger=ledger) == []
    altered = html.replace("<td>Net income</td><td>total</td><td>7.93</td>",
                           "<td>Net income</td><td>total</td><td>7.94</td>")
    assert altered.count("7.94") == 1
    problems = verify_package(package, rendered_html=altered)
    assert problems == ["summary.html table 'Income statement (functional currency)' row 4 "
                        "column amount: '7.94' but income_statement_functional.csv says '7.93'"]


# --accept-exceptions (issue 19's rule): accepted exceptions may lock a period whose
# reconciliations failed, recorded in the manifest with the reason; a package whose own
# statements do not tie (the waterfall's closing deferred against the rollforward's) is a
# defect of the books' outputs, not an accounting exception, and is never locked.


def test_accepted_exceptions_lock_and_the_manifest_records_them_with_the_reason(
        january, policy, tmp_path):
    from ledger.locks import locked_periods
    from reports.outputs.verify_package import verify_package
    from tests.support.close import close

    with january.transaction() as connection:  # accepted usage nobody burned
        connection.exec_driver_sql(
            "INSERT INTO usage_daily (business_date, customer_id, meter, event_count, "
            "late_event_count, credits_micro, batch_id) VALUES "
            "('2026-01-15', 'X', 'api', 1, 0, 2000000, 'nightly-2026-01-15')")
    outcome = close(january, policy, tmp_path, "2026-01", accept_exceptions=True,
                    reason="usage row X injected on purpose")
    with january.engine.connect() as connection:
        assert "2026-01" in locked_periods(connection)
    manifest = json.loads((outcome.package / "manifest.json").read_text())
    assert manifest["reconciliations_failed"] == ["usage credits accepted = burned + uncovered"]
    assert manifest["accepted_exceptions_reason"] == "usage row X injected on purpose"
    failed = [row for row in csv_rows(outcome.package, "reconciliations")
              if row["passed"] == "False"]
    assert [row["reconciliation"] for row in failed] == [
        "usage credits accepted = burned + uncovered"]
    assert verify_package(outcome.package) == []  # its statements tie: only the books' input is off


def test_accepted_exceptions_never_lock_a_package_whose_statements_do_not_tie(
        january, policy, tmp_path):
    import pandas as pd

    from creditbooks.close import CloseRefusedError
    from ledger.journal import JournalBatch
    from ledger.locks import locked_periods
    from ledger.store import post_journal
    from tests.support.close import close

    # A hand-made entry recognises 1.00 of P-B's deferred revenue that its lot never gave:
    # the GL's deferred revenue (the rollforward) is 19.33, the lots' (the waterfall) 20.33.
    entry = JournalBatch(
        pd.DataFrame([{"entry_id": "manual/1", "kind": "usage", "business_date": "2026-01-31",
                       "period": "2026-01", "customer_id": "A", "source_ref": "manual"}]),
        pd.DataFrame([
            {"entry_id": "manual/1", "line_number": 1, "currency": "USD", "amount_minor": 100,
             "account": "Liabilities:DeferredRevenue:Credits", "functional_minor": 100,
             "meter": None, "purchase_id": "P-B"},
            {"entry_id": "manual/1", "line_number": 2, "currency": "USD", "amount_minor": -100,
             "account": "Income:Revenue:Usage", "functional_minor": -100, "meter": "api",
             "purchase_id": "P-B"}]))
    with january.transaction() as connection:
        post_journal(connection, entry, {"batch_id": "nightly-2026-01-31", "policy_version": "t",
                                         "recorded_at": pd.Timestamp("2026-02-01")})
    with pytest.raises(CloseRefusedError) as refused:
        close(january, policy, tmp_path, "2026-01", accept_exceptions=True,
              reason="subledger differs from the GL; accepted")
    message = str(refused.value)
    assert message.startswith("period 2026-01 not locked: the package does not tie out (")
    assert message.endswith("the first: waterfall.csv row 3 column total: 20.33 but "
                            "rollforward's closing is 19.33"), message
    with january.engine.connect() as connection:
        assert "2026-01" not in locked_periods(connection)
    assert not (tmp_path / "close" / "2026-01" / "v1").exists()


def test_a_figure_only_some_rows_have_is_a_column_of_the_csv_and_the_sheet(sqlite_store, policy,
                                                                         tmp_path):
    from datetime import date

    from reports.outputs.verify_package import verify_package
    from tests.support.landing import write_document
    from tests.support.nights import post_days
    from tests.support.scenario import write_scenario

    # The hand-worked January with a USD cost line on the api meter: USD meters carry cost
    # figures; JPY meters have none and come first. Their cost cells are blank, and the USD
    # figures are still in the file (the CSV's header was once the first row's keys, and
    # the USD costs were left out of the CSV and the workbook).
    write_scenario(tmp_path / "landing")
    write_document(tmp_path / "landing", "2026-01-31", "costs", [
        {"cost_id": "K1", "date": "2026-01-31", "meter": "api", "amount": "1.00",
         "currency": "USD", "cost_type": "variable", "vendor": "cloud", "memo": ""}])
    post_days(sqlite_store, policy, tmp_path, date(2026, 1, 1), date(2026, 1, 31))
    package = close_period(sqlite_store, policy, "2026-01", tmp_path / "close",
                           tmp_path / "archive", actor="tester").package
    by_meter = {(row["meter"], row["currency"]): row for row in csv_rows(package, "kpis_by_meter")}
    assert list(by_meter)[0][1] == "JPY"
    assert (by_meter[("api", "JPY")]["costs"], by_meter[("api", "JPY")]["cost_per_credit"]) == (
        "", "")
    usd = [row for row in by_meter.values() if row["currency"] == "USD"]
    assert usd and all(row["costs"] and row["cost_per_credit"] for row in usd)
    header = sheet_rows(package, "kpis_by_meter")[0]
    assert {"costs", "cost_per_credit", "gross_margin_per_credit"} <= set(header)
    json_rows = json.loads((package / "kpis_by_meter.json").read_text())["rows"]
    assert [row.get("costs", "") for row in json_rows] == [
        row["costs"] for row in csv_rows(package, "kpis_by_meter")]
    assert verify_package(package) == []  # the JSON read back against the CSV
