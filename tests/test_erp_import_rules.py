"""ERP exports that import as-is: each file re-read and posted as its ERP would post it.

The scenario (March 2026, USD functional books): EUR lots bought on three days at three
rates, a JPY lot, usage on days that burn several EUR lots at once (so one day's usage
journal mixes purchase-date rates), a refund, and the month-end remeasurement of EUR and
JPY cash, whose lines move only USD. The reader below groups rows by the target's journal
column, converts each line at its journal's exchange rate (rounded to the cent, half up,
as an ERP does), and must arrive at the functional trial balance's movement per account.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest

from reports.outputs.erp_rules import ExportRefused, validate_rows
from reports.outputs.exports import ExportLine, export_period, fit_exchange_rate, mapping_path
from reports.statements import trial_balance
from tests.support.landing import write_document
from tests.support.nights import post_days
from tests.support.scenario import purchase, usage

RATES = {"EUR": ("1.10", "1.1537", "1.0912", "1.20"), "JPY": ("0.0067", "0.00671", "0.0068", "0.0070")}
DAYS = ("2026-03-28", "2026-03-29", "2026-03-30", "2026-03-31")


def write_march(landing: Path) -> None:
    for number, day in enumerate(DAYS):
        write_document(landing, day, "fx_rates", [
            {"date": day, "currency": currency, "rate_to_functional": rates[number]}
            for currency, rates in RATES.items()])
    write_document(landing, "2026-03-28", "purchases", [
        purchase("P-E1", "E", "3", "1000.00", currency="EUR", tax_amount="200.00",
                 purchased_at="2026-03-28T09:00:00Z"),
        purchase("P-J", "J", "7", "100000", currency="JPY", purchased_at="2026-03-28T09:00:00Z")])
    write_document(landing, "2026-03-29", "purchases", [
        purchase("P-E2", "E", "7", "1333.33", currency="EUR", purchased_at="2026-03-29T09:00:00Z"),
        purchase("P-F", "F", "9", "777.77", currency="EUR", tax_amount="111.11",
                 purchased_at="2026-03-29T10:00:00Z")])
    write_document(landing, "2026-03-30", "purchases", [
        purchase("P-G", "G", "11", "1999.99", currency="EUR", purchased_at="2026-03-30T09:00:00Z")])
    for day, credits in (("2026-03-29", "2"), ("2026-03-30", "3"), ("2026-03-31", "4")):
        write_document(landing, day, "usage", [
            usage(f"U-{customer}-{day}", customer, f"{day}T11:00:00Z", "api", credits)
            for customer in ("E", "F", "G", "J")])
    write_document(landing, "2026-03-31", "refunds", [
        {"refund_id": "RF-F", "purchase_id": "P-F", "refunded_at": "2026-03-31T09:00:00Z",
         "credits": "1", "amount": "98.77"}])


@pytest.fixture
def march(store, policy, tmp_path):
    write_march(tmp_path / "landing")
    post_days(store, policy, tmp_path, date(2026, 3, 28), date(2026, 3, 31))
    return store


def read_files(paths: list[Path]) -> list[list[dict]]:
    files = []
    for path in paths:
        with path.open(newline="", encoding="utf-8") as handle:
            files.append(list(csv.DictReader(handle)))
    return files


def _cents(value: Decimal) -> int:
    return int((value * 100).to_integral_value(ROUND_HALF_UP))


def posted_by_erp(target: str, rows: list[dict]) -> dict[str, int]:
    """Per account code, the USD cents the ERP posts: its own grouping, rate and sign rules."""
    posted: dict[str, int] = defaultdict(int)
    journals: dict[str, list[dict]] = defaultdict(list)
    key = {"netsuite": "External ID", "quickbooks": "Journal No", "xero": "Narration",
           "sap": "REF_DOC_NO"}[target]
    for row in rows:
        journals[row[key]].append(row)
    for journal, lines in journals.items():
        usd = []
        for row in lines:
            if target in ("netsuite", "quickbooks"):
                debit, credit = (("Debit", "Credit") if target == "netsuite" else ("Debits", "Credits"))
                amount = Decimal(row[debit] or 0) - Decimal(row[credit] or 0)
                rate = Decimal(row["Exchange Rate"])  # base currency per unit of the journal's
                account = row["Account" if target == "netsuite" else "Account Name"]
                usd.append((account, _cents(amount * rate)))
            elif target == "xero":  # a manual journal has no currency: the base currency
                usd.append((row["AccountCode"], _cents(Decimal(row["Amount"]))))
            else:  # SAP: CURR_TYPE 10, the company code currency, is the local amount
                assert row["LOCAL_CURRENCY"] == "USD"
                usd.append((row["GL_ACCOUNT"], _cents(Decimal(row["AMT_LOCAL"]))))
        assert sum(cents for _, cents in usd) == 0, f"journal {journal} does not balance in USD"
        for account, cents in usd:
            posted[account] += cents
    return {account: cents for account, cents in posted.items() if cents}


def functional_movements(store, policy, target: str) -> dict[str, int]:
    codes = policy.exports.account_codes[target]
    moved: dict[str, int] = defaultdict(int)
    for row in trial_balance(store, "2026-03", "USD"):
        code = codes[row["account"]]
        code = code.zfill(10) if target == "sap" and code.isdigit() else code
        moved[code] += _cents(Decimal(row["debit"]) + Decimal(row["credit"]))
    return {account: cents for account, cents in moved.items() if cents}


@pytest.mark.slow  # over a second here: not in make test-fast
@pytest.mark.parametrize(("target", "functional"), [
    ("netsuite", None), ("netsuite", "USD"), ("quickbooks", None), ("quickbooks", "USD"),
    ("xero", "USD"), ("sap", None), ("sap", "USD")])
def test_the_erp_posts_the_functional_trial_balance_to_the_cent(march, policy, tmp_path, target,
                                                               functional):
    paths = export_period(march, "2026-03", target, tmp_path / f"{target}.csv", policy.exports,
                          functional_currency=functional, ledger_currency="USD")
    files = read_files(paths)
    assert validate_rows(target, files, "USD") == []
    rows = [row for rows in files for row in rows]
    expected = functional_movements(march, policy, target)
    assert posted_by_erp(target, rows) == expected
    fx_code = policy.exports.account_codes[target]["Income:ForeignExchange:Unrealised"]
    assert any(fx_code in code for code in expected)  # the remeasurement is in the file
    if target in ("netsuite", "quickbooks") and functional is None:
        rate_of = {row["Currency" if target == "netsuite" else "Currency Code"]:
                   row["Exchange Rate"] for row in rows}
        assert rate_of["USD"] == "1" and rate_of["EUR"] != "1" and rate_of["JPY"] != "1"


@pytest.mark.slow  # over a second here: not in make test-fast
def test_a_day_whose_usage_mixes_purchase_rates_is_split_by_rate(march, policy, tmp_path):
    # By customer, a day's EUR usage has a revenue line per customer, each carried at its
    # own lots' rates: no one rate serves them all, so the journal is split by rate.
    paths = export_period(march, "2026-03", "netsuite", tmp_path / "ns.csv", policy.exports,
                          by_customer=True, ledger_currency="USD")
    files = read_files(paths)
    assert validate_rows("netsuite", files, "USD") == []
    assert posted_by_erp("netsuite", files[0]) == functional_movements(march, policy, "netsuite")
    mapping = read_files([mapping_path(tmp_path / "ns.csv")])[0]
    usage_31 = [row for row in mapping if row["journal_key"].startswith("2026-03-31/usage/EUR")]
    assert [row["journal_key"] for row in usage_31] == [
        "2026-03-31/usage/EUR/rate 1.0912", "2026-03-31/usage/EUR/rate 1.1+1.1537",
        "2026-03-31/usage/EUR/rate 1.1537"]
    assert len({row["exchange_rate"] for row in usage_31}) == 3


@pytest.mark.slow  # over a second here: not in make test-fast
def test_xero_refuses_foreign_journals_naming_functional(march, policy, tmp_path):
    with pytest.raises(ExportRefused, match=r"Xero manual journals carry no currency.*EUR, JPY "
                                            r"journals: export with --functional \(USD\)"):
        export_period(march, "2026-03", "xero", tmp_path / "xero.csv", policy.exports,
                      ledger_currency="USD")
    assert list(tmp_path.glob("xero*")) == []


@pytest.mark.slow  # over a second here: not in make test-fast
@pytest.mark.parametrize("target", ["netsuite", "quickbooks", "sap", "xero"])
def test_short_stable_ids_a_mapping_file_and_drafts_of_their_own(march, policy, tmp_path, target):
    limit = {"netsuite": 40, "quickbooks": 21, "sap": 16, "xero": 40}[target]
    key = {"netsuite": "External ID", "quickbooks": "Journal No", "sap": "REF_DOC_NO",
           "xero": "Narration"}[target]
    header = {"netsuite": "Memo", "quickbooks": "Description", "sap": "HEADER_TXT",
              "xero": "Narration"}[target]
    exported = []
    for attempt, draft in (("first", False), ("again", False), ("draft", True)):
        paths = export_period(march, "2026-03", target, tmp_path / attempt / "out.csv",
                              policy.exports, draft=draft, functional_currency="USD")
        exported.append([row for rows in read_files(paths) for row in rows])
    first, again, draft = exported
    assert [row[key] for row in first] == [row[key] for row in again]
    ids = {row[key].split(" ")[0] for row in first}
    assert all(len(external_id) <= limit and external_id.startswith("CB2603DF-")
               for external_id in ids)
    mapping = read_files([mapping_path(tmp_path / "first" / "out.csv")])[0]
    assert {row["external_id"] for row in mapping} == ids
    [fx] = [row for row in mapping if row["kind"] == "fx"]  # EUR and JPY cash remeasured
    assert (fx["journal_key"], fx["entries"], fx["batches"]) == (
        "2026-03-31/fx/USD", "2", "nightly-2026-03-31")
    assert all(row[key].startswith("DR2603DF-") for row in draft)
    assert all("DRAFT" in row[header] for row in draft)
    assert not any("DRAFT" in row[header] for row in first)


@pytest.mark.slow  # over a second here: not in make test-fast
def test_an_account_without_a_code_is_refused_naming_each_and_the_section(march, policy,
                                                                         tmp_path):
    from dataclasses import replace
    from types import MappingProxyType

    codes = {target: dict(table) for target, table in policy.exports.account_codes.items()}
    del codes["sap"]["Income:ForeignExchange:Unrealised"], codes["sap"]["Liabilities:Tax:Sales"]
    settings = replace(policy.exports, account_codes=MappingProxyType(codes))
    with pytest.raises(ExportRefused, match=r"^sap export refused: no account code for "
                                            r"Income:ForeignExchange:Unrealised, "
                                            r"Liabilities:Tax:Sales; add each under "
                                            r"\[export.account_codes.sap\]"):
        export_period(march, "2026-03", "sap", tmp_path / "sap.csv", settings,
                      functional_currency="USD")


def _edited(path: Path, column: str, change, journal_column: str | None = None,
            pick=lambda row: True) -> list[list[dict]]:
    """The file's rows with `column` of the first row `pick` accepts set to `change(value)`;
    given `journal_column`, on every line of that row's journal as well (a journal's lines
    share their rate and their number)."""
    [rows] = read_files([path])
    first = next(row for row in rows if pick(row))
    journal = first[journal_column] if journal_column else None
    value = change(first[column])
    for row in rows:
        if row is first or (journal_column and row[journal_column] == journal):
            row[column] = value
    return [rows]


@pytest.mark.slow  # over a second here: not in make test-fast
def test_a_file_edited_to_break_one_rule_fails_its_validator(march, policy, tmp_path):
    paths = {target: export_period(march, "2026-03", target, tmp_path / f"{target}.csv",
                                   policy.exports, ledger_currency="USD")[0]
             for target in ("netsuite", "quickbooks", "sap")}
    # NetSuite: a rate of 1 on a EUR journal.
    netsuite = _edited(paths["netsuite"], "Exchange Rate", lambda _: "1", "External ID",
                       pick=lambda row: row["Currency"] == "EUR")
    eur = next(row["External ID"] for row in netsuite[0] if row["Currency"] == "EUR")
    problems = validate_rows("netsuite", netsuite, "USD")
    assert problems and problems[0] == (f"journal {eur} line 1 Exchange Rate: 1 on a EUR journal "
                                        "would post EUR amounts as USD")
    # NetSuite: an amount of 11 digits before the decimal point.
    netsuite = _edited(paths["netsuite"], "Debit", lambda _: "12345678901.00")
    assert validate_rows("netsuite", netsuite, "USD")[0].endswith(
        "line 1 Debit: 12345678901.00 has 11 digits before the decimal point; netsuite takes at "
        "most 10")
    # QuickBooks: a journal number of 22 characters.
    quickbooks = _edited(paths["quickbooks"], "Journal No", lambda _: "CB-2026-03-28-purchase",
                         "Journal No")
    problems = validate_rows("quickbooks", quickbooks, "USD")
    assert problems[0] == ("journal CB-2026-03-28-purchase line 1 Journal No: "
                           "'CB-2026-03-28-purchase' is 22 characters; quickbooks takes at most 21")
    # QuickBooks: an amount of 11 digits before the decimal point (Intuit: "10.5 format").
    quickbooks = _edited(paths["quickbooks"], "Debits", lambda _: "12345678901.00")
    assert validate_rows("quickbooks", quickbooks, "USD")[0].endswith(
        "line 1 Debits: 12345678901.00 has 11 digits before the decimal point; quickbooks takes "
        "at most 10")
    # SAP: an account without ALPHA's leading zeros, and a local amount one cent off.
    sap = _edited(paths["sap"], "GL_ACCOUNT", lambda account: account.lstrip("0"))
    problems = validate_rows("sap", sap, "USD")
    assert problems[0].endswith("GL_ACCOUNT: '113100' must have its leading zeros (10 digits, "
                                "SAP's ALPHA conversion)")
    sap = _edited(paths["sap"], "AMT_LOCAL", lambda amount: str(Decimal(amount) + Decimal("0.01")))
    assert "local currency amounts do not balance" in " ".join(validate_rows("sap", sap, "USD"))


def test_a_rate_exists_only_when_every_line_rounds_to_its_functional_amount():
    # 3.34 EUR carried at 3.68 USD: 1.1 would post 3.67, so the rate moves inside the cent.
    assert fit_exchange_rate([ExportLine("a", "", 334, 368), ExportLine("b", "", -334, -368)],
                             "EUR", "USD") == Decimal("1.102")
    # 1.00 EUR at 1.10 and 1.00 EUR at 1.20 in one journal: no single rate posts both.
    assert fit_exchange_rate([ExportLine("a", "", 100, 110), ExportLine("b", "", 100, 120),
                              ExportLine("c", "", -200, -230)], "EUR", "USD") is None
    # JPY has no minor unit: 1000 JPY at 0.0067 is 6.70 USD.
    assert fit_exchange_rate([ExportLine("a", "", 1000, 670), ExportLine("b", "", -1000, -670)],
                             "JPY", "USD") == Decimal("0.0067")


@pytest.mark.slow  # over a second here: not in make test-fast
def test_a_transaction_currency_beancount_ledger_names_what_it_leaves_out(march, tmp_path):
    from beancount import loader

    from reports.outputs.beancount_export import write_beancount

    ledger = write_beancount(march, "2026-03", tmp_path / "books.beancount", draft=True,
                             ledger_currency="USD")
    left_out = [line for line in ledger.read_text().splitlines() if line.startswith("; left out")]
    # Remeasured: EUR cash, EUR sales tax payable and the FX line; JPY (no tax) cash and FX.
    assert len(left_out) == 5
    assert left_out[0].startswith("; left out: fx/2026-03/EUR moves only USD (functional) amounts: "
                                  "Assets:Cash:Clearing ")
    assert all(line.endswith("export with --functional to carry it") for line in left_out)
    assert loader.load_file(str(ledger))[1] == []
    functional = write_beancount(march, "2026-03", tmp_path / "usd.beancount", draft=True,
                                 functional_currency="USD")
    assert "; left out" not in functional.read_text()
    assert "Income:ForeignExchange:Unrealised" in functional.read_text()


@pytest.mark.slow  # over a second here: not in make test-fast
def test_netsuite_and_xero_dates_follow_the_policy_date_preference(march, tmp_path):
    from rules.policy import PolicyError, load_policy, policy_from_document

    document = {"export": {"netsuite_date_format": "YYYY-MM-DD",
                           "xero_date_format": "DD MMM YYYY"}}
    settings = policy_from_document(document).exports
    settings = type(settings)(**{**settings.__dict__,
                                 "account_codes": load_policy().exports.account_codes})
    [netsuite] = export_period(march, "2026-03", "netsuite", tmp_path / "ns.csv", settings,
                               functional_currency="USD")
    [xero] = export_period(march, "2026-03", "xero", tmp_path / "xero.csv", settings,
                           functional_currency="USD")
    assert read_files([netsuite])[0][0]["Date"] == "2026-03-28"
    assert read_files([xero])[0][0]["Date"] == "28 Mar 2026"
    # The validator reads dates with the same preference: the default one refuses them.
    assert validate_rows("xero", read_files([xero]), "USD")[0] == (
        f"journal {read_files([xero])[0][0]['Narration']} line 1 Date: '28 Mar 2026' is not a "
        "date in %d/%m/%Y")
    with pytest.raises(PolicyError, match=r"\[export\] xero_date_format must be one of "
                                          r'"DD/MM/YYYY", "DD MMM YYYY", not "MM/DD/YYYY"'):
        policy_from_document({"export": {"xero_date_format": "MM/DD/YYYY"}})


def test_a_foreign_journal_never_gets_the_rate_1_even_where_it_would_round_right():
    # 0.01 EUR carried at 0.01 USD: 1 would post it exactly, but a foreign journal at 1 is
    # what a forgotten rate looks like; the next shortest exact rate is chosen instead.
    rate = fit_exchange_rate([ExportLine("a", "", 1, 1), ExportLine("b", "", -1, -1)], "EUR", "USD")
    assert rate == Decimal("1.1")
    assert fit_exchange_rate([ExportLine("a", "", 1, 1), ExportLine("b", "", -1, -1)],
                             "USD", "USD") == Decimal("1")


@pytest.mark.slow  # over a second here: not in make test-fast
def test_trace_finds_each_exported_journal_by_its_external_id(march, policy, tmp_path):
    from reports.outputs.exports import trace_journal

    export_period(march, "2026-03", "netsuite", tmp_path / "ns.csv", policy.exports,
                  by_customer=True, ledger_currency="USD")
    mapping = read_files([mapping_path(tmp_path / "ns.csv")])[0]
    usage_31 = [row for row in mapping if row["journal_key"].startswith("2026-03-31/usage/EUR")]
    traced = [trace_journal(march, row["external_id"], mapping_path(tmp_path / "ns.csv"))
              for row in usage_31]
    assert [journal["ledger_entries"] for journal in traced] == [
        [{"entry_id": f"usage/{customer}/2026-03-31", "batch_id": "nightly-2026-03-31"}]
        for customer in "GEF"]
    assert all(int(journal["entries"]) == len(journal["ledger_entries"]) for journal in traced)
    with pytest.raises(ValueError, match="has no journal 'CB2603DTC-999999'"):
        trace_journal(march, "CB2603DTC-999999", mapping_path(tmp_path / "ns.csv"))


@pytest.mark.slow  # over a second here: not in make test-fast
@pytest.mark.parametrize("target", ["sap", "csv"])
def test_a_target_that_carries_line_amounts_maps_foreign_journals_with_no_rate(
        march, policy, tmp_path, target):
    # SAP and the CSV carry each line's local (functional) amount: a journal has no one rate,
    # and its mapping row must not claim 1 (which would post EUR amounts as USD).
    export_period(march, "2026-03", target, tmp_path / "out.csv", policy.exports,
                  ledger_currency="USD")
    mapping = read_files([mapping_path(tmp_path / "out.csv")])[0]
    foreign = [row["exchange_rate"] for row in mapping if row["currency"] != "USD"]
    domestic = {row["exchange_rate"] for row in mapping if row["currency"] == "USD"}
    assert foreign and set(foreign) == {""}
    assert domestic == {"1"}


# --- One external id, one set of ledger entries, in every target's file ------------------

ID_COLUMN = {"netsuite": "External ID", "quickbooks": "Journal No", "sap": "REF_DOC_NO",
             "csv": "journal_id", "xero": "Narration"}


def posted_per_journal(target: str, rows: list[dict]) -> dict[str, dict[str, int]]:
    """Per external id and account, the functional cents the file posts, read as its ERP
    reads it: NetSuite and QuickBooks convert each line at its journal's rate, SAP takes the
    local amount, the CSV its functional column, Xero's amount is the base currency."""
    posted: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in rows:
        if target in ("netsuite", "quickbooks"):
            debit, credit, account = (("Debit", "Credit", "Account") if target == "netsuite"
                                      else ("Debits", "Credits", "Account Name"))
            amount = Decimal(row[debit] or 0) - Decimal(row[credit] or 0)
            cents = _cents(amount * Decimal(row["Exchange Rate"]))
        elif target == "sap":
            account, cents = "GL_ACCOUNT", _cents(Decimal(row["AMT_LOCAL"]))
        elif target == "csv":
            account, cents = "account", _cents(Decimal(row["functional_amount"]))
        else:
            account, cents = "AccountCode", _cents(Decimal(row["Amount"]))
        posted[row[ID_COLUMN[target]].split(" ")[0]][row[account]] += cents
    return {journal: {code: cents for code, cents in accounts.items() if cents}
            for journal, accounts in posted.items()}


def ledger_per_journal(store, policy, target: str, mapping: list[dict]) -> dict[str, dict]:
    """Per external id, the ledger's functional movement per account of the entries its
    journal key names (day/kind/currency, then `rate R`: the entries whose lines in that
    currency come from lots bought at exactly the rates R, or `entry E`), read from the
    journal tables here, not through the export's code."""
    lines = store.read_frame("""
        SELECT e.entry_id, e.business_date, e.kind, l.currency, l.account, l.functional_minor,
               COALESCE(lots.rate_to_functional, '') AS lot_rate
        FROM journal_lines l JOIN journal_entries e ON e.entry_id = l.entry_id
        LEFT JOIN lots ON lots.purchase_id = l.purchase_id
        WHERE e.period = '2026-03'
    """)
    lines["day"] = lines["business_date"].astype(str).str[:10]
    codes = policy.exports.account_codes.get(target, {})
    expected = {}
    for row in mapping:
        day, kind, currency, *split = row["journal_key"].split("/", 3)  # an entry id has "/"
        mine = lines[(lines["day"] == day) & (lines["kind"] == kind)
                     & (lines["currency"] == currency)]
        if split and split[0].startswith("entry "):
            mine = mine[mine["entry_id"] == split[0].removeprefix("entry ")]
        elif split:
            rates = mine.groupby("entry_id")["lot_rate"].agg(
                lambda found: "+".join(sorted({rate for rate in found if rate})) or "day")
            mine = mine[mine["entry_id"].map(rates) == split[0].removeprefix("rate ")]
        moved: dict[str, int] = defaultdict(int)
        for account, functional in zip(mine["account"], mine["functional_minor"], strict=True):
            code = codes.get(account, account)
            moved[code.zfill(10) if target == "sap" and code.isdigit() else code] += int(functional)
        assert mine["entry_id"].nunique() == int(row["entries"]), row["journal_key"]
        expected[row["external_id"]] = {code: cents for code, cents in moved.items() if cents}
    return expected


@pytest.mark.slow  # over a second here: not in make test-fast
def test_one_external_id_names_the_same_ledger_entries_in_every_target(march, policy,
                                                                        tmp_path):
    # By customer, NetSuite and QuickBooks must split the EUR usage journals by rate; SAP and
    # the CSV need no rate, but split the same way so that CB2603DTC-000009 is one set of
    # entries in every file, and each file's journal posts exactly that set's movements
    # (the ledger's side is read from the journal tables, per journal key).
    mappings = {}
    for target in ("netsuite", "quickbooks", "sap", "csv"):
        out = tmp_path / target / "out.csv"
        paths = export_period(march, "2026-03", target, out, policy.exports, by_customer=True,
                              ledger_currency="USD")
        mapping = read_files([mapping_path(out)])[0]
        mappings[target] = [(row["external_id"], row["journal_key"], row["entries"],
                             row["batches"]) for row in mapping]
        rows = [row for rows in read_files(paths) for row in rows]
        assert posted_per_journal(target, rows) == ledger_per_journal(march, policy, target,
                                                                      mapping), target
    assert mappings["sap"] == mappings["netsuite"] == mappings["quickbooks"] == mappings["csv"]
    split = [(external_id, key) for external_id, key, _, _ in mappings["sap"]
             if "/rate " in key or "/entry " in key]
    assert split == [
        ("CB2603DTC-000007", "2026-03-30/usage/EUR/entry usage/E/2026-03-30"),
        ("CB2603DTC-000008", "2026-03-30/usage/EUR/entry usage/F/2026-03-30"),
        ("CB2603DTC-000009", "2026-03-30/usage/EUR/rate 1.0912"),
        ("CB2603DTC-000014", "2026-03-31/usage/EUR/rate 1.0912"),
        ("CB2603DTC-000015", "2026-03-31/usage/EUR/rate 1.1+1.1537"),
        ("CB2603DTC-000016", "2026-03-31/usage/EUR/rate 1.1537")]


@pytest.mark.slow  # over a second here: not in make test-fast
def test_functional_exports_give_every_target_the_same_ids(march, policy, tmp_path):
    mappings = {}
    for target in ("netsuite", "quickbooks", "sap", "csv", "xero"):
        out = tmp_path / target / "out.csv"
        export_period(march, "2026-03", target, out, policy.exports, functional_currency="USD")
        mappings[target] = [(row["external_id"], row["journal_key"], row["entries"])
                            for row in read_files([mapping_path(out)])[0]]
    assert len({tuple(mapping) for mapping in mappings.values()}) == 1
    assert mappings["xero"][0] == ("CB2603DF-000001", "2026-03-28/purchase/USD", "2")  # P-E1, P-J


# --- Account codes go out exactly as the policy writes them -----------------------------

def _with_codes(policy, target: str, **changed: str):
    from dataclasses import replace
    from types import MappingProxyType

    codes = {name: dict(table) for name, table in policy.exports.account_codes.items()}
    codes[target].update({account.replace("__", ":"): code for account, code in changed.items()})
    return replace(policy.exports, account_codes=MappingProxyType(codes))


@pytest.mark.slow  # over a second here: not in make test-fast
def test_a_quickbooks_account_a_spreadsheet_would_run_is_refused_not_changed(march, policy,
                                                                           tmp_path):
    settings = _with_codes(policy, "quickbooks", Income__Revenue__Usage="-Usage Revenue")
    with pytest.raises(ExportRefused) as refused:
        export_period(march, "2026-03", "quickbooks", tmp_path / "qbo.csv", settings,
                      functional_currency="USD")
    assert str(refused.value) == (
        f"quickbooks export refused, nothing written: {policy.exports.source} "
        '[export.account_codes.quickbooks] "Income:Revenue:Usage" = "-Usage Revenue" starts '
        "with '-', which a spreadsheet runs as a formula: written safely it would be "
        "\"'-Usage Revenue\", an account quickbooks does not have (QuickBooks Online imports a "
        "line only to an account already in the chart of accounts, under its name as there "
        '(QuickBooks Learn & Support, "Import journal entries": add new accounts to the chart '
        "before importing; a subaccount as Parent:Subaccount)); rename the account in "
        "quickbooks and here")
    assert policy.exports.source.endswith("policy.toml") and "\n" not in str(refused.value)
    assert list(tmp_path.glob("qbo*")) == []
    # A file edited to carry the guarded name fails the validator too.
    [path] = export_period(march, "2026-03", "quickbooks", tmp_path / "ok.csv", policy.exports,
                           functional_currency="USD")
    [rows] = read_files([path])
    rows[0]["Account Name"] = "'=Usage Revenue"
    assert validate_rows("quickbooks", [rows], "USD")[0].startswith(
        f"journal {rows[0]['Journal No']} line 1 Account Name: \"'=Usage Revenue\" carries a "
        "spreadsheet's formula guard, so names no account of the chart: QuickBooks Online imports")


@pytest.mark.slow  # over a second here: not in make test-fast
def test_xero_system_accounts_are_refused_and_the_shipped_codes_avoid_them(march, policy,
                                                                          tmp_path):
    from reports.outputs.erp_rules import mapping_problems

    # The shipped policy: no code any target would refuse or change (Xero's cash clearing
    # was 610, Accounts Receivable in Xero's default chart).
    for target, codes in policy.exports.account_codes.items():
        assert mapping_problems(target, dict(codes)) == [], target
    assert policy.exports.account_codes["xero"]["Assets:Cash:Clearing"] == "615"
    settings = _with_codes(policy, "xero", Assets__Cash__Clearing="610")
    with pytest.raises(ExportRefused, match=(
            r'^xero export refused, nothing written: \S+policy.toml \[export.account_codes.xero\] '
            r'"Assets:Cash:Clearing" = "610" is Accounts Receivable in Xero\'s default chart, a '
            r"system account \(Xero refuses manual journals to its system accounts \(Xero "
            r'Central, "Locked and system accounts in your chart of accounts"\)\); map it to')):
        export_period(march, "2026-03", "xero", tmp_path / "xero.csv", settings,
                      functional_currency="USD")
    assert list(tmp_path.glob("xero*")) == []
    [path] = export_period(march, "2026-03", "xero", tmp_path / "ok.csv", policy.exports,
                           functional_currency="USD")
    [rows] = read_files([path])
    rows[1]["AccountCode"] = "800"
    assert validate_rows("xero", [rows], "USD") == [
        f"journal {rows[1]['Narration']} line 2 AccountCode: '800' is Accounts Payable, a system "
        "account: Xero refuses manual journals to its system accounts (Xero Central, \"Locked "
        "and system accounts in your chart of accounts\")"]
