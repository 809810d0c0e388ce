"""Manual journals (issue 21): imported as drafts after every check, approved by a second
person, posted through the nights' posting path and sealed, reversed by new entries, and
held against the close. On the hand-worked scenario (tests/support/scenario.py): after
its three nights lot P-B (USD, 20.00 for 10 credits) still holds 16.00 of deferred revenue,
and January's trial balance has usage revenue 0.67 and breakage 5.00 in USD."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from beancount import loader
from beancount.core import data
from sqlalchemy import bindparam, text

from creditbooks.close import CloseRefusedError
from creditbooks.journals import (
    ManualJournalError,
    approve,
    import_journals,
    list_journals,
    reject,
    reverse,
)
from ledger.chain import verify_chain
from reports.controls import run_controls
from reports.outputs.beancount_export import write_beancount
from reports.outputs.exports import export_period, mapping_path
from reports.outputs.verify_package import verify_package
from reports.reconciliations import subledger_equals_ledger
from reports.subledger import lot_balances
from reports.trace import trace_entry
from tests.support.cli import creditbooks
from tests.support.close import close
from tests.support.manual_journals import DEFERRED, journal_file, written_down_lot
from tests.support.nights import post_days
from tests.support.scenario import (
    NIGHTS,
    run_nights,
    trial_balance_of,
    write_scenario,
)
from tests.support.tamper import forge

USAGE = "Income:Revenue:Usage"
# A recognition correction: 2.00 of P-B's deferred revenue is earned (its customer, A,
# used the service outside metering).
RECOGNISE = [f"MJ-1,2026-01-31,{DEFERRED},USD,2.00,,earned off-meter,A,P-B,",
             f"MJ-1,2026-01-31,{USAGE},USD,,2.00,earned off-meter,A,,"]


@pytest.fixture
def books(sqlite_store, policy, tmp_path):
    write_scenario(tmp_path / "landing")
    run_nights(sqlite_store, policy, tmp_path)
    return sqlite_store


def stored_refs(store) -> list[str]:
    with store.transaction() as connection:
        return [row[0] for row in connection.execute(text("SELECT ref FROM manual_journals"))]


def refused(store, policy, path: Path) -> tuple[str, ...]:
    with pytest.raises(ManualJournalError) as error:
        import_journals(store, policy, path, "alice")
    assert stored_refs(store) == []  # all or nothing
    return error.value.problems


@pytest.mark.slow  # over a second here: not in make test-fast
def test_an_unbalanced_journal_is_refused_naming_file_row_and_column(books, policy, tmp_path):
    path = journal_file(tmp_path, [RECOGNISE[0], RECOGNISE[1].replace(",2.00,", ",1.99,")])
    assert refused(books, policy, path) == (
        "journals.csv row 1, column debit: journal MJ-1 does not balance in USD: debits 2.00, "
        "credits 1.99",)


@pytest.mark.slow  # over a second here: not in make test-fast
def test_a_locked_period_an_unknown_account_and_an_unnamed_lot_are_each_refused(
        books, policy, tmp_path):
    books_locked = books
    with books_locked.transaction() as connection:
        connection.execute(text(
            "INSERT INTO period_events (period, action, version, actor, reason, "
            "accepted_exceptions, journal_digest, recorded_at) VALUES ('2025-12', 'close', 1, "
            "'tester', '', 0, '', '2026-01-01 00:00:00')"))
    path = journal_file(tmp_path, [
        f"MJ-2,2025-12-31,{USAGE},USD,1.00,,late,,,",
        "MJ-2,2025-12-31,Income:Revenue:Consulting,USD,,1.00,late,,,",
        f"MJ-3,2026-01-31,{DEFERRED},USD,1.00,,no lot,A,,",
        f"MJ-3,2026-01-31,{USAGE},USD,,1.00,no lot,A,,",
        f"MJ-4,2026-01-31,{DEFERRED},USD,1.005,,three digits,A,P-B,",
        f"MJ-4,2026-01-31,{USAGE},USD,,1.005,three digits,A,,",
        *RECOGNISE,  # a good journal: refused with the rest (the file is all or nothing)
    ])
    assert refused(books, policy, path) == (
        "journals.csv row 1, column date: 2025-12-31 is in 2025-12, a locked period: it "
        "accepts no postings",
        "journals.csv row 2, column date: 2025-12-31 is in 2025-12, a locked period: it "
        "accepts no postings",
        "journals.csv row 2, column account: 'Income:Revenue:Consulting' is not an account of "
        "the chart ([accounts] or [chart] manual_accounts of the policy)",
        "journals.csv row 3, column purchase_id: a line on deferred revenue names the lot it "
        "changes; it is empty",
        "journals.csv row 5, column debit: 1.005 has more than 2 decimal places for USD",
        "journals.csv row 6, column credit: 1.005 has more than 2 decimal places for USD",
    )


def test_an_account_of_the_chart_section_is_accepted(books, tmp_path):
    from rules.policy import policy_from_document

    consulting = policy_from_document({"chart": {"manual_accounts": [
        "Income:Revenue:Consulting"]}})
    path = journal_file(tmp_path, ["MJ-5,2026-01-31,Assets:Receivables:Customers,USD,1.00,,"
                                   "fee,A,,",
                                   "MJ-5,2026-01-31,Income:Revenue:Consulting,USD,,1.00,fee,A,,"])
    assert import_journals(books, consulting, path, "alice").imported == ("MJ-5",)


@pytest.mark.slow  # over a second here: not in make test-fast
def test_a_reimport_is_idempotent_and_other_content_under_a_ref_is_a_conflict(
        books, policy, tmp_path):
    path = journal_file(tmp_path, RECOGNISE)
    assert import_journals(books, policy, path, "alice").imported == ("MJ-1",)
    again = import_journals(books, policy, path, "alice")
    assert (again.imported, again.unchanged) == ((), ("MJ-1",))
    changed = journal_file(tmp_path, [row.replace("2.00", "3.00") for row in RECOGNISE],
                           "changed.csv")
    with pytest.raises(ManualJournalError) as error:
        import_journals(books, policy, changed, "alice")
    assert error.value.problems == (
        "changed.csv row 1, column journal_ref: journal MJ-1 was imported before with other "
        "content; a correction is a new journal with its own ref",)


def test_the_preparer_cannot_approve_and_a_draft_never_posts(books, policy, tmp_path):
    import_journals(books, policy, journal_file(tmp_path, RECOGNISE), "alice",
                    prepared_at=datetime(2026, 2, 1, 9, 30, 15, 481652))
    assert [(row["prepared_at"], row["approved_at"]) for row in list_journals(books)] == [
        ("2026-02-01T09:30:15.481652+00:00", "")]
    with pytest.raises(ManualJournalError, match="prepared by alice; another person approves"):
        approve(books, policy, "MJ-1", "alice")
    assert trial_balance_of(books, "2026-01")[(USAGE, "USD")] == ("0.00", "0.00", "-0.67", "-0.67")
    approvers_bob = replace(policy, approvers=frozenset({"bob"}))
    with pytest.raises(ManualJournalError, match=r"^zed may not reject journal MJ-1: not one "
                       r"of the policy's \[controls\] approvers$"):
        reject(books, approvers_bob, "MJ-1", "zed", "wrong lot")
    reject(books, approvers_bob, "MJ-1", "bob", "wrong lot")
    assert [(row["status"], row["rejected_by"], row["reason"])
            for row in list_journals(books, "2026-01")] == [("rejected", "bob", "wrong lot")]
    with pytest.raises(ManualJournalError, match="MJ-1 is rejected; only a journal that is draft can be"):
        approve(books, policy, "MJ-1", "bob")


@pytest.mark.slow  # over a second here: not in make test-fast
def test_an_approved_journal_posts_sealed_traced_and_the_lot_follows(books, policy, tmp_path):
    import_journals(books, policy, journal_file(tmp_path, RECOGNISE), "alice")
    assert approve(books, policy, "MJ-1", "bob") == "manual/MJ-1"
    assert trial_balance_of(books, "2026-01")[(USAGE, "USD")] == ("0.00", "0.00", "-2.67", "-2.67")
    assert trial_balance_of(books, "2026-01")[(DEFERRED, "USD")][3] == "-18.33"  # 20.33 - 2.00
    # The credit subledger follows: P-B holds 2.00 less, and it still equals the GL.
    balance = next(row for row in lot_balances(books) if row["purchase_id"] == "P-B")
    assert balance["value_remaining"] == "14.00"  # 20.00 - 4.00 used on Feb 1 - 2.00
    assert subledger_equals_ledger(books, "2026-01", DEFERRED).passed
    assert subledger_equals_ledger(books, "2026-02", DEFERRED).passed
    document = trace_entry(books, tmp_path / "archive", "manual/MJ-1")
    assert document["entry"]["kind"] == "manual"
    assert document["manual_journal"]["prepared_by"] == "alice"
    assert document["manual_journal"]["approved_by"] == "bob"
    assert [(line["account"], line["amount"]) for line in document["lines"]] == [
        (DEFERRED, "2.00"), (USAGE, "-2.00")]
    with books.transaction() as connection:
        verified = verify_chain(connection)
    assert verified.holds and verified.entries_checked == verified.head.sequence
    forge(Path(books.engine.url.database), "UPDATE journal_lines SET amount_minor = 300 "
          "WHERE entry_id = 'manual/MJ-1' AND line_number = 1")
    with books.transaction() as connection:
        assert "entry manual/MJ-1" in verify_chain(connection).first_mismatch


@pytest.mark.slow  # over a second here: not in make test-fast
def test_a_reversal_is_a_new_entry_and_nets_to_zero(books, policy, tmp_path):
    import_journals(books, policy, journal_file(tmp_path, RECOGNISE), "alice")
    approve(books, policy, "MJ-1", "bob")
    assert reverse(books, policy, "MJ-1", date(2026, 2, 1), "carol") == "MJ-1/reversal"
    approve(books, policy, "MJ-1/reversal", "bob")
    with books.transaction() as connection:
        net = connection.execute(text(
            "SELECT account, SUM(amount_minor), SUM(functional_minor), COUNT(*) FROM journal_lines "
            "WHERE entry_id IN ('manual/MJ-1', 'manual/MJ-1/reversal') GROUP BY account "
            "ORDER BY account")).fetchall()
    assert net == [(USAGE, 0, 0, 2), (DEFERRED, 0, 0, 2)]
    assert trial_balance_of(books, "2026-01")[(USAGE, "USD")][3] == "-2.67"  # January keeps its entry
    assert trial_balance_of(books, "2026-02")[(USAGE, "USD")][3] == "-4.83"  # 0.67 + 4.16: reversed in Feb
    assert next(row for row in lot_balances(books) if row["purchase_id"] == "P-B")[
        "value_remaining"] == "16.00"
    assert subledger_equals_ledger(books, "2026-02", DEFERRED).passed
    statuses = {row["ref"]: (row["status"], row["reversed_by"], row["reverses_ref"])
                for row in list_journals(books)}
    assert statuses == {"MJ-1": ("reversed", "carol", ""),
                        "MJ-1/reversal": ("approved", "", "MJ-1")}
    with pytest.raises(ManualJournalError, match="MJ-1 is reversed; only a journal that is approved can"):
        reverse(books, policy, "MJ-1", date(2026, 2, 1), "carol")


def posted_entries(store, *entry_ids: str) -> list[str]:
    with store.transaction() as connection:
        return sorted({row[0] for row in connection.execute(text(
            "SELECT entry_id FROM journal_lines WHERE entry_id IN :ids").bindparams(
                bindparam("ids", expanding=True)), {"ids": list(entry_ids)})})


@pytest.mark.slow  # over a second here: not in make test-fast
def test_a_reversal_is_a_draft_that_an_approver_other_than_its_preparer_posts(
        books, policy, tmp_path):
    approvers = replace(policy, approvers=frozenset({"bob", "carol"}))
    import_journals(books, approvers, journal_file(tmp_path, RECOGNISE), "alice")
    approve(books, approvers, "MJ-1", "bob")
    assert reverse(books, approvers, "MJ-1", date(2026, 2, 1), "carol") == "MJ-1/reversal"
    assert posted_entries(books, "manual/MJ-1", "manual/MJ-1/reversal") == ["manual/MJ-1"]
    with pytest.raises(ManualJournalError, match="already has reversal MJ-1/reversal waiting"):
        reverse(books, approvers, "MJ-1", date(2026, 2, 1), "bob")
    with pytest.raises(ManualJournalError, match="prepared by carol; another person approves"):
        approve(books, approvers, "MJ-1/reversal", "carol")
    with pytest.raises(ManualJournalError, match="^zed may not approve journal MJ-1/reversal"):
        approve(books, approvers, "MJ-1/reversal", "zed")
    # Rejected, the reversal leaves MJ-1 approved; the next one has its own ref.
    reject(books, approvers, "MJ-1/reversal", "bob", "wrong date")
    assert reverse(books, approvers, "MJ-1", date(2026, 2, 1), "carol") == "MJ-1/reversal-2"
    approve(books, approvers, "MJ-1/reversal-2", "bob")
    assert posted_entries(books, "manual/MJ-1", "manual/MJ-1/reversal-2") == [
        "manual/MJ-1", "manual/MJ-1/reversal-2"]
    assert {row["ref"]: (row["status"], row["prepared_by"], row["approved_by"],
                         row["reversed_by"], row["reversal_ref"])
            for row in list_journals(books)} == {
        "MJ-1": ("reversed", "alice", "bob", "carol", "MJ-1/reversal-2"),
        "MJ-1/reversal": ("rejected", "carol", "", "", ""),
        "MJ-1/reversal-2": ("approved", "carol", "bob", "", "")}


@pytest.mark.slow  # over a second here: not in make test-fast
def test_with_a_single_approver_a_reversal_prepared_by_another_person_is_posted_by_the_approver(
        books, policy, tmp_path):
    only_bob = replace(policy, approvers=frozenset({"bob"}))
    import_journals(books, only_bob, journal_file(tmp_path, RECOGNISE), "alice")
    approve(books, only_bob, "MJ-1", "bob")
    assert reverse(books, only_bob, "MJ-1", date(2026, 2, 1), "alice") == "MJ-1/reversal"
    assert posted_entries(books, "manual/MJ-1", "manual/MJ-1/reversal") == ["manual/MJ-1"]
    with pytest.raises(ManualJournalError, match="prepared by alice; another person approves it"):
        approve(books, only_bob, "MJ-1/reversal", "alice")
    assert trial_balance_of(books, "2026-02")[(USAGE, "USD")][3] == "-6.83"  # with MJ-1's 2.00
    approve(books, only_bob, "MJ-1/reversal", "bob")
    assert posted_entries(books, "manual/MJ-1", "manual/MJ-1/reversal") == [
        "manual/MJ-1", "manual/MJ-1/reversal"]
    assert trial_balance_of(books, "2026-02")[(USAGE, "USD")][3] == "-4.83"  # the nights' alone


@pytest.mark.slow  # over a second here: not in make test-fast
def test_an_accrual_with_reverse_on_reverses_itself_on_that_date(books, policy, tmp_path):
    accrual = [row.replace("MJ-1", "ACC-1") + "2026-02-01" for row in RECOGNISE]
    import_journals(books, policy, journal_file(tmp_path, accrual), "alice")
    approve(books, policy, "ACC-1", "bob")  # Feb 1's night is published: reversed at once
    assert {row["ref"]: (row["status"], row["prepared_by"], row["approved_by"],
                         row["reversed_by"]) for row in list_journals(books)} == {
        "ACC-1": ("reversed", "alice", "bob", "system (reverse_on of ACC-1)"),
        "ACC-1/reversal": ("approved", "system (reverse_on of ACC-1)", "bob", "")}
    assert trial_balance_of(books, "2026-02")[(USAGE, "USD")][3] == "-4.83"


@pytest.fixture
def january_books(sqlite_store, policy, tmp_path):
    """Every night of January 2026 posted: the month can close."""
    write_scenario(tmp_path / "landing")
    post_days(sqlite_store, policy, tmp_path, date(2026, 1, 1), date(2026, 1, 31))
    return sqlite_store


@pytest.mark.slow  # over a second here: not in make test-fast
def test_a_draft_holds_the_close_and_the_approved_journal_is_in_the_package(
        january_books, policy, tmp_path):
    # And one in JPY on P-J (1000 JPY at 0.0067, 662 still deferred): its deferred line
    # takes the lot's functional value, round(0.67 x 662) - round(0.67 x 562) = 0.67 USD.
    import_journals(january_books, policy, journal_file(tmp_path, [
        *RECOGNISE, f"MJ-J,2026-01-31,{DEFERRED},JPY,100,,earned,B,P-J,",
        f"MJ-J,2026-01-31,{USAGE},JPY,,100,earned,B,,"]), "alice",
        prepared_at=datetime(2026, 2, 1, 9, 30))
    with pytest.raises(CloseRefusedError, match=r"2026-01 has 2 manual journal\(s\) not "
                       r"approved: MJ-1 \(2026-01-31, prepared by alice\), MJ-J"):
        close(january_books, policy, tmp_path, "2026-01")
    approve(january_books, policy, "MJ-1", "bob", datetime(2026, 2, 1, 10, 0, 0, 123456))
    approve(january_books, policy, "MJ-J", "bob")
    package = close(january_books, policy, tmp_path, "2026-01").package
    with (package / "manual_journals.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["ref"], row["status"], row["prepared_by"], row["approved_by"], row["account"],
             row["currency"], row["debit"], row["credit"], row["functional_debit"],
             row["functional_credit"], row["purchase_id"], row["source_row"])
            for row in rows] == [
        ("MJ-1", "approved", "alice", "bob", DEFERRED, "USD", "2.00", "0.00", "2.00", "0.00",
         "P-B", "1"),
        ("MJ-1", "approved", "alice", "bob", USAGE, "USD", "0.00", "2.00", "0.00", "2.00", "",
         "2"),
        ("MJ-J", "approved", "alice", "bob", DEFERRED, "JPY", "100", "0", "0.67", "0.00", "P-J",
         "3"),
        ("MJ-J", "approved", "alice", "bob", USAGE, "JPY", "0", "100", "0.00", "0.67", "", "4")]
    # Times in ISO 8601 with their offset, as every instant the package writes.
    assert {(row["prepared_at"], row["approved_at"]) for row in rows[:2]} == {
        ("2026-02-01T09:30:00+00:00", "2026-02-01T10:00:00.123456+00:00")}
    assert all(row["approved_at"].endswith("+00:00") for row in rows)
    with (package / "rollforward.csv").open(newline="") as handle:
        usd = next(row for row in csv.DictReader(handle) if row["currency"] == "USD")
    assert (usd["manual_journals"], usd["closing"]) == ("-2.00", "18.33")
    assert verify_package(package) == []
    # verify-package adds the lines up again: a journal that no longer balances is named.
    forged = (package / "manual_journals.csv").read_text().replace(",2.00,0.00,", ",2.01,0.00,")
    (package / "manual_journals.csv").write_text(forged)
    assert "manual_journals.csv journal MJ-1 currency USD: debits and credits differ by 0.01" in (
        verify_package(package))


@pytest.mark.slow  # over a second here: not in make test-fast
@pytest.mark.parametrize("target", ["netsuite", "quickbooks", "xero", "sap", "csv"])
def test_an_approved_journal_is_in_every_export_format(january_books, policy, tmp_path, target):
    import_journals(january_books, policy, journal_file(tmp_path, RECOGNISE), "alice")
    approve(january_books, policy, "MJ-1", "bob")
    close(january_books, policy, tmp_path, "2026-01")
    functional = "USD" if target == "xero" else None
    paths = export_period(january_books, "2026-01", target, tmp_path / f"{target}.csv",
                          policy.exports, functional_currency=functional, ledger_currency="USD")
    mapping = list(csv.DictReader(mapping_path(tmp_path / f"{target}.csv").open(newline="")))
    manual = [row for row in mapping if "/manual" in row["journal_key"]]
    assert [row["journal_key"] for row in manual] == ["2026-01-31/manual/USD"]
    exported = "".join(path.read_text() for path in paths)
    assert manual[0]["external_id"] in exported


@pytest.mark.slow  # over a second here: not in make test-fast
def test_the_beancount_ledger_with_a_manual_journal_loads_and_balances(
        january_books, policy, tmp_path):
    import_journals(january_books, policy, journal_file(tmp_path, RECOGNISE), "alice")
    approve(january_books, policy, "MJ-1", "bob")
    close(january_books, policy, tmp_path, "2026-01")
    entries, errors, _ = loader.load_file(str(write_beancount(
        january_books, "2026-01", tmp_path / "books.beancount")))
    assert errors == []
    manual = [entry for entry in entries if isinstance(entry, data.Transaction)
              and entry.meta.get("journal") == "CB-2026-01-31-manual-USD"]
    assert sorted((posting.account, str(posting.units)) for posting in manual[0].postings) == [
        (USAGE, "-2.00 USD"), (DEFERRED, "2.00 USD")]


@pytest.mark.slow  # over a second here: not in make test-fast
def test_the_command_line_imports_refuses_self_approval_and_lists(tmp_path):
    write_scenario(tmp_path / "landing")
    creditbooks("init", cwd=tmp_path)
    creditbooks("nightly", "--from", "2026-01-30", "--to", "2026-01-31", cwd=tmp_path)
    journal_file(tmp_path, RECOGNISE)
    bad = journal_file(tmp_path, [RECOGNISE[0]], "bad.csv")
    assert bad.exists()
    refused_import = creditbooks("journal", "import", "bad.csv", "--by", "alice", cwd=tmp_path,
                                 check=False)
    assert refused_import.returncode == 1
    assert refused_import.stderr.splitlines() == [  # each problem, then one line
        "bad.csv row 1, column debit: journal MJ-1 has one line; a journal has at least two",
        "bad.csv row 1, column debit: journal MJ-1 does not balance in USD: debits 2.00, "
        "credits 0.00",
        "creditbooks: error: 2 problem(s); nothing was imported, the first: bad.csv row 1, "
        "column debit: journal MJ-1 has one line; a journal has at least two"]
    imported = creditbooks("journal", "import", "journals.csv", "--by", "alice", cwd=tmp_path)
    assert imported.stdout.strip() == "imported 1 journal(s) as drafts: MJ-1"
    selfish = creditbooks("journal", "approve", "MJ-1", "--by", "alice", cwd=tmp_path,
                          check=False)
    assert selfish.returncode == 1 and "prepared by alice; another person approves" in (
        selfish.stderr)
    creditbooks("journal", "approve", "MJ-1", "--by", "bob", cwd=tmp_path)
    listed = json.loads(creditbooks("journal", "list", "--period", "2026-01", "--status",
                                    "approved", "--format", "json", cwd=tmp_path).stdout)
    assert [(row["ref"], row["prepared_by"], row["approved_by"], row["entry_id"])
            for row in listed] == [("MJ-1", "alice", "bob", "manual/MJ-1")]
    trace = json.loads(creditbooks("trace", "entry", "manual/MJ-1", "--format", "json",
                                   cwd=tmp_path).stdout)
    assert trace["manual_journal"]["approved_by"] == "bob"


@pytest.mark.slow  # over a second here: not in make test-fast
def test_an_accrual_reverses_itself_when_the_night_of_its_date_publishes(books, policy, tmp_path):
    accrual = [row.replace("MJ-1", "ACC-2") + "2026-02-02" for row in RECOGNISE]
    import_journals(books, policy, journal_file(tmp_path, accrual), "alice")
    approve(books, policy, "ACC-2", "bob")  # Feb 2's night has not run: not reversed yet
    assert {row["ref"]: row["status"] for row in list_journals(books)} == {"ACC-2": "approved"}
    run_nights(books, policy, tmp_path, [date(2026, 2, 2)])  # a quiet day, published
    journals = {row["ref"]: row for row in list_journals(books)}
    assert (journals["ACC-2"]["status"], journals["ACC-2/reversal"]["business_date"],
            journals["ACC-2/reversal"]["approved_by"]) == ("reversed", "2026-02-02", "bob")
    assert trial_balance_of(books, "2026-02")[(USAGE, "USD")][3] == "-4.83"
    with books.transaction() as connection:
        assert verify_chain(connection).holds


@pytest.mark.slow  # over a second here: not in make test-fast
def test_a_draft_accepted_with_a_reason_is_listed_as_a_draft_in_the_package(
        january_books, policy, tmp_path):
    import_journals(january_books, policy, journal_file(tmp_path, RECOGNISE), "alice")
    outcome = close(january_books, policy, tmp_path, "2026-01", accept_exceptions=True,
                    reason="MJ-1 is for February's review")
    with (outcome.package / "manual_journals.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["ref"], row["status"], row["approved_by"], row["entry_id"],
             row["functional_debit"]) for row in rows] == [
        ("MJ-1", "draft", "", "", ""), ("MJ-1", "draft", "", "", "")]
    assert trial_balance_of(january_books, "2026-01")[(USAGE, "USD")][3] == "-0.67"
    assert verify_package(outcome.package) == []


@pytest.mark.slow  # over a second here: not in make test-fast
def test_a_lot_written_down_by_a_journal_burns_refunds_and_expires_at_its_new_value(
        sqlite_store, policy, tmp_path):
    """After March 1 P-W has used 20 credits (200.00) and holds 370.00 for 37 credits. A
    journal writes 100.00 off it (a price concession repaid outside the books), so it carries
    270.00 for those 37 credits, and from then on value to date = 200.00 +
    round(27000 x consumed since / 37) minor units, half even:
      March 2  refund 3:  round(27000 x 3 / 37) = 2189              -> refund 21.89
               use 10:    round(27000 x 13 / 37) = 9486; - 2189     -> usage 72.97
      March 3  use 7:     round(27000 x 20 / 37) = 14595; - 9486    -> usage 51.09
               expiry:    570.00 - 100.00 - 200.00 - 145.95         -> breakage 124.05
    Usage 324.06 + refunds 21.89 + breakage 124.05 = 470.00 = 570.00 - 100.00. Valued from
    the original amount, the refund would be 30.00, the usage 100.00 and 70.00, and the
    breakage 170.00, leaving the lot 100.00 in debit in the GL."""
    written_down_lot(sqlite_store, policy, tmp_path, date(2026, 3, 3))
    with sqlite_store.transaction() as connection:
        refunded = connection.execute(text(
            "SELECT refund_id, value_minor FROM refunds")).fetchall()
        used = connection.execute(text(
            "SELECT business_date, SUM(value_minor) FROM burn_slices WHERE purchase_id = 'P-W' "
            "GROUP BY business_date ORDER BY business_date")).fetchall()
        expired = connection.execute(text(
            "SELECT business_date, credits_micro, value_minor, destination FROM lot_expiries"
        )).fetchall()
        ledger_balance = connection.execute(text(
            "SELECT SUM(amount_minor), SUM(functional_minor) FROM journal_lines "
            "WHERE account = :account AND purchase_id = 'P-W'"), {"account": DEFERRED}).one()
    assert refunded == [("RF-W", 2189)]
    assert [(str(day)[:10], value) for day, value in used] == [
        ("2026-03-01", 20000), ("2026-03-02", 7297), ("2026-03-03", 5109)]
    assert [(str(day)[:10], credits, value, destination)
            for day, credits, value, destination in expired] == [
        ("2026-03-03", 17_000_000, 12405, "breakage")]
    assert tuple(ledger_balance) == (0, 0)
    balance = next(row for row in lot_balances(sqlite_store) if row["purchase_id"] == "P-W")
    assert (balance["value_remaining"], balance["credits_remaining"]) == ("0.00", "0")
    # Its balances row foots: amount + manual journals = what went out + what is left.
    figures = {column: Decimal(balance[column]) for column in (
        "amount", "manual_journals", "usage_revenue", "refunded", "breakage", "escheat",
        "value_remaining")}
    assert figures == {"amount": Decimal("570.00"), "manual_journals": Decimal("-100.00"),
                       "usage_revenue": Decimal("324.06"), "refunded": Decimal("21.89"),
                       "breakage": Decimal("124.05"), "escheat": Decimal("0.00"),
                       "value_remaining": Decimal("0.00")}
    assert figures["amount"] + figures["manual_journals"] == sum(
        figures[column] for column in ("usage_revenue", "refunded", "breakage", "escheat",
                                       "value_remaining"))
    assert [(result.control, result.detail) for result in run_controls(sqlite_store, DEFERRED)
            if not result.passed] == []
    assert trial_balance_of(sqlite_store, "2026-03")[("Income:Revenue:Breakage", "USD")][3] == (
        "-124.05")


# The same journals as CSV_JOURNALS, written as beancount: RECOGNISE, and an accrual on
# P-J in JPY whose customer and lot sit on the transaction and posting metadata.
CSV_JOURNALS = [*RECOGNISE, f"ACC-J,2026-01-31,{DEFERRED},JPY,100,,accrued,B,P-J,2026-02-02",
                f"ACC-J,2026-01-31,{USAGE},JPY,,100,accrued,B,,2026-02-02"]
BEANCOUNT_JOURNALS = f"""option "title" "January's manual journals"
2026-01-01 open {DEFERRED}

2026-01-31 * "earned off-meter"
  ref: "MJ-1"
  customer_id: "A"
  {DEFERRED}  2.00 USD
    purchase_id: "P-B"
  {USAGE}  -2.00 USD

2026-01-31 * "accrued"
  ref: "ACC-J"
  customer_id: "B"
  reverse_on: 2026-02-02
  {DEFERRED}  100 JPY
    purchase_id: "P-J"
  {USAGE}  -100 JPY
"""


def _drafts(store, policy, path: Path):
    """What an import of the file would store: the journals, and the lines but for the
    row each came from (a CSV row number, a beancount line)."""
    from creditbooks.journals import ledger_facts
    from intake.beancount_journals import read_journal_file
    from rules.manual_journals import check_journals

    source = read_journal_file(path)
    with store.transaction() as connection:
        checked = check_journals(source.rows, source.file_name, policy,
                                 ledger_facts(connection, source.rows["purchase_id"]),
                                 source.naming)
    assert checked.problems == ()
    lines = checked.lines.drop(columns="source_row").astype(object)
    return (checked.journals.to_dict("records"),
            lines.where(lines.notna(), None).to_dict("records"))


@pytest.mark.slow  # over a second here: not in make test-fast
def test_the_same_journals_from_csv_and_from_beancount_are_the_same_drafts(
        books, policy, tmp_path):
    csv_file = journal_file(tmp_path, CSV_JOURNALS)
    beancount_file = tmp_path / "journals.beancount"
    beancount_file.write_text(BEANCOUNT_JOURNALS)
    from_csv, from_beancount = _drafts(books, policy, csv_file), _drafts(books, policy,
                                                                        beancount_file)
    assert from_beancount == from_csv
    assert [(line["ref"], line["account"], line["amount_minor"], line["functional_minor"],
             line["deferred_change_minor"], line["customer_id"], line["purchase_id"],
             line["memo"]) for line in from_beancount[1]] == [
        ("ACC-J", DEFERRED, 100, 67, -100, "B", "P-J", "accrued"),
        ("ACC-J", USAGE, -100, -67, 0, "B", None, "accrued"),
        ("MJ-1", DEFERRED, 200, 200, -200, "A", "P-B", "earned off-meter"),
        ("MJ-1", USAGE, -200, -200, 0, "A", None, "earned off-meter")]
    assert [(journal["ref"], str(journal["reverse_on"])) for journal in from_beancount[0]] == [
        ("ACC-J", "2026-02-02"), ("MJ-1", "None")]
    # Stored from the CSV file, the beancount file's journals are the same ones: unchanged.
    assert import_journals(books, policy, csv_file, "alice").imported == ("ACC-J", "MJ-1")
    again = import_journals(books, policy, beancount_file, "alice")
    assert (again.imported, again.unchanged) == ((), ("ACC-J", "MJ-1"))


def test_an_unbalanced_beancount_transaction_is_refused_naming_its_line(books, policy, tmp_path):
    path = tmp_path / "journals.beancount"
    path.write_text(BEANCOUNT_JOURNALS.replace("-2.00 USD", "-1.99 USD"))
    assert refused(books, policy, path) == (
        "journals.beancount line 4, amount: journal MJ-1 does not balance in USD: debits 2.00, "
        "credits 1.99",)


def test_a_beancount_file_names_the_line_of_each_posting_it_cannot_take(books, policy,
                                                                          tmp_path):
    path = tmp_path / "journals.beancount"
    path.write_text(BEANCOUNT_JOURNALS.replace(
        f"2026-01-01 open {DEFERRED}", f"2026-01-01 balance {DEFERRED} 0 USD").replace(
        "-2.00 USD", "").replace('  ref: "ACC-J"\n', "").replace("-100 JPY", "-1 USD @ 100 JPY"))
    assert refused(books, policy, path) == (
        "journals.beancount line 2: a balance directive is not a journal; the file holds "
        "transactions (open, close and commodity are passed over)",
        "journals.beancount line 9, amount: is missing; write every posting's amount (nothing "
        "is filled in)",
        'journals.beancount line 11, metadata ref: a transaction names its journal: add ref: '
        '"MJ-1" under it',
        "journals.beancount line 16, amount: a cost or price is not taken; a line is one amount "
        "in one currency")


@pytest.mark.slow  # over a second here: not in make test-fast
def test_a_change_to_a_lot_that_has_expired_since_the_import_is_refused_at_approval(
        sqlite_store, policy, tmp_path):
    write_scenario(tmp_path / "landing")
    run_nights(sqlite_store, policy, tmp_path, NIGHTS[:2])
    write_down_p_a = [f"MJ-A,2026-01-31,{DEFERRED},USD,0.10,,concession,A,P-A,",
                      "MJ-A,2026-01-31,Assets:Cash:Clearing,USD,,0.10,concession,A,,"]
    import_journals(sqlite_store, policy, journal_file(tmp_path, write_down_p_a), "alice")
    # A promotional lot carries no deferred revenue to change: refused at import.
    promotional = [row.replace("MJ-A", "MJ-G").replace("P-A", "P-G") for row in write_down_p_a]
    with pytest.raises(ManualJournalError) as error:
        import_journals(sqlite_store, policy, journal_file(tmp_path, promotional, "g.csv"),
                        "alice")
    assert error.value.problems == (
        "g.csv row 1, column debit: journal MJ-G changes lot P-G, a promotional lot: free "
        "credits carry no deferred revenue to change",)
    run_nights(sqlite_store, policy, tmp_path, NIGHTS[2:])  # P-A expires on February 1
    with pytest.raises(ManualJournalError) as error:
        approve(sqlite_store, policy, "MJ-A", "bob")
    assert error.value.problems == (
        "journal MJ-A changes lot P-A, which has no credits left (used, refunded or expired): "
        "post the correction to revenue instead",)
    assert {row["ref"]: row["status"] for row in list_journals(sqlite_store)} == {
        "MJ-A": "draft"}
