"""A close reads the books once: remembered reads, and statements summed from one pass
over the journal lines, on the hand-worked scenario (January complete, see test_close).

January's deferred revenue closes at USD 20.33 and JPY 662.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import date, datetime
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import event, text

from ledger.digest import journal_digest
from ledger.journal import JournalBatch
from ledger.store import ReadOnceStore, post_journal
from reports.close_reports import balance_sheet, income_statement
from reports.line_totals import line_totals
from reports.statements import RollforwardRow, rollforward, trial_balance
from tests.support.landing import write_document
from tests.support.nights import post_days
from tests.support.scenario import usage

pytestmark = pytest.mark.slow  # closes whole months


def test_a_read_asked_for_again_is_answered_from_the_first_answer(january):
    sql = "SELECT purchase_id, credits_micro FROM lots WHERE kind = :kind ORDER BY purchase_id"
    fresh = january.read_frame(sql, kind="paid")
    books = ReadOnceStore(january)
    statements: list[str] = []
    event.listen(january.engine, "before_cursor_execute",
                 lambda connection, cursor, statement, *rest: statements.append(statement))
    first = books.read_frame(sql, kind="paid")
    first["credits_micro"] = 0  # a report changing its own copy
    again = books.read_frame(sql, kind="paid")
    promotional = books.read_frame(sql, kind="promotional")
    assert len([s for s in statements if "FROM lots" in s]) == 2  # paid once, promotional once
    assert again.equals(fresh) and again["credits_micro"].min() > 0
    assert list(promotional["purchase_id"]) == ["P-G"]
    assert "P-G" not in set(again["purchase_id"])


def test_statements_from_a_later_periods_line_totals_are_the_periods_own(january, policy,
                                                                        tmp_path):
    deferred = policy.accounts.deferred_revenue
    alone = {"trial balance": trial_balance(january, "2026-01"),
             "rollforward": rollforward(january, "2026-01", deferred),
             "functional": trial_balance(january, "2026-01", functional_currency="USD")}
    assert [(row.currency, row.opening_minor, row.closing_minor) for row in alone["rollforward"]] \
        == [("JPY", 0, 662), ("USD", 0, 2033)]
    write_document(tmp_path / "landing", "2026-02-01", "usage",
                   [usage("U5", "A", "2026-02-01T08:00:00Z", "api", "0.50")])
    post_days(january, policy, tmp_path, date(2026, 2, 1), date(2026, 2, 28))
    totals = line_totals(january, "2026-02")
    assert set(totals["period"]) == {"2026-01", "2026-02"}
    assert trial_balance(january, "2026-01", totals=totals) == alone["trial balance"]
    assert rollforward(january, "2026-01", deferred, totals=totals) == alone["rollforward"]
    assert trial_balance(january, "2026-01", "USD", totals=totals) == alone["functional"]
    february = {row.currency: row for row in rollforward(january, "2026-02", deferred,
                                                         totals=totals)}
    # A's half credit comes out of P-A (3 credits for 1.00, 2 used = 0.67): cumulatively
    # round(100 x 2.5 / 3) = 83, so 0.16; its last half credit expires at noon: 0.17.
    assert february["USD"] == RollforwardRow("USD", 2033, 0, 16, 17, 0, 0, 2000)


def test_a_quiet_period_has_empty_statements_and_a_zero_functional_rollforward(january, policy):
    assert trial_balance(january, "2025-12") == []
    assert income_statement(january, "2025-12") == []
    assert balance_sheet(january, "2025-12") == []
    assert rollforward(january, "2025-12", policy.accounts.deferred_revenue) == []
    assert rollforward(january, "2025-12", policy.accounts.deferred_revenue,
                       functional_currency="USD") == [RollforwardRow("USD", 0, 0, 0, 0, 0, 0, 0)]


def test_the_digest_hashes_each_lines_documented_text(january):
    """The database builds each line's text; it must be exactly ledger.row_text's: fields
    joined by \\x1f, a missing value as empty text, a newline at the end."""
    awkward = "tab\there, line\nbreak, back\\slash, \\N, ünïcode"
    entries = pd.DataFrame([{"entry_id": "manual/awkward", "kind": "usage",
                             "business_date": date(2026, 1, 31), "period": "2026-01",
                             "customer_id": awkward, "source_ref": "manual"}])
    lines = pd.DataFrame([
        {"entry_id": "manual/awkward", "line_number": 1, "account": "Liabilities:DeferredRevenue:Credits",
         "currency": "USD", "amount_minor": 1234567890123, "functional_minor": 1234567890123,
         "meter": "\\N", "purchase_id": None},
        {"entry_id": "manual/awkward", "line_number": 2, "account": "Income:Usage", "currency": "USD",
         "amount_minor": -1234567890123, "functional_minor": -1234567890123, "meter": None,
         "purchase_id": "P-A"}])
    with january.transaction() as connection:
        post_journal(connection, JournalBatch(entries, lines), {
            "batch_id": "nightly-2026-01-31", "policy_version": "t",
            "recorded_at": datetime(2026, 2, 1), "period": "2026-01"})
    with january.engine.connect() as connection:
        rows = connection.execute(text("""
            SELECT e.entry_id, e.kind, e.business_date, e.period, e.customer_id, e.source_ref,
                   l.line_number, l.account, l.currency, l.amount_minor, l.meter, l.purchase_id
            FROM journal_entries e JOIN journal_lines l ON l.entry_id = e.entry_id
            WHERE e.period <= '2026-01' ORDER BY e.entry_id, l.line_number""")).all()
        digest, count = journal_digest(connection, "2026-01")
    expected = "".join("\x1f".join("" if value is None else str(value) for value in row) + "\n"
                       for row in rows)
    assert f"manual/awkward\x1fusage\x1f2026-01-31\x1f2026-01\x1f{awkward}\x1fmanual\x1f2\x1f" \
           "Income:Usage\x1fUSD\x1f-1234567890123\x1f\x1fP-A\n" in expected
    assert (digest, count) == (hashlib.sha256(expected.encode()).hexdigest(), len(rows))


def test_a_large_period_is_closed_with_the_journal_read_in_a_process_of_its_own(
        january, policy, tmp_path, monkeypatch):
    """The same package whichever way the close runs: reports worked out one after the
    other, here, equal the ones the close built side by side with the journal's two
    whole reads (line totals, digest) in a spawned process."""
    import creditbooks.close.executors as executors
    from creditbooks.close import close_period
    from reports.catalogue import report_builders
    from reports.outputs.package import write_csv

    archive = tmp_path / "archive"
    one_by_one = {name: build() for name, build in
                  report_builders(january, policy, "2026-01", archive).items()}
    with january.engine.connect() as connection:
        digest, lines = journal_digest(connection, "2026-01")
    monkeypatch.setattr(executors, "OWN_PROCESS_FROM_ENTRIES", 1)
    with executors.journal_reader(1) as reader:
        assert isinstance(reader, ProcessPoolExecutor)
        assert reader.submit(os.getppid).result() == os.getpid()
    outcome = close_period(january, policy, "2026-01", tmp_path / "close", archive)
    package = tmp_path / "close" / "2026-01" / "v1"
    assert outcome.package == package
    for name, rows in one_by_one.items():
        # An empty report keeps its header: the package's own, which the rows cannot give.
        header = (package / f"{name}.csv").read_text(encoding="utf-8").splitlines()[0]
        write_csv(tmp_path / "expected.csv", rows, tuple(header.split(",")) if header else ())
        assert (package / f"{name}.csv").read_bytes() == (tmp_path / "expected.csv").read_bytes()
    manifest = json.loads((package / "manifest.json").read_text())
    assert (manifest["journal_digest"], manifest["journal_lines"]) == (digest, lines)
    assert one_by_one["trial_balance"] and one_by_one["rollforward"]  # January is not empty


def test_the_closes_own_process_ends_when_the_close_is_killed(tmp_path):
    script = tmp_path / "killed_close.py"
    script.write_text(
        "import os, time\n"
        "import creditbooks.close.executors as executors\n"
        "if __name__ == '__main__':\n"
        "    reader = executors.journal_reader(executors.OWN_PROCESS_FROM_ENTRIES)\n"
        "    print(reader.submit(os.getpid).result(), flush=True)\n"
        "    reader.submit(time.sleep, 600)\n"
        "    time.sleep(0.5)\n"
        "    os._exit(9)  # as a kill would: no clean-up runs\n")
    killed = subprocess.run([sys.executable, str(script)], cwd=Path(__file__).parents[1],
                            capture_output=True, text=True, timeout=120)
    assert killed.returncode == 9, killed.stderr
    child = int(killed.stdout.split()[0])
    deadline = time.monotonic() + 10
    while _running(child) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _running(child)


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.mark.parametrize("own_process_from_entries", [10**9, 1], ids=["thread", "process"])
def test_an_entry_that_does_not_balance_refuses_the_close_whichever_way_it_is_read(
        january, policy, tmp_path, monkeypatch, own_process_from_entries):
    """The journal check reads every line elsewhere (a thread, or the close's own process
    for a large period); either way its finding reaches the refusal, and no package is
    written. PostgreSQL refuses such an entry at commit (tests/test_database_guards.py)."""
    import creditbooks.close.executors as executors
    from creditbooks.close import CloseRefusedError, close_period

    if january.is_postgresql:
        pytest.skip("PostgreSQL refuses an unbalanced entry at commit")
    monkeypatch.setattr(executors, "OWN_PROCESS_FROM_ENTRIES", own_process_from_entries)
    with january.transaction() as connection:
        connection.execute(text("""
            INSERT INTO journal_entries (entry_id, kind, business_date, period, customer_id,
                                         source_ref, batch_id, policy_version, recorded_at)
            SELECT 'manual/1', 'usage', business_date, '2026-01', 'A', 'manual', batch_id,
                   'manual', :recorded_at FROM batches WHERE business_date = '2026-01-31'
        """), {"recorded_at": datetime(2026, 2, 1)})
        connection.execute(text("""
            INSERT INTO journal_lines (entry_id, line_number, account, currency,
                                       amount_minor, functional_minor)
            VALUES ('manual/1', 1, 'Income:Usage', 'USD', -99, -99),
                   ('manual/1', 2, 'Assets:Cash', 'USD', 100, 100)
        """))
    with pytest.raises(CloseRefusedError,
                       match=r"entry manual/1 does not balance in USD"):
        close_period(january, policy, "2026-01", tmp_path / "close", tmp_path / "archive")
    assert not (tmp_path / "close").exists()
