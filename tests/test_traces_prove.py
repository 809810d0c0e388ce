"""Issue 19: traces that prove, on the refund scenario of test_refunds.py (worked there):
P-R 10.00 = usage 6.66 + refund RF1 3.34, nothing left; P-Q 1.00 refunded whole (RF7);
U4 (customer Q, 2026-03-03, api, 1 credit) found no credits left: uncovered."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from datetime import date

import pytest
from sqlalchemy import text

from reports.subledger import exceptions
from reports.trace import trace_entry, trace_purchase, trace_usage
from tests.support.cli import creditbooks
from tests.support.manual_journals import written_down_lot
from tests.support.nights import post_days
from tests.support.refunds import write_refund_scenario


@pytest.fixture
def refunded(sqlite_store, policy, tmp_path):
    write_refund_scenario(tmp_path / "landing")
    post_days(sqlite_store, policy, tmp_path, date(2026, 3, 1), date(2026, 3, 3))
    return sqlite_store


def failed_checks(life: dict) -> list[str]:
    return [check["check"] for check in life["proof_checks"] if not check["holds"]]


def test_a_refunded_lot_ties_out_with_its_refund_from_its_own_record(refunded):
    life = trace_purchase(refunded, "P-R")
    ties_out = life["ties_out"]
    assert (ties_out["usage_revenue"], ties_out["refunded"], ties_out["value_remaining"]) == (
        "6.66", "3.34", "0.00")
    assert ties_out["proof"] == ("6.66 usage + 3.34 refunds + 0.00 breakage + 0.00 escheat + "
                                 "0.00 left = 10.00 against 10.00")
    assert ties_out["holds"] is True and failed_checks(life) == []
    assert life["refunds"] == [{"refund_id": "RF1", "business_date": "2026-03-02", "credits": "1",
                                "value": "3.34", "tax": "0.27"}]
    assert trace_purchase(refunded, "P-Q")["ties_out"]["refunded"] == "1.00"


@pytest.mark.slow  # over a second here: not in make test-fast
def test_a_disagreement_between_sources_fails_the_proof_instead_of_being_plugged(refunded):
    with refunded.engine.begin() as connection:  # the refund record says 1 cent less
        connection.execute(text("UPDATE refunds SET value_minor = 333 WHERE refund_id = 'RF1'"))
    life = trace_purchase(refunded, "P-R")
    assert life["ties_out"]["holds"] is False
    assert failed_checks(life) == ["recorded movements + lot balance = amount",
                                   "journal: refund lines = recorded refund"]
    with refunded.engine.begin() as connection:  # the lot's running balance disagrees
        connection.execute(text("UPDATE refunds SET value_minor = 334 WHERE refund_id = 'RF1'"))
        connection.execute(text("UPDATE lot_balances SET usage_value_minor = 665 "
                                "WHERE purchase_id = 'P-R'"))
    life = trace_purchase(refunded, "P-R")
    assert life["ties_out"]["value_remaining"] == "0.01"
    assert failed_checks(life) == ["recorded movements + lot balance = amount",
                                   "journal: deferred left for the lot = lot balance"]


def test_a_refund_entry_traces_to_its_refund_row_not_to_usage(refunded, tmp_path):
    document = trace_entry(refunded, tmp_path / "archive", "refund/RF1")
    assert document["refund"] == {
        "refund_id": "RF1", "purchase_id": "P-R", "customer_id": "R",
        "refunded_at": "2026-03-02T09:00:00+00:00", "business_date": "2026-03-02",
        "credits": "1", "value": "3.34", "tax": "0.27", "currency": "USD"}
    assert [(line["account"], line["amount"]) for line in document["lines"]] == [
        ("Liabilities:DeferredRevenue:Credits", "3.34"), ("Liabilities:Tax:Sales", "0.27"),
        ("Assets:Cash:Clearing", "-3.61")]
    assert "lots_burned" not in document and "usage_events" not in document


def test_exceptions_show_the_rows_id_and_raw_values(refunded):
    rejected = {(row["source"], row["id"]): row for row in exceptions(refunded, date(2026, 3, 2))
                if row["kind"] == "rejected"}
    assert set(rejected) == {("refunds.csv row 2", "RF2"), ("refunds.csv row 3", "RF3"),
                             ("refunds.csv row 4", "RF4"), ("refunds.csv row 5", "RF5")}
    raw = json.loads(rejected[("refunds.csv row 5", "RF5")]["raw_values"])
    assert (raw["purchase_id"], raw["credits"], raw["amount"]) == ("P-Q", "1", "0.30")


def test_tracing_an_uncovered_event_says_it_was_uncovered(refunded, tmp_path):
    document = trace_usage(refunded, tmp_path / "archive", "U4")
    coverage = document["coverage"]
    assert coverage["status"].startswith("uncovered: the customer had no active credits")
    assert (coverage["credits_covered_by_lots"], coverage["credits_uncovered"]) == ("0", "1")
    covered = trace_usage(refunded, tmp_path / "archive", "U1")["coverage"]
    assert covered["status"].startswith("covered") and covered["credits_uncovered"] == "0"


@pytest.mark.slow  # over a second here: not in make test-fast
def test_trace_sample_prints_as_tables(tmp_path):
    write_refund_scenario(tmp_path / "landing")
    creditbooks("init", cwd=tmp_path)
    creditbooks("nightly", "--from", "2026-03-01", "--to", "2026-03-03", cwd=tmp_path)
    shown = creditbooks("trace", "sample", "--period", "2026-03", "--n", "3", cwd=tmp_path,
                        check=False)
    assert shown.returncode == 0, shown.stderr
    assert "Traceback" not in shown.stderr
    # Each sampled revenue line opens with its entry id and line number as fields.
    assert "== revenue_lines 1 ==" in shown.stdout
    assert "│ entry_id │ usage/R/2026-03-0" in shown.stdout
    refund = creditbooks("trace", "entry", "refund/RF1", cwd=tmp_path).stdout
    assert re.search(r"│ refund_id +│ RF1 ", refund) and re.search(r"│ value +│ 3.34 ", refund)
    assert "lots_burned" not in refund
    uncovered = creditbooks("trace", "usage", "U4", cwd=tmp_path).stdout
    assert "uncovered: the customer had no active credits" in uncovered


@pytest.mark.slow  # over a second here: not in make test-fast
def test_trace_purchase_exits_1_naming_the_sides_that_disagree(tmp_path):
    write_refund_scenario(tmp_path / "landing")
    creditbooks("init", cwd=tmp_path)
    creditbooks("nightly", "--from", "2026-03-01", "--to", "2026-03-03", cwd=tmp_path)
    holds = creditbooks("trace", "purchase", "P-R", cwd=tmp_path, check=False)
    assert (holds.returncode, holds.stderr) == (0, "")
    # A copy of the ledger whose refund record says 1 cent less than the lot and the journal.
    altered = tmp_path / "altered" / "creditbooks.db"
    altered.parent.mkdir()
    shutil.copy(tmp_path / "creditbooks.db", altered)
    with sqlite3.connect(altered) as connection:
        connection.execute("UPDATE refunds SET value_minor = 333 WHERE refund_id = 'RF1'")
    fails = creditbooks("--db", f"sqlite:///{altered}", "trace", "purchase", "P-R", cwd=tmp_path,
                        check=False)
    assert fails.returncode == 1 and "Traceback" not in fails.stderr
    assert fails.stderr.strip().splitlines() == [
        "creditbooks: error: purchase P-R does not tie out: recorded movements + lot balance = amount: "
        "6.66 usage + 3.33 refunds + 0.00 breakage + 0.00 escheat + 0.00 left = 9.99 against "
        "10.00; journal: refund lines = recorded refund: 3.34 against 3.33"]
    assert re.search(r"│ holds +│ False", fails.stdout)  # the trace itself is still shown


@pytest.mark.slow  # over a second here: not in make test-fast
def test_a_lot_a_manual_journal_wrote_down_ties_out_with_the_change_as_its_own_side(
        sqlite_store, policy, tmp_path):
    """P-W (tests/support/manual_journals.py, worked in test_manual_journals.py): 570.00,
    written down 100.00 by MJ-W after March 1, then usage 324.06, refund 21.89 and breakage
    124.05 = 470.00. The journal's deferred lines on the lot (570.00 - 100.00 manual -
    324.06 - 21.89 - 124.05) leave 0.00, as the lot's balance does."""
    written_down_lot(sqlite_store, policy, tmp_path, date(2026, 3, 3))
    life = trace_purchase(sqlite_store, "P-W")
    assert failed_checks(life) == []
    assert life["manual_journals"] == [{"ref": "MJ-W", "business_date": "2026-03-01",
                                        "line": 1, "deferred_change": "-100.00"}]
    assert (life["ties_out"]["manual_journals"], life["ties_out"]["value_remaining"]) == (
        "-100.00", "0.00")
    assert life["ties_out"]["proof"] == (
        "324.06 usage + 21.89 refunds + 124.05 breakage + 0.00 escheat + 0.00 left = 470.00 "
        "against 570.00 amount - 100.00 manual journals = 470.00")
    ledger = tmp_path / "ledger.db"
    shown = creditbooks("--db", f"sqlite:///{ledger}", "trace", "purchase", "P-W",
                        cwd=tmp_path, check=False)
    assert (shown.returncode, shown.stderr) == (0, "")
    assert re.search(r"│ MJ-W +│ 2026-03-01 +│ +1 │ +-100.00 │", shown.stdout)
    assert re.search(r"│ manual_journals +│ -100.00 ", shown.stdout)
    # A copy of the ledger whose manual journal line says 1 cent less of a write-down than
    # the journal's line on the lot posted.
    altered = tmp_path / "altered.db"
    sqlite_store.dispose()  # its last writes are in the write-ahead log until then
    shutil.copy(ledger, altered)
    with sqlite3.connect(altered) as connection:
        connection.execute("UPDATE manual_journal_lines SET deferred_change_minor = -9999 "
                           "WHERE ref = 'MJ-W' AND purchase_id = 'P-W'")
    fails = creditbooks("--db", f"sqlite:///{altered}", "trace", "purchase", "P-W",
                        cwd=tmp_path, check=False)
    assert fails.returncode == 1 and "Traceback" not in fails.stderr
    assert fails.stderr.strip().splitlines() == [
        "creditbooks: error: purchase P-W does not tie out: journal: deferred left for the "
        "lot = lot balance: 0.00 against 0.01; journal: manual lines = manual journals' "
        "changes to the lot: -100.00 against -99.99"]
