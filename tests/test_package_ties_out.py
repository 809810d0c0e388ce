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
from creditbooks.close import EMPTY_REPORT_COLUMNS, close_period

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
