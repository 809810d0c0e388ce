"""verify-package's ties between reports (issue 19): an auditor edits several files of a
package consistently (every copy of a figure, its totals, the manifest re-hashed) and each
tie, taking its two sides from different files, still names the file, row and column.

The package is the hand-worked scenario's February (tests/support/scenario.py: USD opening
20.33, usage 4.16, breakage 0.17, closing 16.00; JPY 662 untouched), with the JPY rate moved
at the month ends (0.0070 on Jan 31, 0.0068 on Feb 28) so the functional statements carry
an FX line; purchases and refunds come from the refund scenario's March (purchases 11.00,
usage 6.66, refunds 4.34)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest

from reports.outputs.verify_package import verify_package
from tests.support.close import close_months
from tests.support.gift_cards import gift_card_policy
from tests.support.landing import write_document
from tests.support.package_forgery import edit, edit_bridge, rehash_manifest, replace_in_page
from tests.support.refunds import write_refund_scenario
from tests.support.scenario import write_scenario

pytestmark = pytest.mark.slow  # posts and closes whole months

CREDITBOOKS = str(Path(sys.executable).with_name("creditbooks"))
USAGE, BREAKAGE = "Income:Revenue:Usage", "Income:Revenue:Breakage"
DEFERRED, FX = "Liabilities:DeferredRevenue:Credits", "Income:ForeignExchange:Unrealised"


@pytest.fixture(scope="module")
def february_package(tmp_path_factory) -> Path:
    from rules.policy import load_policy

    root = tmp_path_factory.mktemp("february")
    write_scenario(root / "landing")
    for day, rate in (("2026-01-31", "0.0070"), ("2026-02-28", "0.0068")):
        write_document(root / "landing", day, "fx_rates", [
            {"date": day, "currency": "JPY", "rate_to_functional": rate}])
    return close_months(root, load_policy(), "2026-01", "2026-02")


@pytest.fixture(scope="module")
def refund_package(tmp_path_factory) -> Path:
    from rules.policy import load_policy

    root = tmp_path_factory.mktemp("refunds")
    write_refund_scenario(root / "landing")
    return close_months(root, load_policy(), "2026-03")


@pytest.fixture
def february(february_package, tmp_path) -> Path:
    return Path(shutil.copytree(february_package, tmp_path / "february"))


@pytest.fixture
def march(refund_package, tmp_path) -> Path:
    return Path(shutil.copytree(refund_package, tmp_path / "march"))


def verify_on_the_command_line(directory: Path) -> list[str]:
    shown = subprocess.run([CREDITBOOKS, "verify-package", str(directory)],
                           capture_output=True, text=True)
    assert shown.returncode == 1, shown.stdout + shown.stderr
    return shown.stdout.splitlines()


def test_the_untouched_packages_tie_out(february_package, refund_package):
    import csv

    with (february_package / "income_statement_functional.csv").open() as handle:
        fx = [row for row in csv.DictReader(handle) if row["line"] == FX]
    assert [row["amount"] for row in fx] == ["-0.20"]  # 1000 JPY x (0.0068 - 0.0070)
    assert verify_package(february_package) == []
    assert verify_package(refund_package) == []


def move_revenue_from_breakage_to_usage(package: Path) -> None:
    """0.04 of USD breakage shown as usage instead, everywhere the statements, the
    rollforward and its breakdowns, the disaggregation, the revenue from the opening
    balance and the bridge show them: each foots and ties to the others."""
    for name in ("income_statement", "trial_balance"):
        line = "line" if name == "income_statement" else "account"
        amount = "amount" if name == "income_statement" else "period_credit"
        edit(package, name, {"currency": "USD", line: BREAKAGE}, **{amount: "0.13"})
        edit(package, name, {"currency": "USD", line: USAGE}, **{amount: "4.20"})
    edit(package, "trial_balance", {"currency": "USD", "account": BREAKAGE},
         closing_credit="5.13")
    edit(package, "trial_balance", {"currency": "USD", "account": USAGE}, closing_credit="4.87")
    for name, key in (("rollforward", {}), ("rollforward_by_customer", {"customer": "A"}),
                      ("rollforward_by_product", {"product": "pack"}),
                      ("revenue_from_opening", {})):
        edit(package, name, {"currency": "USD", **key}, usage_revenue="4.20", breakage="0.13")
    disaggregation = "disclosure_revenue_disaggregation"
    for key in ({"dimension": "product", "key": "pack"},
                {"dimension": "customer country", "key": "(not given)"}):
        edit(package, disaggregation, key, usage_revenue="4.20", breakage="0.13")
    edit(package, disaggregation, {"dimension": "meter", "key": "(breakage: no meter)"},
         breakage="0.13", total="0.13")
    edit(package, disaggregation, {"dimension": "meter", "key": "api"}, usage_revenue="0.20",
         total="0.20")
    edit_bridge(package, "USD", "usage", "-4.20")
    edit_bridge(package, "USD", "breakage", "-0.13")
    rehash_manifest(package)


def test_revenue_listings_and_breakage_by_lot_tie_to_the_income_statement(february):
    move_revenue_from_breakage_to_usage(february)
    usage = "income_statement.csv's Income:Revenue:Usage less manual journals is 4.20"
    assert verify_package(february) == [
        f"revenue_by_customer.csv currency USD column revenue: sums to 4.16 but {usage}",
        f"kpis_by_product.csv currency USD column usage_revenue: sums to 4.16 but {usage}",
        f"kpis_by_meter.csv currency USD column usage_revenue: sums to 4.16 but {usage}",
        "breakage_by_lot.csv currency USD column breakage: sums to 0.17 but "
        "income_statement.csv's Income:Revenue:Breakage less manual journals is 0.13",
        # The forgery moved A's rollforward row, not its revenue_by_customer rows.
        "rollforward_by_customer.csv row 3 column usage_revenue: 4.20 but "
        "revenue_by_customer's sum for customer A in USD is 4.16"]
    assert ("revenue_by_customer.csv currency USD column revenue: sums to 4.16 but "
            f"{usage}") in verify_on_the_command_line(february)


def test_revenue_moved_to_another_customer_is_named_by_the_rollforward_by_customer(february):
    """Customer A's 0.16 of api revenue shown as customer B's in revenue_by_customer (every
    copy, the manifest re-hashed): every total is unchanged, so only the tie of each
    customer's revenue to its rollforward row can tell."""
    edit(february, "revenue_by_customer", {"customer_id": "A", "meter": "api"},
         customer_id="B")
    rehash_manifest(february)
    assert verify_package(february) == [
        "rollforward_by_customer.csv row 3 column usage_revenue: 4.16 but "
        "revenue_by_customer's sum for customer A in USD is 4.00",
        "revenue_by_customer.csv customer B currency USD column revenue: sums to 0.16 but "
        "rollforward_by_customer has no row for it"]


def test_an_income_account_left_off_the_functional_income_statement_is_named(february):
    from tests.support.package_forgery import drop_row

    statement = "income_statement_functional"
    drop_row(february, statement, {"line": FX})
    drop_row(february, statement, {"line": "Total foreign exchange"})
    edit(february, statement, {"line": "Net income"}, amount="4.33")
    rehash_manifest(february)
    assert verify_package(february) == [
        "income_statement_functional.csv currency USD column line: no line for "
        f"{FX}, which trial_balance_functional.csv row 3 moves by -0.20 "
        "(period_credit - period_debit)",
        "income_statement_functional.csv row 5 column amount: 4.33 but "
        "trial_balance_functional.csv's Net income accounts' period_credit - period_debit is "
        "4.13",
        "balance_sheet_functional.csv row 7 column amount: 12.36 but "
        "trial_balance_functional.csv's opening income and expense balances plus "
        "income_statement_functional.csv's net income is 12.56"]


def test_balance_sheet_sections_are_the_trial_balance_grouped_by_account_type(february):
    edit(february, "balance_sheet", {"currency": "USD", "line": "Liabilities:Tax:Sales"},
         section="Equity")  # a liability shown as equity: every subtotal still foots
    edit(february, "balance_sheet", {"currency": "USD", "line": "Total liabilities"},
         amount="16.00")
    edit(february, "balance_sheet", {"currency": "USD", "line": "Total equity"},
         amount="10.08")
    rehash_manifest(february)
    assert verify_package(february) == [
        "balance_sheet.csv row 14 column amount: 16.00 but trial_balance.csv's Liabilities "
        "accounts' closing balance is 16.08",
        "balance_sheet.csv row 16 column amount: 10.08 but trial_balance.csv's "
        "Equity/Income/Expenses accounts' closing balance is 10.00"]


def test_rollforward_opening_and_purchases_tie_to_the_trial_balance(february):
    for name, key in (("rollforward", {}), ("rollforward_by_customer", {"customer": "A"}),
                      ("rollforward_by_product", {"product": "pack"})):
        edit(february, name, {"currency": "USD", **key}, opening="21.33", purchases="-1.00")
    edit_bridge(february, "USD", "opening", "21.33")
    edit_bridge(february, "USD", "purchases", "-1.00")
    replace_in_page(february, "<title>deferred balance 2026-01: 20.33</title>",
                    "<title>deferred balance 2026-01: 21.33</title>")  # January's closing
    rehash_manifest(february)
    deferred = f"trial_balance.csv's {DEFERRED}"
    assert verify_on_the_command_line(february) == [
        f"rollforward.csv row 3 column opening: 21.33 but {deferred} opening_credit - "
        "opening_debit is 20.33",
        f"rollforward.csv row 3 column purchases: -1.00 but {deferred} period_credit less "
        "manual journals and reversed revenue is 0.00"]


def test_rollforward_purchases_and_refunds_tie_to_the_trial_balance(march):
    for name, key in (("rollforward", {}), ("rollforward_by_customer", {"customer": "R"}),
                      ("rollforward_by_product", {"product": "pack"})):
        purchases, refunds = ("11.00", "4.34") if name != "rollforward_by_customer" else (
            "10.00", "3.34")
        edit(march, name, {"currency": "USD", **key}, purchases=str(Decimal(purchases) + 1),
             refunds=str(Decimal(refunds) + 1))
    edit_bridge(march, "USD", "purchases", "12.00")
    edit_bridge(march, "USD", "refunds", "-5.34")
    rehash_manifest(march)
    deferred = f"trial_balance.csv's {DEFERRED}"
    assert verify_package(march) == [
        f"rollforward.csv row 2 column purchases: 12.00 but {deferred} period_credit less "
        "manual journals and reversed revenue is 11.00",
        f"rollforward.csv row 2 column refunds: 5.34 but {deferred} period_debit less manual "
        "journals, reversed revenue, usage, breakage and escheat is 4.34"]


def test_revenue_from_the_opening_balance_is_at_most_the_opening_balance(february):
    edit(february, "revenue_from_opening", {"currency": "USD"}, usage_revenue="24.16",
         total="24.33")
    rehash_manifest(february)
    assert verify_package(february) == [
        "revenue_from_opening.csv row 2 column total: 24.33 but rollforward.csv's opening "
        "is only 20.33",
        "revenue_from_opening.csv row 2 column usage_revenue: 24.16 but rollforward.csv's "
        "usage_revenue is only 4.16"]


def test_the_functional_waterfall_ties_to_the_functional_trial_balance(february):
    """The waterfall (the remaining performance obligations) and the rollforward grown by
    the same 1.00: the waterfall is named against the trial balance, whatever rates the
    waterfall's months were valued at."""
    for method, month in (("contractual expiry", "thereafter"), ("burn forecast", "2026-03")):
        row = {"method": method, "currency": "USD"}
        figures = _row(february, "waterfall_functional", row)
        edit(february, "waterfall_functional", row,
             **{month: str(Decimal(figures[month]) + 1),
                "total": str(Decimal(figures['total']) + 1)})
    edit(february, "rollforward_functional", {"currency": "USD"}, purchases="1.00",
         closing="21.44")
    rehash_manifest(february)
    problems = verify_package(february)
    tie = f"trial_balance_functional.csv's {DEFERRED} closing_credit - closing_debit is 20.44"
    assert f"waterfall_functional.csv row 2 column total: 21.44 but {tie}" in problems
    assert f"waterfall_functional.csv row 3 column total: 21.44 but {tie}" in problems
    assert (f"rollforward_functional.csv row 2 column purchases: 1.00 but "
            f"trial_balance_functional.csv's {DEFERRED} period_credit less manual journals "
            "and reversed revenue is 0.00") in problems


def _row(package: Path, name: str, wanted: dict[str, str]) -> dict[str, str]:
    import csv

    with (package / f"{name}.csv").open() as handle:
        return next(row for row in csv.DictReader(handle)
                    if all(row[column] == value for column, value in wanted.items()))


def test_workbook_rows_after_the_csv_rows_are_read_back(february):
    workbook_path = february / "close-2026-02.xlsx"
    workbook = openpyxl.load_workbook(workbook_path)
    sheet = workbook["revenue_by_customer"]
    listed = sheet.max_row  # the CSV's 3 rows and the USD total, after the header
    assert [cell.value for cell in sheet[listed]][:1] == ["Total USD"]
    sheet.append(["Z", "pack", "api", "USD", 1, 9.99])  # a customer the CSV has not
    sheet.append(["Total EUR", None, None, None, None, 0])  # no EUR row
    sheet.append(["Total USD", None, None, None, None, "4.16"])  # a second one, as text
    workbook.create_sheet("notes")
    workbook.save(workbook_path)
    rehash_manifest(february)
    book = "close-2026-02.xlsx sheet"
    assert verify_package(february) == [
        f"{book} revenue_by_customer row {listed + 1}: 'Z': a row the CSV does not have",
        f"{book} revenue_by_customer row {listed + 2} column customer_id: 'Total EUR': no "
        "rows in the CSV for currency EUR",
        f"{book} revenue_by_customer row {listed + 3} column customer_id: 'Total USD': a "
        "second total for currency USD",
        f"{book} notes: a sheet no CSV file of the package has"]


def test_chart_figures_are_the_csv_figures(february):
    """The months of the burn forecast moved in waterfall.csv (its copies too, so it still
    adds up), the charts left as they were: each bar that now differs is named; so are a
    tooltip of the bridge, of the history and of a trend changed on the page alone."""
    row = {"method": "burn forecast", "currency": "USD"}
    figures = _row(february, "waterfall", row)
    edit(february, "waterfall", row, **{"2026-03": str(Decimal(figures['2026-03']) - 1),
                                        "2026-04": str(Decimal(figures['2026-04']) + 1)})
    replace_in_page(february, "<title>movement breakage: -0.17</title>",
                    "<title>movement breakage: -0.18</title>")
    replace_in_page(february, "<title>revenue 2026-02: 4.33</title>",
                    "<title>revenue 2026-02: 4.34</title>")
    replace_in_page(february, "<title>credits 2026-02: 4.5</title>",
                    "<title>credits 2026-02: 5.5</title>")
    rehash_manifest(february)
    chart = "summary.html chart"
    march, april = figures["2026-03"], figures["2026-04"]
    assert verify_package(february) == [
        f"{chart} 'Deferred revenue bridge 2026-02 (USD)' bar 'movement breakage: -0.18': "
        "-0.18 but rollforward.csv row 3 column breakage says -0.17",
        f"{chart} 'Deferred balance and revenue by month (USD)' bar 'revenue 2026-02: 4.34': "
        "4.34 but rollforward.csv row 3 column usage_revenue+breakage says 4.33",
        f"{chart} 'Waterfall of the closing balance (USD)' bar 'burn forecast 2026-03: "
        f"{march}': {march} but waterfall.csv row 5 column 2026-03 says "
        f"{Decimal(march) - 1}",
        f"{chart} 'Waterfall of the closing balance (USD)' bar 'burn forecast 2026-04: "
        f"{april}': {april} but waterfall.csv row 5 column 2026-04 says "
        f"{Decimal(april) + 1}",
        f"{chart} 'Usage volume (credits burned)' bar 'credits 2026-02: 5.5': 5.5 but "
        "kpis.csv row 4 column this_period (2026-02) says 4.5"]


def test_proportional_catch_ups_and_escheat_tie_out_in_the_close(tmp_path):
    """The close reads its package back before the lock, so each close below locking is
    its package tying out. A proportional estimate cut from 10% to 2% reverses breakage
    into deferred revenue (the trial balance's breakage has 4.90 of debits: purchases
    110.00 + 4.90 reversed = the deferred account's credits); in the other books the lot
    of a customer in an escheat country moves 5.00 to unclaimed property, and breakage by
    lot, under the proportional method, need not be the income statement's breakage."""
    from tests.support.scenario import purchase, usage

    books = {"catch-up": [("2026-01-01", "0.05"), ("2026-03-03", "0.10"), ("2026-03-05", "0.02")],
             "escheat": [("2026-01-01", "0.05")]}
    for name, rates in books.items():
        root = tmp_path / name
        landing = root / "landing"
        lot = {"product": "gift", "purchased_at": "2026-03-01T09:00:00Z",
               "expires_at": "2026-03-06T12:00:00Z"}
        write_document(landing, "2026-03-01", "purchases", [
            purchase("P-A", "X", "1000", "100.00", **{**lot, "expires_at": ""}),
            purchase("P-B", "Y", "100", "10.00", country="DE", **lot)])
        for day, uses in {"01": [("X", "200"), ("Y", "50")], "04": [("X", "200")],
                          "06": [("X", "600")]}.items():
            write_document(landing, f"2026-03-{day}", "usage", [
                usage(f"U-{day}-{customer}", customer, f"2026-03-{day}T10:00:00Z", "api",
                      credits) for customer, credits in uses])
        policy = gift_card_policy(*rates, escheat_countries=("DE",) if name == "escheat" else ())
        package = close_months(root, policy, "2026-03")
        assert verify_package(package) == []
        figures = _row(package, "rollforward", {"currency": "USD"})
        deferred = _row(package, "trial_balance", {"account": DEFERRED})
        breakage = _row(package, "trial_balance", {"account": BREAKAGE})
        reversed_into_deferred, escheat = {"catch-up": ("4.90", "0.00"),
                                           "escheat": ("2.11", "5.00")}[name]
        assert (figures["purchases"], figures["escheat"]) == ("110.00", escheat)
        assert breakage["period_debit"] == reversed_into_deferred
        assert Decimal(deferred["period_credit"]) == Decimal("110.00") + Decimal(
            reversed_into_deferred)


def test_the_burstiness_table_of_the_page_is_read_back(february):
    replace_in_page(february, "<td>gpu</td><td>4</td>", "<td>gpu</td><td>5</td>")
    rehash_manifest(february)
    assert verify_package(february) == [
        "summary.html table 'Burstiness by meter' row 2 column peak_hourly_credits: '5' but "
        "burstiness.csv says '4'"]


def test_a_currency_taken_out_of_the_rollforward_is_named_by_the_trial_balance(february):
    """JPY (662 deferred, nothing moved in February) taken out of the rollforward, its
    breakdowns, the lot aging, the waterfall, the sheets' JPY totals and the page's
    charts: the trial balance still has its deferred revenue."""
    import re

    from tests.support.package_forgery import drop_row

    for name, key in (("rollforward", {}), ("rollforward_by_customer", {"customer": "B"}),
                      ("rollforward_by_product", {"product": "pack"}),
                      ("lot_aging", {"bucket": "never"}),
                      ("waterfall", {"method": "contractual expiry"}),
                      ("waterfall", {"method": "burn forecast"})):
        drop_row(february, name, {"currency": "JPY", **key})
    workbook_path = february / "close-2026-02.xlsx"
    workbook = openpyxl.load_workbook(workbook_path)
    for sheet in ("lot_aging", "rollforward_by_customer", "rollforward_by_product"):
        rows = list(workbook[sheet].iter_rows())
        total = next(cells for cells in rows if cells[0].value == "Total JPY")
        workbook[sheet].delete_rows(total[0].row)
    workbook.save(workbook_path)
    page = february / "summary.html"
    page.write_text(re.sub(r'<svg class="chart [^"]*"[^>]*\(JPY\)".*?</svg>', "",
                           page.read_text()))
    rehash_manifest(february)
    assert verify_package(february) == [
        f"rollforward.csv column currency: no row for JPY, whose {DEFERRED} is "
        "trial_balance.csv row 5"]


def test_an_income_statement_line_moved_to_another_section_is_named(february):
    """Breakage shown as other income: total revenue is 4.16 and net income still 4.33,
    every subtotal the sum of its lines, every line its account's movement."""
    edit(february, "income_statement", {"currency": "USD", "line": BREAKAGE},
         section="Other income")
    edit(february, "income_statement", {"currency": "USD", "line": "Total revenue"},
         amount="4.16")
    rehash_manifest(february)
    assert verify_package(february) == [
        "income_statement.csv row 7 column amount: 4.16 but trial_balance.csv's Revenue "
        "accounts' period_credit - period_debit is 4.33"]
