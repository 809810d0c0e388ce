"""verify-package: an independent reader of a close package (issue 19).

The package is the March close of the refund scenario of test_refunds.py: purchases 11.00,
usage 6.66, refunds 4.34, closing 0.00 (USD), so the deferred revenue bridge only foots
when it shows the refunds."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

import openpyxl
import pytest
from creditbooks.close import close_period
from reports.outputs.verify_package import _SummaryReader, verify_package
from tests.support.nights import post_days
from tests.support.refunds import write_refund_scenario

CREDITBOOKS = str(Path(sys.executable).with_name("creditbooks"))


@pytest.fixture(scope="module")
def march_package(tmp_path_factory) -> Path:
    from ledger.store import Store
    from rules.policy import load_policy

    root = tmp_path_factory.mktemp("refund-close")
    store = Store(f"sqlite:///{root / 'ledger.db'}")
    store.initialise()
    write_refund_scenario(root / "landing")
    policy = load_policy()
    post_days(store, policy, root, date(2026, 3, 1), date(2026, 3, 31))
    package = close_period(store, policy, "2026-03", root / "close", root / "archive",
                           actor="tester").package
    store.dispose()
    return package


@pytest.fixture
def copy(march_package, tmp_path) -> Path:
    return Path(shutil.copytree(march_package, tmp_path / "package"))


def verify_on_the_command_line(directory: Path, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run([CREDITBOOKS, "verify-package", str(directory), *options],
                          capture_output=True, text=True)


def test_a_package_as_the_close_wrote_it_ties_out(march_package):
    assert verify_package(march_package) == []
    shown = verify_on_the_command_line(march_package)
    assert shown.returncode == 0 and "ties out" in shown.stdout


def test_one_csv_cell_changed_is_named_by_file_row_and_column(copy):
    path = copy / "rollforward.csv"
    path.write_text(path.read_text().replace("USD,0.00,11.00,", "USD,0.00,11.01,"))
    shown = verify_on_the_command_line(copy)
    assert shown.returncode == 1
    assert "rollforward.csv: SHA-256 differs from the one manifest.json recorded" in shown.stdout
    assert ("rollforward.csv row 2 column closing: 0.00 but opening + purchases - usage - "
            "breakage - refunds - escheat is 0.01") in shown.stdout
    assert ("close-2026-03.xlsx sheet rollforward row 2 column purchases: 11.0 but the CSV "
            "says 11.01") in shown.stdout


def test_one_sheet_cell_changed_is_named_by_sheet_row_and_column(copy):
    workbook_path = copy / "close-2026-03.xlsx"
    workbook = openpyxl.load_workbook(workbook_path)
    sheet = workbook["income_statement"]
    row = next(cells for cells in sheet.iter_rows() if cells[2].value == "Income:Revenue:Usage")
    row[4].value = 6.67
    workbook.save(workbook_path)
    problems = verify_package(copy)
    assert problems == [
        "close-2026-03.xlsx: SHA-256 differs from the one manifest.json recorded",
        f"close-2026-03.xlsx sheet income_statement row {row[4].row} column amount: 6.67 but "
        "the CSV says 6.66"]


def test_a_changed_figure_in_the_html_is_found(copy):
    path = copy / "summary.html"
    html = path.read_text()
    assert html.count(">-4.34</text>") == 1  # the refunds' bar on the USD bridge
    path.write_text(html.replace(">-4.34</text>", ">-4.33</text>"))
    problems = verify_package(copy)
    assert "summary.html bridge USD closing: 0.00 but opening and the movements come to 0.01: " \
           "the bridge does not foot" in problems
    assert "summary.html bridge USD refunds: -4.33 but rollforward.csv says -4.34" in problems


def test_a_sheet_total_over_a_rate_or_of_a_statement_is_refused(copy):
    workbook_path = copy / "close-2026-03.xlsx"
    workbook = openpyxl.load_workbook(workbook_path)
    by_meter = workbook["kpis_by_meter"]
    header = [cell.value for cell in by_meter[1]]
    total = next(cells for cells in by_meter.iter_rows() if cells[0].value == "Total USD")
    assert total[header.index("usage_revenue")].value == pytest.approx(6.66)
    total[header.index("price_per_credit")].value = 9.99  # a rate added up
    statement = workbook["income_statement"]
    statement.append(["Total USD", None, None, None, 13.32])  # net income counted again
    workbook.save(workbook_path)
    problems = verify_package(copy)
    assert (f"close-2026-03.xlsx sheet kpis_by_meter row {total[0].row} column "
            "price_per_credit: a total of a rate, ratio or across currencies") in problems
    assert (f"close-2026-03.xlsx sheet income_statement row {statement.max_row}: a Total row "
            "adds rows that must not be added up") in problems


def test_the_bridge_foots_when_read_back_from_the_page_chromium_rendered(march_package):
    command = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
               "--no-first-run", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", f"--user-data-dir={tempfile.mkdtemp()}"]
    dom = subprocess.run([*command, "--dump-dom", (march_package / "summary.html").as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    assert '<svg class="chart bridge"' in dom
    reader = _SummaryReader()
    reader.feed(dom)
    usd = dict(reader.bridges["USD"])
    assert usd == {"opening": "0.00", "purchases": "11.00", "usage": "-6.66", "breakage": "0.00",
                   "refunds": "-4.34", "escheat": "0.00", "closing": "0.00"}
    from decimal import Decimal

    assert sum(Decimal(value) for label, value in usd.items() if label != "closing") == \
        Decimal(usd["closing"])
    assert verify_package(march_package, rendered_html=dom) == []
    rendered = march_package.parent / "rendered.html"
    rendered.write_text(re.sub(r">-6\.66</text>", ">-6.65</text>", dom))
    shown = verify_on_the_command_line(march_package, "--rendered-html", str(rendered))
    assert shown.returncode == 1
    assert "summary.html bridge USD closing: 0.00 but opening and the movements come to 0.01" \
        in shown.stdout


def csv_rows(package: Path, name: str) -> list[dict]:
    import csv

    with (package / f"{name}.csv").open() as handle:
        return list(csv.DictReader(handle))


def test_exceptions_and_uncovered_usage_are_in_the_package_with_ids_and_raw_values(
        march_package):
    rejected = {row["id"]: row for row in csv_rows(march_package, "exceptions")}
    assert set(rejected) == {"RF2", "RF3", "RF4", "RF5", "RF6"}
    amount = rejected["RF5"]
    assert (amount["business_date"], amount["file"], amount["row"], amount["column"]) == (
        "2026-03-02", "refunds.csv", "5", "amount")
    assert '"amount": "0.30"' in amount["raw_values"]
    # U4: customer Q's 1 credit found no credits left, of 4 credits accepted in March.
    assert csv_rows(march_package, "uncovered_usage") == [
        {"meter": "api", "customers": "1", "days": "1", "events": "1", "credits": "1",
         "accepted_credits": "4", "share_of_accepted_credits_percent": "25.00"},
        {"meter": "all meters", "customers": "1", "days": "1", "events": "1", "credits": "1",
         "accepted_credits": "4", "share_of_accepted_credits_percent": "25.00"}]


def test_disclosures_are_labelled_and_the_disaggregation_adds_up_to_revenue(march_package):
    index = {row["reference"]: row["files"] for row in csv_rows(march_package, "disclosures")}
    assert index["ASC 606-10-50-5; IFRS 15.114-115"] == "disclosure_revenue_disaggregation.csv"
    assert index["ASC 606-10-50-13; IFRS 15.120"] == "waterfall_functional.csv; waterfall.csv"
    disaggregated = {(row["dimension"], row["key"]): row["usage_revenue"]
                     for row in csv_rows(march_package, "disclosure_revenue_disaggregation")}
    assert disaggregated[("meter", "api")] == "6.66"
    assert disaggregated[("customer country", "(not given)")] == "6.66"
    judgements = csv_rows(march_package, "disclosure_breakage_judgements")
    assert judgements and all(row["in_force_on"] == "2026-03-31" for row in judgements)
    assert verify_package(march_package) == []  # the disaggregation ties to the statement
