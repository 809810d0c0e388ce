"""verify-package: an independent reader of a close package (issue 19).

The package is the March close of the refund scenario of test_refunds.py: purchases 11.00,
usage 6.66, refunds 4.34, closing 0.00 (USD), so the deferred revenue bridge only foots
when it shows the refunds."""

from __future__ import annotations

import hashlib
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
from tests.support.close import close_months
from tests.support.nights import post_days
from tests.support.refunds import write_refund_scenario

CREDITBOOKS = str(Path(sys.executable).with_name("creditbooks"))


@pytest.fixture(scope="module")
def march_package(tmp_path_factory) -> Path:
    from rules.policy import load_policy

    root = tmp_path_factory.mktemp("refund-close")
    write_refund_scenario(root / "landing")
    return close_months(root, load_policy(), "2026-03")


@pytest.fixture(scope="module")
def march_ledger(march_package) -> str:
    """The ledger the March package came from (ROOT/ledger.db; the package is ROOT/close/2026-03/v1)."""
    return f"sqlite:///{march_package.parents[2] / 'ledger.db'}"


@pytest.fixture
def copy(march_package, tmp_path) -> Path:
    return Path(shutil.copytree(march_package, tmp_path / "package"))


def verify_on_the_command_line(directory: Path, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run([CREDITBOOKS, "verify-package", str(directory), *options],
                          capture_output=True, text=True)


@pytest.mark.slow  # over a second here: not in make test-fast
def test_a_package_as_the_close_wrote_it_ties_out(march_package):
    assert verify_package(march_package) == []
    shown = verify_on_the_command_line(march_package)
    assert shown.returncode == 0 and "ties out" in shown.stdout


@pytest.mark.slow  # over a second here: not in make test-fast
def test_one_csv_cell_changed_is_named_by_file_row_and_column(copy):
    path = copy / "rollforward.csv"
    path.write_text(path.read_text().replace("USD,0.00,11.00,", "USD,0.00,11.01,"))
    shown = verify_on_the_command_line(copy)
    assert shown.returncode == 1
    assert "rollforward.csv: SHA-256 differs from the one manifest.json recorded" in shown.stdout
    assert ("rollforward.csv row 2 column closing: 0.00 but opening + purchases + manual "
            "journals - usage - breakage - refunds - escheat is 0.01") in shown.stdout
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


@pytest.mark.slow  # over a second here: not in make test-fast
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
                   "refunds": "-4.34", "escheat": "0.00", "manual_journals": "0.00",
                   "closing": "0.00"}
    from decimal import Decimal

    assert sum(Decimal(value) for label, value in usd.items() if label != "closing") == \
        Decimal(usd["closing"])
    # The functional-currency statements, as the browser shows them (USD books: the same
    # figures as the USD statement, now read back from the page too).
    assert reader.tables["Income statement (functional currency)"][1:] == [
        ["USD", "Revenue", "Income:Revenue:Usage", "account", "6.66"],
        ["USD", "Revenue", "Total revenue", "subtotal", "6.66"],
        ["USD", "Net income", "Net income", "total", "6.66"]]
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


def rehash_manifest(package: Path) -> None:
    """Record each file's SHA-256 again, as a forger would, so the file checks pass."""
    import hashlib
    import json

    manifest = json.loads((package / "manifest.json").read_text())
    manifest["files"] = {name: hashlib.sha256((package / name).read_bytes()).hexdigest()
                         for name in manifest["files"]}
    (package / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))


def replace_once(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, (path.name, old)
    path.write_text(text.replace(old, new))


def replace_once_in_table(path: Path, heading: str, old: str, new: str) -> None:
    """Replace in the summary page's table under <h2>heading</h2> only."""
    html = path.read_text()
    start = html.index(f"<h2>{heading}</h2>")
    end = html.index("</table>", start)
    table = html[start:end]
    assert table.count(old) == 1, (heading, old)
    path.write_text(html[:start] + table.replace(old, new) + html[end:])


def gross_up_cash_in_the_trial_balance(package: Path) -> None:
    """March's cash clearing shown with 1.00 more debited and 1.00 more credited (11.80 ->
    12.80, 4.61 -> 5.61; totals 23.07 -> 24.07) in the CSV, the JSON, the workbook and the
    summary page: its balance, the income statement and the balance sheet are unchanged,
    so every tie inside the package still holds."""
    replace_once(package / "trial_balance.csv", "USD,Assets:Cash:Clearing,account,0.00,0.00,"
                 "11.80,4.61,", "USD,Assets:Cash:Clearing,account,0.00,0.00,12.80,5.61,")
    replace_once(package / "trial_balance.csv", "USD,Total,total,0.00,0.00,23.07,23.07,",
                 "USD,Total,total,0.00,0.00,24.07,24.07,")
    replace_once(package / "trial_balance.json", '"period_debit": "11.80", "period_credit": '
                 '"4.61"', '"period_debit": "12.80", "period_credit": "5.61"')
    replace_once(package / "trial_balance.json", '"period_debit": "23.07", "period_credit": '
                 '"23.07"', '"period_debit": "24.07", "period_credit": "24.07"')
    for old, new in (("11.80</td><td>4.61</td>", "12.80</td><td>5.61</td>"),
                     ("23.07</td><td>23.07</td>", "24.07</td><td>24.07</td>")):
        replace_once_in_table(package / "summary.html", "Trial balance", old, new)
    workbook_path = package / "close-2026-03.xlsx"
    workbook = openpyxl.load_workbook(workbook_path)
    sheet = workbook["trial_balance"]
    header = [cell.value for cell in sheet[1]]
    for cells in sheet.iter_rows(min_row=2):
        if cells[header.index("account")].value in ("Assets:Cash:Clearing", "Total"):
            for column in ("period_debit", "period_credit"):
                cells[header.index(column)].value += 1
    workbook.save(workbook_path)
    rehash_manifest(package)


@pytest.mark.slow  # over a second here: not in make test-fast
def test_a_consistently_edited_trial_balance_is_caught_only_by_the_ledger(copy, march_ledger):
    gross_up_cash_in_the_trial_balance(copy)
    assert verify_package(copy) == []  # every file, total and tie inside the package holds
    shown = verify_on_the_command_line(copy)
    assert shown.returncode == 0, shown.stdout
    from sqlalchemy import create_engine

    engine = create_engine(march_ledger)
    with engine.connect() as ledger:
        problems = verify_package(copy, ledger=ledger)
    engine.dispose()
    # The re-hashed manifest is not the one the close recorded, and the figures are not
    # the journal's.
    found = hashlib.sha256((copy / "manifest.json").read_bytes()).hexdigest()
    altered = f"manifest.json: SHA-256 {found} but its close (period event id 1) recorded "
    assert problems[0].startswith(altered) and problems[0].endswith(": the manifest was altered")
    assert problems[1:] == [
        "trial_balance.csv row 2 column period_debit: 12.80 but the ledger's journal "
        "(USD Assets:Cash:Clearing) is 11.80",
        "trial_balance.csv row 2 column period_credit: 5.61 but the ledger's journal "
        "(USD Assets:Cash:Clearing) is 4.61"]
    tied = subprocess.run([CREDITBOOKS, "--db", march_ledger, "verify-package", str(copy),
                           "--ledger"], capture_output=True, text=True)
    assert tied.returncode == 1
    assert tied.stderr == (
        f"creditbooks: error: package {copy} does not tie out: 3 problem(s), the first: "
        f"{problems[0]}\n")


@pytest.mark.slow  # over a second here: not in make test-fast
def test_an_unedited_package_ties_to_its_ledger(march_package, march_ledger):
    shown = subprocess.run([CREDITBOOKS, "--db", march_ledger, "verify-package",
                            str(march_package), "--ledger"], capture_output=True, text=True)
    assert (shown.returncode, shown.stdout) == (0, f"package {march_package} ties out\n")


def test_a_manifest_that_differs_from_the_ledger_is_named_by_its_key(copy, march_ledger):
    import json

    from sqlalchemy import create_engine

    manifest = json.loads((copy / "manifest.json").read_text())
    assert manifest["journal_lines"] == 14 and manifest["chain_head"]["sequence"] == 6
    manifest["journal_lines"] = 13
    manifest["chain_head"]["sequence"] = 5  # a head one entry short of what was sealed
    (copy / "manifest.json").write_text(json.dumps(manifest))
    engine = create_engine(march_ledger)
    with engine.connect() as ledger:
        problems = verify_package(copy, ledger=ledger)
    engine.dispose()
    assert problems[0] == ("manifest.json key journal_lines: 13 but the ledger's journal has "
                           "14 lines up to 2026-03")
    assert problems[1].startswith(
        f"manifest.json key chain_head.hash: {manifest['chain_head']['hash']} but the "
        "ledger's chain at seal 5 is ")
    assert problems[2].startswith("manifest.json: SHA-256 ") and problems[2].endswith(
        ": the manifest was altered")
    assert len(problems) == 3  # the figures themselves still tie to the journal


def test_a_package_tied_to_another_ledger_says_so_in_one_line(march_package, tmp_path):
    import json

    from ledger.store import Store

    other = Store(f"sqlite:///{tmp_path / 'other.db'}")
    other.initialise()
    recorded = json.loads((march_package / "manifest.json").read_text())["anchor"]["ledger"]
    with other.engine.connect() as ledger:
        problems = verify_package(march_package, ledger=ledger)
    other.dispose()
    assert problems == [f"manifest.json key anchor.ledger: {recorded} but this ledger is one "
                        "with no id yet (nothing posted): the package is another ledger's"]


def test_a_json_cell_changed_is_named_against_its_csv(copy):
    replace_once(copy / "rollforward.json", '"purchases": "11.00"', '"purchases": "11.01"')
    assert verify_package(copy) == [
        "rollforward.json: SHA-256 differs from the one manifest.json recorded",
        "rollforward.json row 1 column purchases: '11.01' but rollforward.csv says '11.00'"]


RENAMED_CHART = {"deferred_revenue": "Liabilities:Unearned:Credits",
                 "usage_revenue": "Income:Sales:Usage",
                 "breakage_revenue": "Income:Sales:Breakage"}


@pytest.mark.slow  # over a second here: not in make test-fast
def test_a_close_under_a_renamed_chart_verifies_clean_and_records_the_chart(tmp_path, copy):
    """The refund scenario's March under a policy whose [accounts] renames deferred, usage
    and breakage revenue: the close (which reads its package back before the lock) locks,
    and the package ties out by the names its manifest records."""
    import json
    import tomllib

    from rules.policy import DEFAULT_POLICY_FILE, policy_from_document

    document = tomllib.loads(DEFAULT_POLICY_FILE.read_text())
    renamed = {document["accounts"][role]: name for role, name in RENAMED_CHART.items()}
    document["accounts"] |= RENAMED_CHART
    for codes in document["export"]["account_codes"].values():  # the ERP codes follow
        for old, new in renamed.items():
            if old in codes:
                codes[new] = codes.pop(old)
    write_refund_scenario(tmp_path / "landing")
    package = close_months(tmp_path, policy_from_document(document), "2026-03")
    manifest_path = package / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    assert {role: manifest["accounts"][role] for role in RENAMED_CHART} == RENAMED_CHART
    assert manifest["accounts"]["cash_clearing"] == "Assets:Cash:Clearing"
    assert verify_package(package) == []
    # A manifest without the chart (one written before it was recorded) means the default
    # chart: this package's renamed accounts then no longer tie, named by their columns.
    del manifest["accounts"]
    manifest_path.write_text(json.dumps(manifest))
    assert any(problem.startswith("rollforward.csv row 2 column usage_revenue: 6.66 but "
                                  "income_statement's Income:Revenue:Usage")
               for problem in verify_package(package))
    # The default chart's package, its manifest's chart taken out, still ties out.
    default_manifest = json.loads((copy / "manifest.json").read_text())
    default_manifest.pop("accounts", None)
    (copy / "manifest.json").write_text(json.dumps(default_manifest))
    assert verify_package(copy) == []


@pytest.mark.slow  # over a second here: not in make test-fast
def test_the_close_refuses_to_lock_a_trial_balance_its_ledger_does_not_have(tmp_path,
                                                                           monkeypatch):
    """The close's read-back before the lock ties the trial balances to the ledger's own
    sums of its journal lines: a statement that grosses up cash clearing by 1.00 on both
    sides (every tie inside the package still holds) is named, and nothing is locked."""
    from decimal import Decimal

    import reports.catalogue
    from ledger.locks import locked_periods
    from ledger.store import Store
    from rules.policy import load_policy

    honest_statement = reports.catalogue.trial_balance_statement

    def grossed_up(store, period, functional_currency=None):
        rows = honest_statement(store, period, functional_currency)
        for row in rows:
            if functional_currency is None and row["currency"] == "USD" and row["account"] in (
                    "Assets:Cash:Clearing", "Total"):
                for column in ("period_debit", "period_credit"):
                    row[column] = str(Decimal(row[column]) + 1)
        return rows

    monkeypatch.setattr(reports.catalogue, "trial_balance_statement", grossed_up)
    store = Store(f"sqlite:///{tmp_path / 'ledger.db'}")
    store.initialise()
    write_refund_scenario(tmp_path / "landing")
    policy = load_policy()
    post_days(store, policy, tmp_path, date(2026, 3, 1), date(2026, 3, 31))
    from creditbooks.close import CloseRefusedError

    with pytest.raises(CloseRefusedError) as refused:
        close_period(store, policy, "2026-03", tmp_path / "close", tmp_path / "archive",
                     actor="tester")
    assert str(refused.value) == (
        "period 2026-03 not locked: the package does not tie out (2 problem(s)), the first: "
        "trial_balance.csv row 2 column period_debit: 12.80 but the ledger's journal "
        "(USD Assets:Cash:Clearing) is 11.80")
    with store.engine.connect() as connection:
        assert "2026-03" not in locked_periods(connection)
    store.dispose()
