"""PostgreSQL keeps the ledger's promises itself: append-only journal, balance, locks, races."""

from __future__ import annotations

import threading
import time
from datetime import date, datetime

import psycopg
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError, ProgrammingError

import creditbooks.night.run as night_run
from creditbooks.close import CloseRefusedError, close_period
from creditbooks.night.run import BatchConflictError, run_night
from ledger.chain import verify_chain
from ledger.journal import JournalBatch
from ledger.locks import locked_periods, record_period_event
from ledger.store import Store, post_journal
from tests.support.cli import creditbooks
from tests.support.nights import post_days
from tests.support.scenario import NIGHTS, run_nights, write_scenario

pytestmark = pytest.mark.postgres


@pytest.fixture
def books(postgres_server, policy, tmp_path):
    store = Store(postgres_server.create_database())
    store.initialise()
    write_scenario(tmp_path / "landing")
    run_nights(store, policy, tmp_path)
    yield store
    store.dispose()


def _refused(store: Store, sql: str) -> str:
    with pytest.raises(DBAPIError) as refusal, store.transaction() as connection:
        connection.execute(text(sql))
    return str(refusal.value.orig)


@pytest.mark.parametrize("statement", [
    "UPDATE journal_lines SET amount_minor = amount_minor + 1 WHERE line_number = 1",
    "DELETE FROM journal_lines",
    "UPDATE journal_entries SET period = '2026-03'",
    "DELETE FROM journal_seals",
    "TRUNCATE journal_entries CASCADE",
    "UPDATE journal_seals SET chain_hash = repeat('0', 64)",
])
def test_the_journal_refuses_updates_and_deletes_even_from_its_owner(books, statement):
    before = books.read_frame("SELECT SUM(amount_minor) AS total, COUNT(*) AS n FROM journal_lines")
    assert "the journal is append-only" in _refused(books, statement)
    after = books.read_frame("SELECT SUM(amount_minor) AS total, COUNT(*) AS n FROM journal_lines")
    assert after.equals(before) and int(after["n"][0]) > 0


def _insert_entry(period: str, lines: list[tuple[str, int]], entry_id: str = "manual/1") -> str:
    values = ", ".join(f"('{entry_id}', {number}, '{account}', 'USD', {amount}, {amount})"
                       for number, (account, amount) in enumerate(lines, start=1))
    return f"""
        INSERT INTO journal_entries (entry_id, kind, business_date, period, customer_id,
                                     source_ref, batch_id, policy_version, recorded_at)
        VALUES ('{entry_id}', 'usage', '2026-01-31', '{period}', 'A', 'manual',
                'nightly-2026-01-31', 'manual', now());
        INSERT INTO journal_lines (entry_id, line_number, account, currency, amount_minor,
                                   functional_minor)
        VALUES {values};
    """


def test_an_unbalanced_entry_is_refused_at_commit(books):
    message = _refused(books, _insert_entry("2026-02", [
        ("Liabilities:DeferredRevenue:Credits", 100), ("Income:Usage", -99)]))
    assert "entry manual/1 does not balance in USD (off by 1 minor units)" in message
    # Balanced lines written in two statements are fine: the check waits for the commit.
    with books.transaction() as connection:
        for statement in _insert_entry("2026-02", [
                ("Liabilities:DeferredRevenue:Credits", 100), ("Income:Usage", -100)]).split(";"):
            if statement.strip():
                connection.execute(text(statement))
    assert books.read_frame("SELECT COUNT(*) AS n FROM journal_lines "
                            "WHERE entry_id = 'manual/1'")["n"][0] == 2


def test_lines_without_their_entry_or_unbalancing_a_posted_entry_are_refused(books):
    lines = """INSERT INTO journal_lines (entry_id, line_number, account, currency, amount_minor,
                                        functional_minor) VALUES """
    orphan = _refused(books, lines + "('nowhere/1', 1, 'Assets:Cash', 'USD', 5, 5), "
                                     "('nowhere/1', 2, 'Income:Usage', 'USD', -5, -5)")
    assert "a line refers to entry nowhere/1, which does not exist" in orphan
    posted = books.read_frame("SELECT entry_id FROM journal_entries ORDER BY entry_id LIMIT 1")
    entry_id = posted["entry_id"][0]
    added = _refused(books, lines + f"('{entry_id}', 99, 'Assets:Cash', 'USD', 7, 7)")
    assert f"entry {entry_id} does not balance in USD (off by 7 minor units)" in added


def test_an_entry_needs_its_batch_and_a_batch_with_entries_stays(books):
    ghost = _insert_entry("2026-02", [("Liabilities:DeferredRevenue:Credits", 100),
                                      ("Income:Usage", -100)]).replace("nightly-2026-01-31",
                                                                       "nightly-1999-01-01")
    assert "an entry refers to batch nightly-1999-01-01, which does not exist" in _refused(
        books, ghost)
    posted = "nightly-2026-01-31"
    for statement in (f"DELETE FROM batches WHERE batch_id = '{posted}'",
                      f"UPDATE batches SET batch_id = 'renamed' WHERE batch_id = '{posted}'"):
        assert (f"batch {posted} has journal entries; it cannot be removed or renamed"
                in _refused(books, statement))
    # Its other columns are the nightly's to update, as before.
    with books.transaction() as connection:
        connection.execute(text("UPDATE batches SET status = status, batch_id = batch_id "
                                f"WHERE batch_id = '{posted}'"))
    assert books.read_frame("SELECT COUNT(*) AS n FROM journal_entries "
                            f"WHERE batch_id = '{posted}'")["n"][0] > 0


def test_a_copy_refused_in_a_later_block_posts_nothing(books, monkeypatch):
    """The lines go in blocks from a writer thread; the server refusing the third block
    (a lower-case currency) still refuses the whole posting."""
    import pandas as pd

    monkeypatch.setattr("ledger.store.COPY_BLOCK_ROWS", 2)
    ids = [f"manual/{number}" for number in range(3)]
    entries = pd.DataFrame({"entry_id": ids, "kind": "usage", "business_date": date(2026, 2, 2),
                            "period": "2026-02", "customer_id": "A", "source_ref": "manual"})
    lines = pd.DataFrame({"entry_id": [i for i in ids for _ in (1, 2)],
                          "line_number": [1, 2] * 3,
                          "account": ["Liabilities:DeferredRevenue:Credits", "Income:Usage"] * 3,
                          "currency": ["USD"] * 4 + ["usd"] * 2, "amount_minor": [5, -5] * 3,
                          "functional_minor": [5, -5] * 3, "meter": None, "purchase_id": None})
    before = books.read_frame("SELECT COUNT(*) AS n FROM journal_lines")["n"][0]
    with pytest.raises(psycopg.errors.CheckViolation, match="currency"), \
            books.transaction() as connection:
        post_journal(connection, JournalBatch(entries, lines), {
            "batch_id": "nightly-2026-01-31", "policy_version": "t",
            "recorded_at": datetime(2026, 2, 3), "period": "2026-02"})
    assert books.read_frame("SELECT COUNT(*) AS n FROM journal_lines")["n"][0] == before
    assert books.read_frame("SELECT COUNT(*) AS n FROM journal_entries "
                            "WHERE entry_id LIKE 'manual/%'")["n"][0] == 0


def test_an_entry_in_a_locked_period_is_refused_at_commit(books):
    with books.transaction() as connection:
        record_period_event(connection, "2026-01", "close", 1, "test", "", False, "x" * 64,
                            date(2026, 2, 1))
    message = _refused(books, _insert_entry("2026-01", [
        ("Liabilities:DeferredRevenue:Credits", 100), ("Income:Usage", -100)]))
    assert "period 2026-01 is locked; entry manual/1 cannot be posted into it" in message
    # Nor can the lock itself be taken back behind the ledger's back.
    assert "the journal is append-only" in _refused(books, "DELETE FROM period_events")


def test_the_application_role_may_post_but_never_change_the_journal(postgres_server, policy,
                                                                    tmp_path):
    url = postgres_server.create_database()
    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql"),
                         autocommit=True) as admin:
        admin.execute("DO $$ BEGIN CREATE ROLE creditbooks_app LOGIN; "
                      "EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    creditbooks("--db", url, "init", "--application-role", "creditbooks_app", cwd=tmp_path)
    application = Store(url.replace("postgres@", "creditbooks_app@"))
    write_scenario(tmp_path / "landing")
    run_nights(application, policy, tmp_path)
    posted = application.read_frame("SELECT COUNT(*) AS n FROM journal_lines")["n"][0]
    assert posted > 0
    for statement in ("UPDATE journal_lines SET amount_minor = 1", "DELETE FROM journal_entries",
                      "DELETE FROM period_events"):
        with pytest.raises(ProgrammingError, match="permission denied"), \
                application.transaction() as connection:
            connection.execute(text(statement))
    assert application.read_frame("SELECT COUNT(*) AS n FROM journal_lines")["n"][0] == posted
    application.dispose()


def test_two_runs_of_the_same_night_at_once_post_it_exactly_once(postgres_server, policy, tmp_path,
                                                                  monkeypatch):
    url = postgres_server.create_database()
    Store(url).initialise()
    write_scenario(tmp_path / "landing")
    both_started = threading.Barrier(2, timeout=30)
    real_lock = night_run.share_posting_lock

    def start_together(connection):
        both_started.wait()  # both runs are inside their transactions before either writes
        real_lock(connection)

    monkeypatch.setattr(night_run, "share_posting_lock", start_together)
    outcomes: list = []

    def night():
        store = Store(url)
        try:
            outcomes.append(run_night(store, policy, tmp_path / "landing", tmp_path / "archive",
                                      NIGHTS[0]).status)
        except BatchConflictError as error:
            outcomes.append(str(error))
        finally:
            store.dispose()

    runs = [threading.Thread(target=night) for _ in range(2)]
    for run in runs:
        run.start()
    for run in runs:
        run.join(timeout=120)
    assert len(outcomes) == 2 and outcomes.count("posted") == 1
    refused = next(outcome for outcome in outcomes if outcome != "posted")
    assert refused.startswith("business date 2026-01-30 could not be posted: another run wrote it "
                              "first")
    store = Store(url)
    entries = store.read_frame("SELECT COUNT(*) AS n FROM journal_entries")["n"][0]
    batches = store.read_frame("SELECT status, entry_count FROM batches")
    assert batches.to_dict("records") == [{"status": "posted", "entry_count": entries}]
    with store.engine.connect() as connection:
        assert verify_chain(connection).holds
    store.dispose()


def test_a_posting_racing_a_close_of_its_period_stops_the_close_cleanly(postgres_server, policy,
                                                                         tmp_path):
    """A posting in flight holds the close off; when it lands, the close sees it and refuses."""
    books = Store(postgres_server.create_database())
    books.initialise()
    write_scenario(tmp_path / "landing")
    post_days(books, policy, tmp_path, date(2026, 1, 1), date(2026, 1, 31))
    late_entry = JournalBatch(*_late_entry_frames())
    engine = create_engine(books.url)
    posting = engine.connect()
    transaction = posting.begin()
    post_journal(posting, late_entry, {"batch_id": "nightly-2026-01-31", "policy_version": "t",
                                       "recorded_at": date(2026, 2, 3), "period": "2026-01"})
    outcome: list = []

    def close():
        try:
            outcome.append(close_period(books, policy, "2026-01", tmp_path / "close",
                                        tmp_path / "archive", accept_exceptions=True,
                                        reason="test").status)
        except CloseRefusedError as error:
            outcome.append(str(error))

    closing = threading.Thread(target=close)
    closing.start()
    time.sleep(3)
    assert closing.is_alive() and not outcome  # the close waits for the posting in flight
    transaction.commit()
    posting.close()
    closing.join(timeout=120)
    assert outcome == ["period 2026-01 not locked: entries were posted into it while it was "
                       "closing; run the close again"]
    engine.dispose()
    # Run again, the close reads the late entry, a hand-made one that moves deferred revenue
    # past its lot's record: the package does not tie out, so it is never the locked one.
    with pytest.raises(CloseRefusedError, match="the package does not tie out"):
        close_period(books, policy, "2026-01", tmp_path / "close", tmp_path / "archive",
                     accept_exceptions=True, reason="test")
    assert not (tmp_path / "close" / "2026-01" / "v1").exists()
    with books.engine.connect() as connection:
        assert "2026-01" not in locked_periods(connection)
    books.dispose()


def _late_entry_frames():
    import pandas as pd

    entries = pd.DataFrame([{"entry_id": "manual/late", "kind": "usage",
                             "business_date": date(2026, 1, 31), "period": "2026-01",
                             "customer_id": "A", "source_ref": "manual"}])
    lines = pd.DataFrame([
        {"entry_id": "manual/late", "line_number": 1, "account": "Liabilities:DeferredRevenue:Credits",
         "currency": "USD", "amount_minor": 1, "functional_minor": 1, "meter": None,
         "purchase_id": "P-B"},
        {"entry_id": "manual/late", "line_number": 2, "account": "Income:Revenue:Usage", "currency": "USD",
         "amount_minor": -1, "functional_minor": -1, "meter": "api", "purchase_id": "P-B"}])
    return entries, lines


@pytest.mark.parametrize("block_rows", [50_000, 3])
def test_the_copy_bulk_path_round_trips_awkward_text_nulls_and_instants(postgres_server,
                                                                         monkeypatch, block_rows):
    """COPY text escapes backslash, tab, newline and carriage return, and only a real
    missing value becomes NULL (the text \\N stays text); in one block or in several."""
    import pandas as pd

    from ledger.store import _copy_frame

    monkeypatch.setattr("ledger.store.COPY_BLOCK_ROWS", block_rows)

    store = Store(postgres_server.create_database())
    awkward = ["tab\there", "line\nbreak", "back\\slash", "\\N", "carriage\rreturn", "", None]
    frame = pd.DataFrame({
        "label": awkward,
        "amount": [1, -2, 3, None, 5, 6, 7],
        "at": pd.to_datetime(["2026-03-01T23:59:59.123456+02:00"] * 7, utc=True),
        "day": [date(2026, 3, 1)] * 6 + [None],
    })
    with store.transaction() as connection:
        connection.execute(text("CREATE TABLE copied (label text, amount bigint, "
                                "at timestamp, day date)"))
        _copy_frame(connection, "copied", frame)
    back = store.read_frame("SELECT label, amount, at, day FROM copied")
    assert back["label"].tolist() == awkward
    assert back["amount"].tolist()[:3] == [1, -2, 3] and pd.isna(back["amount"][3])
    assert {str(value) for value in back["at"]} == {"2026-03-01 21:59:59.123456"}
    assert back["day"].tolist() == [date(2026, 3, 1)] * 6 + [None]
    store.dispose()
