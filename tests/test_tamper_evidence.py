"""Tamper evidence anchored outside the chain: what an auditor tried on a copy of the
ledger, each caught and named (issue 26).

The books: the hand-worked scenario, every night of January and 2026-02-01 posted and
January closed, all through the command line (so the anchors are written as in
production). A forger with the SQLite file drops the append-only triggers first.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import text

from creditbooks.close import CloseRefusedError, close_period
from creditbooks.night.run import run_night
from ledger.chain import chain_head, seal_batch
from ledger.evidence import verify_evidence
from ledger.record_chain import (
    record_chain_head,
    seal_unsealed_partitions_and_policy_versions,
    seal_unsealed_records,
)
from ledger.schema import Retention, table_names
from ledger.store import Store
from ledger.upgrade import upgrade_ledger
from tests.support.cli import creditbooks, verify_rows
from tests.support.nights import post_days
from tests.support.scenario import (
    NIGHTS,
    run_nights,
    scenario_books_on_the_command_line,
    write_scenario,
)
from tests.support.tamper import forge, reseal_record_chain

FIXTURES = Path(__file__).parent / "fixtures" / "v0.1.0"
ANCHORS = "creditbooks-anchors.jsonl"
APPEND_ONLY = table_names(Retention.APPEND_ONLY)


def reseal_journal(database: Path) -> None:
    """The journal chain sealed again, batch by batch, with the project's own function."""
    forge(database, "DELETE FROM journal_seals")
    store = Store(f"sqlite:///{database}")
    with store.transaction() as connection:
        for (batch_id,) in connection.execute(text(
                "SELECT batch_id FROM batches WHERE status <> 'open' ORDER BY business_date")):
            seal_batch(connection, batch_id)
    store.dispose()


def reseal_records(database: Path) -> None:
    """The record chain sealed again from the (altered) tables, with the project's own
    function, after the close's recorded digest is made to match the altered journal."""
    from ledger.digest import journal_digest
    from ledger.guards import install_sqlite_guards

    forge(database, "DELETE FROM record_seals", put_guards_back=False)
    store = Store(f"sqlite:///{database}")
    with store.transaction() as connection:
        digest, _ = journal_digest(connection, "2026-01")
        connection.execute(text("UPDATE period_events SET journal_digest = :digest "
                                "WHERE period = '2026-01'"), {"digest": digest})
        seal_unsealed_records(connection)
        seal_unsealed_partitions_and_policy_versions(connection)
        install_sqlite_guards(connection)  # put back, as a forger hiding the edit would
    store.dispose()


@pytest.fixture(scope="module")
def closed_books(tmp_path_factory) -> Path:
    root = scenario_books_on_the_command_line(tmp_path_factory.mktemp("closed-books"),
                                              "2026-01-01", "2026-02-01")
    creditbooks("close", "--period", "2026-01", cwd=root)
    # An ERP export issues its journals' ids into the ledger (append-only too).
    creditbooks("export", "--period", "2026-01", "--format", "csv", "--out",
                str(root / "journals-2026-01.csv"), cwd=root)
    return root


@pytest.fixture
def books(closed_books, tmp_path) -> Path:
    shutil.copytree(closed_books, tmp_path / "books")
    return tmp_path / "books"


def failed_verify_after(books: Path, statement: str) -> dict[str, dict]:
    """verify's rows once `statement` has forged the books' ledger; verify must fail."""
    forge(books / "creditbooks.db", statement)
    code, rows = verify_rows(books)
    assert code == 1
    return rows


def everything(books: Path) -> tuple[str, ...]:
    return ("--close-dir", str(books / "close"), "--anchors", str(books / ANCHORS))


@pytest.mark.slow  # over a second here: not in make test-fast
def test_an_untouched_ledger_verifies_against_its_manifest_and_every_anchor(books):
    anchors = [json.loads(line) for line in (books / ANCHORS).read_text().splitlines()]
    # One anchor at every publish (32 nights) and one at the close, in that order.
    assert [anchor["event"] for anchor in anchors] == (
        [f"publish 2026-01-{day:02d}" for day in range(1, 32)] + ["publish 2026-02-01",
                                                                   "close 2026-01 v1"])
    database = Store(f"sqlite:///{books / 'creditbooks.db'}")
    with database.engine.connect() as connection:
        head, records = chain_head(connection), record_chain_head(connection)
    database.dispose()
    # The close's anchor holds both heads after the close: the policy version, 32 batches
    # with their 4 archive partitions, and the close sealed.
    assert anchors[-1]["journal_chain"] == {"sequence": head.sequence, "hash": head.chain_hash}
    assert anchors[-1]["record_chain"] == {"sequence": 38, "hash": records.chain_hash}
    assert anchors[-1]["entries_sealed"] == head.sequence
    manifest = json.loads((books / "close" / "2026-01" / "v1" / "manifest.json").read_text())
    assert manifest["anchor"]["record_chain"]["sequence"] == 37  # before its own lock
    code, rows = verify_rows(books, *everything(books))
    assert code == 0, rows
    assert rows["anchors"]["detail"] == "33 anchors, each at the recomputed chains' links"
    assert rows["close manifests"]["passed"] and rows["period events"]["passed"]


@pytest.mark.slow  # over a second here: not in make test-fast
def test_the_reseal_attack_is_named_by_the_closed_period_the_manifest_and_the_anchors(books):
    database = books / "creditbooks.db"
    # 5.00 of breakage moved to usage revenue in closed January: the entry still balances.
    forge(database, "UPDATE journal_lines SET account = 'Income:Revenue:Usage' "
                    "WHERE entry_id LIKE 'breakage/%' AND account LIKE 'Income:%'")
    reseal_journal(database)
    said = creditbooks("close", "--period", "2026-01", cwd=books)
    assert said.stdout.strip() == "2026-01 is already closed (version 1); nothing changed"

    code, rows = verify_rows(books)
    assert code == 1 and rows["journal hash chain"]["passed"]  # re-sealed: it holds
    assert rows["period events"]["detail"].startswith(
        "period 2026-01 is closed (version 1, event id 1) with journal digest ")
    assert rows["period events"]["detail"].endswith("entries of a closed period were changed")
    assert not rows["record chain"]["passed"]  # its seals hold the journal's old links

    # The forger goes on: the close's digest made to match, the record chain re-sealed.
    reseal_records(database)
    assert database_checks_failing(database) == []  # the database alone can no longer tell
    code, rows = verify_rows(books, "--close-dir", str(books / "close"))
    manifest = books / "close" / "2026-01" / "v1" / "manifest.json"
    assert code == 1
    assert rows["close manifests"]["detail"].startswith(
        f"close manifest {manifest} says journal_digest ")
    code, rows = verify_rows(books, "--anchors", str(books / ANCHORS))
    assert code == 1
    assert rows["anchors"]["detail"].startswith("anchor line 1 (publish 2026-01-01 at ")
    assert rows["anchors"]["detail"].endswith("was rewritten and re-sealed")
    # Even with the close's digest put back, the manifest's journal head is not the chain's.
    forge(database, "UPDATE period_events SET journal_digest = '"
          + json.loads(manifest.read_text())["journal_digest"] + "'")
    reseal_record_chain(database)
    code, rows = verify_rows(books, "--close-dir", str(books / "close"))
    head = json.loads(manifest.read_text())["chain_head"]
    assert code == 1
    assert rows["close manifests"]["detail"].startswith(
        f"close manifest {manifest} records journal chain head {head['sequence']} "
        f"{head['hash']}, but the recomputed journal chain has ")
    assert rows["close manifests"]["detail"].endswith("was rewritten and re-sealed")


def database_checks_failing(database: Path) -> list[str]:
    """The controls of verify's database checks that fail (nothing outside the ledger)."""
    store = Store(f"sqlite:///{database}")
    with store.engine.connect() as connection:
        checks = verify_evidence(connection)
    store.dispose()
    return [check.control for check in checks if not check.passed]


@pytest.mark.slow  # over a second here: not in make test-fast
def test_plain_verify_checks_the_default_anchor_file_and_close_directory(books):
    untouched = creditbooks("verify", cwd=books)
    assert untouched.stdout.splitlines()[:2] == [
        f"close packages: checked {Path('close')}/ (the default close directory)",
        f"anchors: checked {ANCHORS} (the default anchor file)"]
    database = books / "creditbooks.db"
    forge(database, "UPDATE journal_lines SET account = 'Income:Revenue:Usage' "
                    "WHERE entry_id LIKE 'breakage/%' AND account LIKE 'Income:%'")
    reseal_journal(database)
    reseal_records(database)
    assert database_checks_failing(database) == []
    shutil.rmtree(books / "close")  # only the anchor file can tell now
    code, rows = verify_rows(books)  # no options
    assert code == 1
    assert [name for name, row in rows.items() if not row["passed"]] == ["anchors"]
    assert rows["anchors"]["control"] == f"anchors in {ANCHORS}"
    assert rows["anchors"]["detail"].startswith("anchor line 1 (publish 2026-01-01 at ")
    assert rows["anchors"]["detail"].endswith("was rewritten and re-sealed")
    said = creditbooks("verify", cwd=books, check=False).stdout.splitlines()
    assert said[:2] == [
        f"close packages: not checked, no {Path('close')}/ here (the default close directory): "
        "give --close-dir DIR",
        f"anchors: checked {ANCHORS} (the default anchor file)"]
    (books / ANCHORS).rename(books / "elsewhere.jsonl")
    code, rows = verify_rows(books)
    assert code == 0 and "anchors" not in rows
    assert creditbooks("verify", cwd=books).stdout.splitlines()[1] == (
        f"anchors: not checked, no {ANCHORS} (the default anchor file): give --anchors FILE")


@pytest.mark.slow  # over a second here: not in make test-fast
def test_an_edited_period_event_is_named(books):
    database = books / "creditbooks.db"
    rows = failed_verify_after(books, "UPDATE period_events SET actor = 'cfo'")
    assert rows["record chain"]["detail"] == (
        "period event id 1 (record seal 38) was altered: it no longer matches the hash sealed "
        "when it was recorded")
    reseal_record_chain(database)  # and re-sealed: the manifest still says who closed it
    code, rows = verify_rows(books, "--close-dir", str(books / "close"))
    closed_by = json.loads((books / "close" / "2026-01" / "v1" / "manifest.json").read_text())[
        "closed_by"]
    assert code == 1 and closed_by != "cfo"
    assert rows["close manifests"]["detail"].endswith(
        f"says closed_by {closed_by}, but period event id 1 says actor cfo: the event was altered")


@pytest.mark.slow  # over a second here: not in make test-fast
def test_deleted_period_events_are_named_and_a_second_close_never_replaces_the_package(books):
    database = books / "creditbooks.db"
    package = books / "close" / "2026-01" / "v1"
    before = {path.name: path.read_bytes() for path in package.iterdir()}
    rows = failed_verify_after(books, "DELETE FROM period_events")
    assert rows["record chain"]["detail"] == (
        "period event id 1 (record seal 38) is missing from period_events")

    again = creditbooks("close", "--period", "2026-01", cwd=books, check=False)
    assert again.returncode == 1
    assert again.stderr.strip() == (
        f"creditbooks: error: period 2026-01 not locked: close package "
        f"{Path('close') / '2026-01' / 'v1'} already exists and is never overwritten; the "
        "ledger records no close of that version (a removed period event, or a package copied "
        "in): run creditbooks verify --close-dir to see which")
    assert {path.name: path.read_bytes() for path in package.iterdir()} == before
    assert sorted(path.name for path in package.parent.iterdir()) == ["v1"]

    # With the record seals gone as well, the manifest still names the close.
    reseal_record_chain(database)
    code, rows = verify_rows(books, "--close-dir", str(books / "close"))
    assert code == 1
    assert rows["close manifests"]["detail"] == (
        f"close manifest {package / 'manifest.json'} the ledger records no close of 2026-01 "
        "version 1: its period event was removed or altered")


@pytest.mark.slow  # over a second here: not in make test-fast
def test_a_deleted_quarantine_row_is_named(books):
    database = books / "creditbooks.db"
    connection = sqlite3.connect(database)
    quarantined = connection.execute("SELECT batch_id, COUNT(*) FROM quarantine "
                                     "GROUP BY batch_id").fetchall()
    connection.close()
    assert quarantined == [("nightly-2026-02-01", 2)]  # U8's negative credits, U2's conflict
    rows = failed_verify_after(books, "DELETE FROM quarantine WHERE kind = 'rejected'")
    assert rows["record chain"]["detail"] == (
        "batch nightly-2026-02-01 (record seal 36) was altered: its row, its files' checksums "
        "and counts or its quarantine rows no longer match the hash sealed when it published")


@pytest.mark.slow  # over a second here: not in make test-fast
def test_file_counts_changed_consistently_are_named(books):
    # Still rows read = accepted + duplicates + rejected: the controls cannot tell.
    rows = failed_verify_after(books, "UPDATE batch_files SET rows_read = rows_read + 1, "
                                      "rows_rejected = rows_rejected + 1 "
                                      "WHERE batch_id = 'nightly-2026-01-31' "
                                      "AND document = 'usage'")
    # And what was written outside the ledger (plain verify checks it): both hold record
    # chain heads past that batch's seal.
    assert [name for name, row in rows.items() if not row["passed"]] == [
        "record chain", "close manifests", "anchors"]
    assert rows["record chain"]["detail"].startswith(
        "batch nightly-2026-01-31 (record seal 34) was altered: ")


@pytest.mark.slow  # over a second here: not in make test-fast
def test_a_version_directory_already_there_stops_the_close(sqlite_store, policy, tmp_path):
    write_scenario(tmp_path / "landing")
    post_days(sqlite_store, policy, tmp_path, date(2026, 1, 1), date(2026, 1, 31))
    squatter = tmp_path / "close" / "2026-01" / "v1"
    squatter.mkdir(parents=True)
    (squatter / "note.txt").write_text("not a package")
    with pytest.raises(CloseRefusedError, match="already exists and is never overwritten"):
        close_period(sqlite_store, policy, "2026-01", tmp_path / "close", tmp_path / "archive")
    assert (squatter / "note.txt").read_text() == "not a package"
    with sqlite_store.engine.connect() as connection:
        assert connection.execute(text("SELECT COUNT(*) FROM period_events")).scalar_one() == 0


@pytest.mark.parametrize("table", APPEND_ONLY)
def test_sqlite_refuses_update_and_delete_on_the_journal_and_period_events(books, table):
    connection = sqlite3.connect(books / "creditbooks.db")
    try:
        rows = connection.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
        assert rows > 0
        column = connection.execute(f"SELECT * FROM {table}").description[1][0]
        for statement in (f"UPDATE {table} SET {column} = {column}", f"DELETE FROM {table}"):
            with pytest.raises(sqlite3.IntegrityError, match=(
                    f"creditbooks: {statement.split()[0]} on {table} is refused: the journal is "
                    "append-only")):
                connection.execute(statement)
        assert connection.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] == rows
    finally:
        connection.close()


# A column of each append-only table that is in none of its keys, and a forged value for it.
FORGED_COLUMN = {"journal_entries": "source_ref", "journal_lines": "meter",
                 "journal_seals": "chain_hash", "record_seals": "chain_hash",
                 "period_events": "actor", "policy_versions": "policy_text",
                 "exported_journal_ids": "issued_at"}


@pytest.mark.parametrize("table", APPEND_ONLY)
def test_sqlite_refuses_replace_and_upsert_on_every_append_only_table(books, table):
    connection = sqlite3.connect(books / "creditbooks.db")
    try:
        before = connection.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
        assert before, table
        cursor = connection.execute(f"SELECT * FROM {table} ORDER BY 1, 2 LIMIT 1")
        columns = [description[0] for description in cursor.description]
        forged = dict(zip(columns, cursor.fetchone(), strict=True))
        forged[FORGED_COLUMN[table]] = "forged"
        listed, marks = ", ".join(columns), ", ".join("?" for _ in columns)
        for statement in (f"INSERT OR REPLACE INTO {table} ({listed}) VALUES ({marks})",
                          f"REPLACE INTO {table} ({listed}) VALUES ({marks})"):
            with pytest.raises(sqlite3.IntegrityError, match=(
                    f"creditbooks: INSERT over a row of {table} already there \\(REPLACE\\) is "
                    "refused: the journal is append-only")):
                connection.execute(statement, list(forged.values()))
        # An upsert's DO UPDATE is an UPDATE: refused by the UPDATE trigger, or before it.
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            connection.execute(
                f"INSERT INTO {table} ({listed}) VALUES ({marks}) ON CONFLICT DO UPDATE SET "
                f"{FORGED_COLUMN[table]} = excluded.{FORGED_COLUMN[table]}",
                list(forged.values()))
        connection.commit()
        assert connection.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall() == before
    finally:
        connection.close()


def test_sqlite_refuses_a_replace_on_a_unique_key_that_is_not_the_primary_key(books):
    # A seal moved to a new sequence: REPLACE would delete the entry's seal in the way.
    connection = sqlite3.connect(books / "creditbooks.db")
    try:
        before = connection.execute("SELECT * FROM journal_seals ORDER BY sequence").fetchall()
        sequence, entry_id, batch_id, content_hash, _ = before[0]
        with pytest.raises(sqlite3.IntegrityError, match="INSERT over a row of journal_seals"):
            connection.execute("REPLACE INTO journal_seals VALUES (?, ?, ?, ?, 'forged')",
                               (before[-1][0] + 1, entry_id, batch_id, content_hash))
        connection.commit()
        assert connection.execute("SELECT * FROM journal_seals ORDER BY sequence").fetchall() == (
            before)
    finally:
        connection.close()


def test_an_upgraded_v010_ledger_keeps_its_chain_head_has_the_triggers_and_verifies(tmp_path):
    shutil.copyfile(FIXTURES / "ledger.sqlite", tmp_path / "ledger.sqlite")
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    upgrade_ledger(url, archive_root=FIXTURES / "archive")
    recorded = json.loads((FIXTURES / "books.json").read_text())["chain_head"]
    store = Store(url)
    with store.engine.connect() as connection:
        head = chain_head(connection)
        checks = verify_evidence(connection)
        sealed = connection.execute(text(
            "SELECT record_kind, COUNT(*) FROM record_seals GROUP BY record_kind")).fetchall()
        batches = connection.execute(text(
            "SELECT COUNT(*) FROM batches WHERE status <> 'open'")).scalar_one()
    store.dispose()
    assert (head.sequence, head.chain_hash) == (recorded["sequence"], recorded["chain_hash"])
    assert all(check.passed for check in checks), checks
    assert dict(sealed)["batch"] == batches
    connection = sqlite3.connect(tmp_path / "ledger.sqlite")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        connection.execute("DELETE FROM journal_lines")
    connection.close()


@pytest.mark.postgres
def test_on_postgresql_records_are_sealed_and_an_owner_edit_is_named(postgres_server, policy,
                                                                     tmp_path):
    store = Store(postgres_server.create_database())
    store.initialise()
    write_scenario(tmp_path / "landing")
    run_nights(store, policy, tmp_path)
    with store.engine.connect() as connection:
        assert all(check.passed for check in verify_evidence(connection))
    with pytest.raises(Exception, match="the journal is append-only"), \
            store.transaction() as connection:
        connection.execute(text("DELETE FROM record_seals"))
    with store.transaction() as connection:  # batch files are not append-only there
        connection.execute(text("UPDATE batch_files SET file_name = 'other.csv' "
                                "WHERE batch_id = 'nightly-2026-01-31' AND document = 'usage'"))
    with store.engine.connect() as connection:
        record_chain = verify_evidence(connection)[1]
    store.dispose()
    # Seal 5: the policy version, the first night's batch and its two partitions come first.
    assert record_chain.detail.startswith("batch nightly-2026-01-31 (record seal 5) was altered")


@pytest.mark.slow  # over a second here: not in make test-fast
def test_a_close_stopped_after_its_lock_puts_its_package_in_place_when_run_again(
        sqlite_store, policy, tmp_path, monkeypatch):
    import reports.outputs.package

    write_scenario(tmp_path / "landing")
    post_days(sqlite_store, policy, tmp_path, date(2026, 1, 1), date(2026, 1, 31))

    def killed(partial, directory):
        raise KeyboardInterrupt("stopped between the lock's commit and the rename")

    with monkeypatch.context() as patch:
        patch.setattr(reports.outputs.package, "move_package_into_place", killed)
        with pytest.raises(KeyboardInterrupt):
            close_period(sqlite_store, policy, "2026-01", tmp_path / "close", tmp_path / "archive")
    (partial,) = (tmp_path / "close" / "2026-01").iterdir()
    assert partial.name.startswith("v1.partial-")
    again = close_period(sqlite_store, policy, "2026-01", tmp_path / "close", tmp_path / "archive")
    assert (again.status, again.version) == ("already closed", 1)
    assert sorted(path.name for path in (tmp_path / "close" / "2026-01").iterdir()) == ["v1"]
    with sqlite_store.engine.connect() as connection:
        checks = verify_evidence(connection, tmp_path / "close")
    assert [check.passed for check in checks] == [True] * 5, checks  # and the guards


@pytest.mark.slow  # over a second here: not in make test-fast
def test_a_reopened_and_closed_again_period_verifies_with_both_packages(sqlite_store, policy,
                                                                       tmp_path):
    from creditbooks.close import reopen_period

    write_scenario(tmp_path / "landing")
    post_days(sqlite_store, policy, tmp_path, date(2026, 1, 1), date(2026, 1, 31))
    anchors = tmp_path / "anchors.jsonl"
    close_period(sqlite_store, policy, "2026-01", tmp_path / "close", tmp_path / "archive",
                 anchors=anchors)
    reopen_period(sqlite_store, "2026-01", "a late refund", anchors=anchors, policy=policy,
                  approved_by="cfo")
    post_days(sqlite_store, policy, tmp_path, date(2026, 2, 1), date(2026, 2, 1))
    again = close_period(sqlite_store, policy, "2026-01", tmp_path / "close",
                         tmp_path / "archive", anchors=anchors)
    assert again.version == 2
    events = [json.loads(line)["event"] for line in anchors.read_text().splitlines()]
    assert events == ["close 2026-01 v1", "reopen 2026-01", "close 2026-01 v2"]
    with sqlite_store.engine.connect() as connection:
        checks = verify_evidence(connection, tmp_path / "close", anchors)
    assert [check.passed for check in checks] == [True] * 6, checks  # and the guards
    assert checks[4].detail.startswith("2 manifests")  # after the guards' check


@pytest.mark.slow  # over a second here: not in make test-fast
def test_a_close_after_its_events_were_deleted_and_its_package_moved_is_refused_in_one_line(
        books):
    forge(books / "creditbooks.db", "DELETE FROM period_events")
    (books / "close" / "2026-01" / "v1").rename(books / "moved-v1")
    again = creditbooks("close", "--period", "2026-01", cwd=books, check=False)
    assert again.returncode == 1
    assert again.stderr == (
        "creditbooks: error: period event id 1 is already sealed (record seal 38): the "
        "period_events table was altered behind the ledger; run creditbooks verify to see "
        "how, nothing was recorded\n")
    assert not (books / "close" / "2026-01" / "v1").exists()


def test_a_night_run_by_run_night_itself_writes_its_publish_anchor(sqlite_store, policy,
                                                                    tmp_path, monkeypatch):
    # The demo and the bench call run_night, not the command line: their nights are
    # anchored too, beside the archive; a night already published adds no line.
    monkeypatch.delenv("CREDITBOOKS_ANCHORS", raising=False)
    write_scenario(tmp_path / "landing")
    for night in (*NIGHTS[:2], NIGHTS[1]):
        run_night(sqlite_store, policy, tmp_path / "landing", tmp_path / "archive", night)
    anchors = [json.loads(line) for line in (tmp_path / ANCHORS).read_text().splitlines()]
    assert [anchor["event"] for anchor in anchors] == ["publish 2026-01-30", "publish 2026-01-31"]
    with sqlite_store.engine.connect() as connection:
        journal, records = chain_head(connection), record_chain_head(connection)
    assert anchors[-1]["journal_chain"] == {"sequence": journal.sequence,
                                            "hash": journal.chain_hash}
    assert anchors[-1]["record_chain"] == {"sequence": records.sequence,
                                           "hash": records.chain_hash}


@pytest.mark.slow  # over a second here: not in make test-fast
def test_a_rewritten_policy_text_is_named_by_its_version(books):
    # SQLite now refuses REPLACE with the triggers in place (see the test above), so the
    # forger drops them first. The version the books recorded is the proof of the text.
    forge(books / "creditbooks.db",
          "REPLACE INTO policy_versions SELECT version, replace(policy_text, "
          "'late_window_days = 31', 'late_window_days = 90'), first_used_by, "
          "first_used_for, first_used_at FROM policy_versions")
    connection = sqlite3.connect(books / "creditbooks.db")
    (version,) = connection.execute("SELECT version FROM policy_versions").fetchone()
    connection.close()
    code, rows = verify_rows(books)
    assert code == 1
    assert not rows["kept policy texts = their versions"]["passed"]
    assert rows["kept policy texts = their versions"]["detail"].startswith(
        f"the text kept as policy version {version} hashes to ")
    assert rows["kept policy texts = their versions"]["detail"].endswith(": it was rewritten")


@pytest.mark.slow  # over a second here: not in make test-fast
def test_anchors_of_another_ledger_id_are_named_not_skipped(books):
    # The forger gives the ledger a new id and appends one anchor of it: the file's other
    # lines, written under the old id, must not be skipped.
    forge(books / "creditbooks.db", "UPDATE ledger_identity SET ledger_id = 'feedfacecafe'")
    code, rows = verify_rows(books, "--anchors", str(books / ANCHORS))
    assert code == 1
    detail = rows["anchors"]["detail"]
    assert detail.startswith("anchor line 1 (publish 2026-01-01 at ")
    assert detail.endswith("but this ledger is feedfacecafe: the anchor file is another "
                           "ledger's, or this ledger's id was changed")


@pytest.mark.slow  # over a second here: not in make test-fast
def test_a_package_moved_or_given_an_extra_file_is_named(books):
    package = books / "close" / "2026-01" / "v1"
    (package / "trial_balance_restated.csv").write_text("account,amount\n")
    code, rows = verify_rows(books, "--close-dir", str(books / "close"))
    assert code == 1
    assert rows["close manifests"]["detail"] == (
        f"close manifest {package / 'manifest.json'} lists no file "
        "trial_balance_restated.csv, which is in the package: it was added")
    (package / "trial_balance_restated.csv").unlink()
    moved = package.rename(package.parent / "v7")
    code, rows = verify_rows(books, "--close-dir", str(books / "close"))
    assert code == 1
    assert rows["close manifests"]["detail"] == (
        f"close manifest {moved / 'manifest.json'} is of 2026-01 version 1, but it is in "
        "2026-01/v7: the package was moved")
