"""Foreign currency, worked by hand: a EUR lot burned while the rate moves (functional USD).

Rates (USD per EUR): 03-30 1.10, 03-31 1.20, 04-01 1.05.
03-30  P-E cust E: 3 credits, 10.00 EUR + 2.00 EUR tax, at 1.10 for ever (non-monetary):
         cash 12.00 EUR = 13.20 USD; deferred 10.00 = 11.00; tax 2.00 = 2.20
       1 credit used: 3.33 EUR; deferred owed 6.67: round(3.33 x 1.10) = 3.66 USD
03-31  1 credit used: 3.34 EUR; owed 3.33: round(6.67 x 1.1) - 3.66 = 7.34 - 3.66 = 3.68 USD
       (still at 1.10, though today's rate is 1.20)
       month end: the monetary balances at 1.20 (deferred revenue is not one): cash 12.00
         EUR = 14.40 USD, carried at 13.20: +1.20; sales tax payable 2.00 EUR = 2.40 USD,
         carried at 2.20: -0.20; unrealised gain 1.20 - 0.20 = 1.00
04-01  refund of the last credit: 3.33 EUR value + 0.67 EUR tax (round(2.00 / 3));
         deferred 11.00 - 7.34 = 3.66 USD; tax round(0.67 x 1.1) = 0.74 USD; cash 4.40 USD out
April 1, in USD: cash 14.40 - 4.40 = 10.00; deferred 0.00; tax -2.40 + 0.74 = -1.66;
usage -7.34; FX gain -1.00. In EUR: cash 8.00, tax -1.33, usage -6.67.
"""

from __future__ import annotations

import json
from datetime import date

import pytest

from creditbooks.night.run import run_night
from reports.controls import run_controls
from reports.statements import trial_balance
from rules.fx import FxRateMissingError
from tests.support.landing import write_document
from tests.support.nights import post_days
from tests.support.scenario import purchase, usage


def rate(day, value, currency="EUR"):
    return {"date": day, "currency": currency, "rate_to_functional": value}


def write_euro_scenario(landing):
    write_document(landing, "2026-03-30", "purchases", [
        purchase("P-E", "E", "3", "10.00", currency="EUR", tax_amount="2.00",
                 purchased_at="2026-03-30T09:00:00Z")])
    for day, value in (("2026-03-30", "1.10"), ("2026-03-31", "1.20"), ("2026-04-01", "1.05")):
        write_document(landing, day, "fx_rates", [rate(day, value)])
    for day in ("2026-03-30", "2026-03-31"):
        write_document(landing, day, "usage", [
            usage(f"U-{day}", "E", f"{day}T10:00:00Z", "api", "1")])
    write_document(landing, "2026-04-01", "refunds", [
        {"refund_id": "RF-E", "purchase_id": "P-E", "refunded_at": "2026-04-01T09:00:00Z",
         "credits": "1", "amount": "4.00"}])


def balances(store, period, functional=None):
    return {(row["account"], row["currency"]): row["closing"]
            for row in trial_balance(store, period, functional)}


@pytest.mark.slow  # over a second here: not in make test-fast
def test_a_euro_lot_keeps_its_purchase_rate_and_cash_and_tax_are_remeasured(store, policy, tmp_path):
    write_euro_scenario(tmp_path / "landing")
    post_days(store, policy, tmp_path, date(2026, 3, 30), date(2026, 4, 1))

    lines = store.read_frame("""
        SELECT l.entry_id, l.account, l.currency, l.amount_minor, l.functional_minor
        FROM journal_lines l ORDER BY l.entry_id, l.line_number""")
    assert lines.values.tolist() == [
        ["fx/2026-03/EUR", "Assets:Cash:Clearing", "EUR", 0, 120],
        ["fx/2026-03/EUR", "Liabilities:Tax:Sales", "EUR", 0, -20],
        ["fx/2026-03/EUR", "Income:ForeignExchange:Unrealised", "EUR", 0, -100],
        ["purchase/P-E", "Assets:Cash:Clearing", "EUR", 1200, 1320],
        ["purchase/P-E", "Liabilities:DeferredRevenue:Credits", "EUR", -1000, -1100],
        ["purchase/P-E", "Liabilities:Tax:Sales", "EUR", -200, -220],
        ["refund/RF-E", "Liabilities:DeferredRevenue:Credits", "EUR", 333, 366],
        ["refund/RF-E", "Liabilities:Tax:Sales", "EUR", 67, 74],
        ["refund/RF-E", "Assets:Cash:Clearing", "EUR", -400, -440],
        ["usage/E/2026-03-30", "Liabilities:DeferredRevenue:Credits", "EUR", 333, 366],
        ["usage/E/2026-03-30", "Income:Revenue:Usage", "EUR", -333, -366],
        ["usage/E/2026-03-31", "Liabilities:DeferredRevenue:Credits", "EUR", 334, 368],
        ["usage/E/2026-03-31", "Income:Revenue:Usage", "EUR", -334, -368],
    ]
    assert balances(store, "2026-04", functional="USD") == {
        ("Assets:Cash:Clearing", "USD"): "10.00",
        ("Income:ForeignExchange:Unrealised", "USD"): "-1.00",
        ("Income:Revenue:Usage", "USD"): "-7.34",
        ("Liabilities:DeferredRevenue:Credits", "USD"): "0.00",
        ("Liabilities:Tax:Sales", "USD"): "-1.66",
    }
    euro = balances(store, "2026-04")
    assert (euro[("Assets:Cash:Clearing", "EUR")], euro[("Liabilities:Tax:Sales", "EUR")],
            euro[("Income:Revenue:Usage", "EUR")]) == ("8.00", "-1.33", "-6.67")
    assert store.read_frame("SELECT rate_to_functional FROM lots")["rate_to_functional"][0] == "1.1"
    assert all(result.passed for result in run_controls(store, policy.accounts.deferred_revenue))


def test_a_day_needing_a_missing_rate_posts_nothing_until_the_rate_lands(sqlite_store, policy,
                                                                        tmp_path):
    landing = tmp_path / "landing"
    write_document(landing, "2026-03-30", "purchases", [
        purchase("P-E", "E", "3", "10.00", currency="EUR", purchased_at="2026-03-30T09:00:00Z")])
    with pytest.raises(FxRateMissingError, match="no exchange rate to USD for EUR on 2026-03-30: "
                                                 "land an fx_rates file"):
        run_night(sqlite_store, policy, landing, tmp_path / "archive", date(2026, 3, 30))
    assert sqlite_store.read_frame("SELECT COUNT(*) AS n FROM batches")["n"][0] == 0
    write_document(landing, "2026-03-30", "fx_rates", [rate("2026-03-30", "1.10")])
    outcome = run_night(sqlite_store, policy, landing, tmp_path / "archive", date(2026, 3, 30))
    assert outcome.status == "posted"


def test_functional_reports_and_a_functional_ledger_that_beancount_accepts(sqlite_store, policy,
                                                                          tmp_path):
    from beancount import loader

    from reports.outputs.beancount_export import write_beancount
    from reports.statements import rollforward

    write_euro_scenario(tmp_path / "landing")
    post_days(sqlite_store, policy, tmp_path, date(2026, 3, 30), date(2026, 4, 1))
    [march] = rollforward(sqlite_store, "2026-03", policy.accounts.deferred_revenue, "USD")
    assert march.as_strings() == {"currency": "USD", "opening": "0.00", "purchases": "11.00",
                                  "usage_revenue": "7.34", "breakage": "0.00", "refunds": "0.00",
                                  "escheat": "0.00", "manual_journals": "0.00",
                                  "closing": "3.66"}
    for functional in ("USD", None):
        path = write_beancount(sqlite_store, "2026-03", tmp_path / f"{functional}.beancount",
                               draft=True, functional_currency=functional)
        _, errors, _ = loader.load_file(str(path))
        assert errors == []
    text = (tmp_path / "USD.beancount").read_text()
    assert "Income:ForeignExchange:Unrealised  -1.00 USD" in text
    assert "Liabilities:Tax:Sales  -0.20 USD" in text  # sales tax payable remeasured


@pytest.mark.slow  # over a second here: not in make test-fast
def test_the_command_line_names_a_missing_rate_and_shows_functional_figures(tmp_path):
    from tests.support.cli import creditbooks

    write_euro_scenario(tmp_path / "landing")
    (tmp_path / "landing" / "2026-03-31" / "fx_rates.csv").unlink()
    creditbooks("init", cwd=tmp_path)
    creditbooks("nightly", "--date", "2026-03-30", cwd=tmp_path)
    refused = creditbooks("nightly", "--date", "2026-03-31", cwd=tmp_path, check=False)
    assert (refused.returncode, refused.stderr) == (1, (
        "creditbooks: error: no exchange rate to USD for EUR on 2026-03-31: land an fx_rates "
        "file with them and run the night again; nothing was posted\n"))
    document = json.loads(creditbooks("report", "trial-balance", "--period", "2026-03",
                                      "--functional", "--format", "json", cwd=tmp_path).stdout)
    assert {row["account"]: (row["closing_debit"], row["closing_credit"])
            for row in document["rows"]} == {
        "Assets:Cash:Clearing": ("13.20", "0.00"), "Income:Revenue:Usage": ("0.00", "3.66"),
        "Liabilities:DeferredRevenue:Credits": ("0.00", "7.34"),
        "Liabilities:Tax:Sales": ("0.00", "2.20"), "Total": ("13.20", "13.20")}


def test_check_catches_a_foreign_lot_carried_at_the_wrong_rate(sqlite_store, policy, tmp_path):
    from reports.controls import functional_deferred_at_purchase_rates

    write_euro_scenario(tmp_path / "landing")
    post_days(sqlite_store, policy, tmp_path, date(2026, 3, 30), date(2026, 3, 30))
    deferred = policy.accounts.deferred_revenue
    assert functional_deferred_at_purchase_rates(sqlite_store, deferred, "USD").passed
    with sqlite_store.engine.begin() as connection:  # as if revenue had used today's rate
        connection.exec_driver_sql("DROP TRIGGER journal_lines_no_update")  # append-only
        connection.exec_driver_sql(
            "UPDATE journal_lines SET functional_minor = functional_minor + 1 "
            "WHERE entry_id = 'usage/E/2026-03-30' AND account = ?", (deferred,))
    result = functional_deferred_at_purchase_rates(sqlite_store, deferred, "USD")
    assert (result.passed, result.detail) == (False, "lot P-E: ledger 733, expected 734 USD "
                                                     "minor units")
