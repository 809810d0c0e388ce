"""ERP exports re-read as each ERP would group them, and the beancount ledger checked by
beancount's own loader and browsed in Fava."""

from __future__ import annotations

import csv
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest
from beancount import loader
from beancount.core import data

from reports.outputs.beancount_export import write_beancount
from reports.outputs.exports import XERO_MAX_LINES, export_period, mapping_path
from reports.statements import trial_balance
from tests.support.cli import creditbooks
from tests.support.close import close
from tests.support.postgres_server import free_port

GROUPING = {  # the column that makes rows one journal, and how each row's amount is signed
    "netsuite": ("External ID", lambda row: Decimal(row["Debit"] or 0) - Decimal(row["Credit"] or 0)),
    "quickbooks": ("Journal No", lambda row: Decimal(row["Debits"] or 0) - Decimal(row["Credits"] or 0)),
    "sap": ("REF_DOC_NO", lambda row: Decimal(row["AMT_DOCCUR"])),
    "csv": ("journal_id", lambda row: Decimal(row["amount"])),
    "xero": ("Narration", lambda row: Decimal(row["Amount"])),
}
ACCOUNT_COLUMN = {"netsuite": "Account", "quickbooks": "Account Name", "sap": "GL_ACCOUNT",
                  "csv": "account", "xero": "AccountCode"}


def read_rows(paths: list[Path]) -> list[dict]:
    rows = []
    for path in paths:
        with path.open(newline="") as handle:
            rows += list(csv.DictReader(handle))
    return rows


@pytest.mark.slow  # over a second here: not in make test-fast
@pytest.mark.parametrize("target", ["netsuite", "quickbooks", "xero", "sap", "csv"])
def test_every_exported_journal_balances_and_the_totals_equal_the_ledger(january, policy, tmp_path,
                                                                          target):
    close(january, policy, tmp_path, "2026-01")
    # Xero takes the base currency only: its export is in the functional currency.
    functional = "USD" if target == "xero" else None
    paths = export_period(january, "2026-01", target, tmp_path / f"{target}.csv", policy.exports,
                          functional_currency=functional, ledger_currency="USD")
    rows = read_rows(paths)
    key, signed = GROUPING[target]
    journals: dict[str, Decimal] = defaultdict(Decimal)
    for row in rows:
        journals[row[key]] += signed(row)
    assert journals and all(total == 0 for total in journals.values())
    mapping = read_rows([mapping_path(tmp_path / f"{target}.csv")])
    # One journal per business day, kind and currency: Jan 30 purchases in USD and JPY,
    # usage on Jan 30 and 31 in both, breakage on Jan 31 in USD.
    if functional is None:
        assert [row["journal_key"] for row in mapping] == [
            "2026-01-30/purchase/JPY", "2026-01-30/purchase/USD", "2026-01-30/usage/JPY",
            "2026-01-30/usage/USD", "2026-01-31/breakage/USD", "2026-01-31/usage/JPY",
            "2026-01-31/usage/USD"]
    assert [row["external_id"] for row in mapping] == [
        f"CB2601D{'F' if functional else 'T'}-{number:06d}" for number in range(1, len(mapping) + 1)]
    codes = policy.exports.account_codes.get(target, {})
    code_of = {account: codes.get(account, account) for account in policy.accounts.all_accounts()}
    if target == "sap":
        code_of = {account: code.zfill(10) for account, code in code_of.items()}
    ledger: dict[str, Decimal] = defaultdict(Decimal)
    for row in trial_balance(january, "2026-01", functional):
        if row["currency"] == "USD":
            ledger[code_of[row["account"]]] += Decimal(row["debit"]) + Decimal(row["credit"])
    usd_journals = {row["external_id"] for row in mapping
                    if functional or row["journal_key"].endswith("/USD")}
    usd_exported = defaultdict(Decimal)
    for row in rows:
        if row[key].split(" ")[0] in usd_journals:
            usd_exported[row[ACCOUNT_COLUMN[target]]] += signed(row)
    assert dict(usd_exported) == {account: amount for account, amount in ledger.items() if amount}


@pytest.mark.slow  # over a second here: not in make test-fast
def test_xero_files_split_at_300_lines_without_splitting_a_journal(january, policy, tmp_path):
    close(january, policy, tmp_path, "2026-01")
    paths = export_period(january, "2026-01", "xero", tmp_path / "xero.csv", policy.exports,
                          by_customer=True, functional_currency="USD")
    assert [path.name for path in paths] == ["xero-USD-1.csv"]
    assert all(len(read_rows([path])) <= XERO_MAX_LINES for path in paths)
    customers = {row["TrackingOption1"] for row in read_rows(paths)}
    assert customers == {"A", "B", "C"}


@pytest.mark.slow  # over a second here: not in make test-fast
def test_exporting_an_open_period_needs_draft_and_says_so(tmp_path):
    from tests.support.scenario import write_scenario

    write_scenario(tmp_path / "landing")
    creditbooks("init", cwd=tmp_path)
    creditbooks("nightly", "--from", "2026-01-30", "--to", "2026-01-31", cwd=tmp_path)
    refused = creditbooks("export", "--period", "2026-01", "--format", "csv", "--out", "j.csv",
                          cwd=tmp_path, check=False)
    assert refused.returncode == 1
    assert "period 2026-01 is not closed" in refused.stderr and not (tmp_path / "j.csv").exists()
    draft = creditbooks("export", "--period", "2026-01", "--format", "csv", "--out", "j.csv",
                        "--draft", cwd=tmp_path)
    assert "DRAFT export" in draft.stderr
    assert {row["draft"] for row in read_rows([tmp_path / "j.csv"])} == {"yes"}


def _beancount_balances(entries) -> dict[tuple[str, str], Decimal]:
    balances: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for entry in entries:
        if isinstance(entry, data.Transaction):
            for posting in entry.postings:
                balances[(posting.account, posting.units.currency)] += posting.units.number
    return balances


@pytest.mark.slow  # over a second here: not in make test-fast
def test_the_beancount_ledger_loads_cleanly_and_its_balances_equal_the_trial_balance(
        january, policy, tmp_path):
    close(january, policy, tmp_path, "2026-01")
    ledger = write_beancount(january, "2026-01", tmp_path / "books.beancount")
    entries, errors, options = loader.load_file(str(ledger))
    assert errors == []
    assert options["tolerance_multiplier"] == Decimal(0)
    balances = _beancount_balances(entries)
    for row in trial_balance(january, "2026-01"):
        assert balances[(row["account"], row["currency"])] == Decimal(row["closing"])
    assert sum(1 for entry in entries if isinstance(entry, data.Balance)) == 2 * 8
    usage = next(entry for entry in entries if isinstance(entry, data.Transaction)
                 and entry.meta.get("journal") == "CB-2026-01-31-usage-USD")
    assert usage.links == {"CB-2026-01-31-usage-USD", "batch-nightly-2026-01-31"}


@pytest.mark.slow  # over a second here: not in make test-fast
def test_a_wrong_figure_in_the_ledger_is_caught_by_beancount_itself(january, policy, tmp_path):
    close(january, policy, tmp_path, "2026-01")
    ledger = write_beancount(january, "2026-01", tmp_path / "books.beancount")
    tampered = ledger.read_text().replace("Income:Revenue:Breakage  -5.00 USD",
                                          "Income:Revenue:Breakage  -4.99 USD", 1)
    _, errors, _ = loader.load_string(tampered)
    assert any("does not balance" in str(error.message).lower()
               or "balance failed" in str(error.message).lower() for error in errors)


@pytest.mark.slow  # over a second here: not in make test-fast
def test_fava_serves_the_exported_ledger_read_only_with_the_figures(january, policy, tmp_path):
    close(january, policy, tmp_path, "2026-01")
    ledger = write_beancount(january, "2026-01", tmp_path / "books.beancount")
    port = free_port()
    fava = subprocess.Popen([str(Path(sys.executable).with_name("fava")), str(ledger), "--read-only",
                             "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}/creditbooks-2026-01"
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(base + "/income_statement/", timeout=5)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        browser = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                   "--disable-background-networking", "--disable-component-update",
                   "--disable-sync", "--virtual-time-budget=15000",
                   f"--user-data-dir={tempfile.mkdtemp()}", "--dump-dom"]

        def page(name: str) -> str:
            return subprocess.run([*browser, f"{base}/{name}/"], capture_output=True, text=True,
                                  timeout=120).stdout

        balance_sheet = page("balance_sheet")
        assert "26.08" in balance_sheet and "20.33" in balance_sheet  # cash; deferred revenue
        income = page("income_statement")
        assert "0.67" in income and "5.00" in income  # usage; breakage
        assert "usage 2026-01-31 USD" in page("journal")
    finally:
        fava.terminate()
        fava.wait(timeout=30)


@pytest.mark.slow  # over a second here: not in make test-fast
def test_monthly_summary_makes_one_journal_per_kind_and_currency(january, policy, tmp_path):
    close(january, policy, tmp_path, "2026-01")
    [path] = export_period(january, "2026-01", "csv", tmp_path / "monthly.csv", policy.exports,
                           summary="monthly")
    rows = read_rows([path])
    assert sorted({(row["journal_id"], row["journal_key"]) for row in rows}) == [
        ("CB2601MT-000001", "2026-01/breakage/USD"), ("CB2601MT-000002", "2026-01/purchase/JPY"),
        ("CB2601MT-000003", "2026-01/purchase/USD"), ("CB2601MT-000004", "2026-01/usage/JPY"),
        ("CB2601MT-000005", "2026-01/usage/USD")]
    assert {row["date"] for row in rows} == {"2026-01-31"}
    usage = {row["account"]: row["amount"] for row in rows if row["journal_id"] == "CB2601MT-000005"}
    assert usage == {"Income:Revenue:Usage": "-0.67", "Liabilities:DeferredRevenue:Credits": "0.67"}


def test_xero_splits_files_at_300_lines_and_never_splits_a_journal():
    from datetime import date as calendar_date

    from reports.outputs.exports import ExportLine, Journal, _xero_files

    journals = [Journal(f"2026-01-31/usage/USD/{number}", calendar_date(2026, 1, 31), "2026-01",
                        "usage", "USD", [ExportLine(f"Income:Revenue:Usage{line // 2}", "",
                                                    1 if line % 2 == 0 else -1,
                                                    1 if line % 2 == 0 else -1)
                                         for line in range(100)], 1, "", external_id=f"J{number}")
                for number in range(5)]
    rows = [[journal.external_id, str(number)] for journal in journals
            for number in range(len(journal.lines))]
    first, second = _xero_files(journals, rows)
    assert (len(first), len(second)) == (300, 200)
    assert {row[0] for row in first}.isdisjoint({row[0] for row in second})


def _mapping(out: Path) -> dict[str, str]:
    """journal key -> external id, as the mapping file beside an export has them."""
    return {row["journal_key"]: row["external_id"] for row in read_rows([mapping_path(out)])}


def _export_all(store, policy, directory: Path) -> dict[str, dict[str, str]]:
    mappings = {}
    for target in ("netsuite", "sap", "csv"):
        export_period(store, "2026-01", target, directory / f"{target}.csv", policy.exports,
                      ledger_currency="USD")
        mappings[target] = _mapping(directory / f"{target}.csv")
    return mappings


@pytest.mark.slow  # over a second here: not in make test-fast
def test_a_journal_keeps_its_id_when_a_reopen_adds_an_earlier_journal(january, policy, tmp_path):
    from creditbooks.close import reopen_period
    from creditbooks.journals import approve, import_journals

    close(january, policy, tmp_path, "2026-01")
    before = _export_all(january, policy, tmp_path / "v1")
    assert before["netsuite"] == before["sap"] == before["csv"]  # one key, one id, every target
    old = before["csv"]
    assert len(old) > 3 and min(old.values()) == "CB2601DT-000001"
    reopen_period(january, "2026-01", "a missed fee", actor="controller", policy=policy,
                  approved_by="cfo")
    # A journal dated before every other one: numbered by position, it would shift every id.
    (tmp_path / "fee.csv").write_text(
        "journal_ref,date,account,currency,debit,credit,memo,customer_id,purchase_id,reverse_on\n"
        "MJ-FEE,2026-01-02,Assets:Receivables:Customers,USD,1.00,,fee,A,,\n"
        "MJ-FEE,2026-01-02,Income:Revenue:Usage,USD,,1.00,fee,A,,\n")
    import_journals(january, policy, tmp_path / "fee.csv", "alice")
    approve(january, policy, "MJ-FEE", "bob")
    close(january, policy, tmp_path, "2026-01")
    after = _export_all(january, policy, tmp_path / "v2")
    assert after["netsuite"] == after["sap"] == after["csv"]
    new = after["csv"]
    assert {key: new[key] for key in old} == old  # every journal that existed keeps its id
    assert sorted(set(new) - set(old)) == ["2026-01-02/manual/USD"]
    assert new["2026-01-02/manual/USD"] == f"CB2601DT-{len(old) + 1:06d}"  # never used before
    csv_rows = read_rows([tmp_path / "v2" / "csv.csv"])
    assert csv_rows[0]["journal_id"] == new["2026-01-02/manual/USD"]  # still in date order
    # Re-exporting again gives byte-identical files.
    _export_all(january, policy, tmp_path / "v3")
    for name in sorted(path.name for path in (tmp_path / "v2").iterdir()):
        assert (tmp_path / "v3" / name).read_bytes() == (tmp_path / "v2" / name).read_bytes(), name


@pytest.mark.slow  # over a second here: not in make test-fast
def test_a_draft_export_of_a_closed_period_is_refused_in_one_line(january, policy, tmp_path):
    close(january, policy, tmp_path, "2026-01")
    refused = creditbooks("--db", january.url, "export", "--period", "2026-01", "--format", "csv",
                          "--out", "j.csv", "--draft", cwd=tmp_path, check=False)
    assert refused.returncode == 1
    assert refused.stderr == ("creditbooks: error: period 2026-01 is closed: its journals are "
                              "final; export it without --draft\n")
    assert not (tmp_path / "j.csv").exists()
