"""Backup and restore (issue 26): a backup taken while a night runs restores to a ledger
that `verify` passes and that holds whole nights only.

The books are the hand-worked scenario (tests/support/scenario.py): nights 2026-01-30,
2026-01-31 and 2026-02-01. The backup is taken while 2026-01-31 is running, with a stage
of that night paused inside its transaction until the backup has finished, so the two
certainly overlap. `creditbooks backup` and `creditbooks restore` run as processes of
their own, as an operator runs them.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import threading
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import text

import creditbooks.night.stages as night_stages
import creditbooks.pipeline as pipeline
from creditbooks.night.run import run_night
from ledger.chain import chain_head
from ledger.domain import Stage, night_tasks
from ledger.schema_version import migration_revisions
from ledger.store import Store
from tests.support.cli import creditbooks
from tests.support.nights import replace_stage
from tests.support.scenario import trial_balance_of, write_scenario
from tests.support.tamper import forge

FIRST, RUNNING, LAST = date(2026, 1, 30), date(2026, 1, 31), date(2026, 2, 1)
PERIODS = ("2026-01", "2026-02")
FIXTURES = Path(__file__).parent / "fixtures" / "v0.1.0"


def books(store: Store) -> dict:
    """What must be the same: each period's trial balance and the journal chain's head."""
    with store.engine.connect() as connection:
        head = chain_head(connection)
    return {"trial_balances": {period: trial_balance_of(store, period) for period in PERIODS},
            "chain_head": (head.sequence, head.chain_hash)}


def batches(store: Store) -> dict[str, str]:
    """{business date: status} of every batch."""
    with store.engine.connect() as connection:
        return {str(row[0])[:10]: row[1] for row in connection.execute(text(
            "SELECT business_date, status FROM batches ORDER BY business_date"))}


def store_at(url: str) -> Store:
    store = Store(url)
    store.initialise()
    return store


def backed_up_after_the_first_night(policy, tmp_path: Path, url: str | None = None,
                                    backup: str = "backup.db") -> Store:
    """A new ledger at `url` (else SQLite tmp_path / ledger.db) with the scenario's first
    night posted (landing and archive under tmp_path), backed up to tmp_path / backup; the
    ledger."""
    write_scenario(tmp_path / "landing")
    original = store_at(url or f"sqlite:///{tmp_path / 'ledger.db'}")
    run_night(original, policy, tmp_path / "landing", tmp_path / "archive", FIRST)
    creditbooks("--db", original.url, "backup", "--to", backup, cwd=tmp_path)
    return original


def pause_inside(monkeypatch, stage: Stage) -> tuple[threading.Event, threading.Event]:
    """Make `stage` do its work and then wait, its transaction still open, until released.
    Returns (reached, release)."""
    reached, release = threading.Event(), threading.Event()
    original = night_stages.STAGE_RUNNERS[stage]

    def paused(connection, night, *shard):
        result = original(connection, night, *shard)
        reached.set()
        assert release.wait(300), "the test never released the paused night"
        return result

    replace_stage(monkeypatch, stage, paused)
    return reached, release


def in_thread(work) -> tuple[threading.Thread, list]:
    """Run `work` in a thread; what it raises is kept for the test to re-raise."""
    errors: list = []

    def run():
        try:
            work()
        except BaseException as error:  # re-raised in the test's own thread
            errors.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, errors


def backup_while_paused(monkeypatch, stage: Stage, night, url: str, backup: Path, cwd: Path):
    """Run `night` in a thread, pause it inside `stage`'s transaction, take the backup with
    the command line meanwhile, then let the night finish; the backup command's output."""
    runners = night_stages.STAGE_RUNNERS
    reached, release = pause_inside(monkeypatch, stage)
    thread, errors = in_thread(night)
    try:
        assert reached.wait(300), f"the night never reached its {stage} stage"
        taken = creditbooks("--db", url, "backup", "--to", str(backup), cwd=cwd)
    finally:
        release.set()
        thread.join(300)
    monkeypatch.setattr(night_stages, "STAGE_RUNNERS", runners)  # unpaused after
    if errors:
        raise errors[0]
    return taken.stdout


# A forger's edit the journal chain catches: one entry's two lines moved by 1 cent, balanced.
FORGED_LINES = ("UPDATE journal_lines SET amount_minor = amount_minor + 1 WHERE entry_id = "
                "(SELECT MIN(entry_id) FROM journal_lines) AND line_number = 1",
                "UPDATE journal_lines SET amount_minor = amount_minor - 1 WHERE entry_id = "
                "(SELECT MIN(entry_id) FROM journal_lines) AND line_number = 2")


def safety_copy_named(output: str) -> Path:
    """The safety copy a restore names: 'the ledger replaced is kept in PATH (restore ...'."""
    (line,) = [line for line in output.splitlines()
               if line.startswith("the ledger replaced is kept in ")]
    return Path(line.removeprefix("the ledger replaced is kept in ").split(" (restore it")[0])


def restore(url: str, backup: Path, cwd: Path, *options: str, check: bool = True):
    return creditbooks("--db", url, "restore", "--from", str(backup), "--format", "csv",
                       *options, cwd=cwd, check=check)


def verify(url: str, cwd: Path, *options: str):
    return creditbooks("--db", url, "verify", "--format", "csv", *options, cwd=cwd, check=False)


@pytest.mark.slow  # over a second here: not in make test-fast
def test_a_sqlite_backup_taken_while_a_night_runs_holds_whole_nights_only(
        policy, tmp_path, monkeypatch):
    landing, archive, anchors = tmp_path / "landing", tmp_path / "archive", tmp_path / "anchors"
    write_scenario(landing)
    original = store_at(f"sqlite:///{tmp_path / 'ledger.db'}")

    def night(day):
        run_night(original, policy, landing, archive, day, anchors=anchors)

    night(FIRST)
    after_first = books(original)
    backup = tmp_path / "backup.db"
    taken = backup_while_paused(monkeypatch, Stage.EXPIRE, lambda: night(RUNNING),
                                original.url, backup, tmp_path)
    night(LAST)
    assert batches(original) == {"2026-01-30": "posted", "2026-01-31": "posted",
                                 "2026-02-01": "posted"}
    assert f"chain head {after_first['chain_head'][0]} {after_first['chain_head'][1]}" in taken
    assert "nights published: 1, the last 2026-01-30" in taken

    restored_url = f"sqlite:///{tmp_path / 'restored.db'}"
    restored_output = restore(restored_url, backup, tmp_path, "--archive", str(archive)).stdout
    assert "nights published: 1, the last 2026-01-30" in restored_output
    assert "archive partitions = ledger's record,True" in restored_output
    restored = Store(restored_url)
    # Whole nights only: the running night is absent, not half there.
    assert batches(restored) == {"2026-01-30": "posted"}
    with restored.engine.connect() as connection:
        assert connection.execute(text(
            "SELECT COUNT(*) FROM journal_entries WHERE business_date >= '2026-01-31'")).scalar() == 0

    reference = store_at(f"sqlite:///{tmp_path / 'reference.db'}")
    # In a directory of its own: its anchors go beside its archive (one ledger a file).
    run_night(reference, policy, landing, tmp_path / "reference" / "archive", FIRST)
    assert books(restored) == books(reference) == after_first
    assert books(restored) != books(original)

    behind = verify(restored_url, tmp_path, "--anchors", str(anchors))
    assert behind.returncode == 1
    assert "the ledger is behind its anchors (restored from a backup?" in behind.stderr

    for day in (RUNNING, LAST):  # the operator runs the nights after the backup again
        run_night(restored, policy, landing, archive, day)
    assert books(restored) == books(original)
    caught_up = verify(restored_url, tmp_path, "--anchors", str(anchors), "--archive", str(archive))
    assert caught_up.returncode == 0, caught_up.stderr
    for store in (original, restored, reference):
        store.dispose()


@pytest.mark.slow  # over a second here: not in make test-fast
def test_restore_never_overwrites_a_ledger_unless_told(policy, tmp_path):
    landing, archive = tmp_path / "landing", tmp_path / "archive"
    original = backed_up_after_the_first_night(policy, tmp_path)
    taken_again = creditbooks("--db", original.url, "backup", "--to", "backup.db", cwd=tmp_path,
                              check=False)
    assert taken_again.returncode == 1
    assert taken_again.stderr == ("creditbooks: error: backup backup.db already exists; it is "
                                  "not overwritten: give another --to\n")
    run_night(original, policy, landing, archive, RUNNING)
    after_two = books(original)

    refused = restore(original.url, tmp_path / "backup.db", tmp_path, check=False)
    assert refused.returncode == 1
    assert refused.stderr.startswith(f"creditbooks: error: {original.url} already holds a ledger "
                                     "(schema ")
    assert "last published night 2026-01-31); restore never overwrites one silently: give " \
           "--replace" in refused.stderr
    assert books(original) == after_two

    replaced = restore(original.url, tmp_path / "backup.db", tmp_path, "--replace")
    assert "nights published: 1, the last 2026-01-30" in replaced.stdout
    assert batches(original) == {"2026-01-30": "posted"}
    assert books(original) != after_two
    run_night(original, policy, landing, archive, RUNNING)  # the same engine, still usable
    assert books(original) == after_two
    original.dispose()

    # A database that holds no ledger but holds something is not empty either.
    other = tmp_path / "other.db"
    connection = sqlite3.connect(other)
    connection.execute("CREATE TABLE customers (name TEXT)")
    connection.execute("INSERT INTO customers VALUES ('kept')")
    connection.commit()
    connection.close()
    refused = restore(f"sqlite:///{other}", tmp_path / "backup.db", tmp_path, check=False)
    assert refused.returncode == 1
    assert refused.stderr == (f"creditbooks: error: sqlite:///{other} is not empty (tables: "
                              "customers); restore writes only into an empty database: give "
                              "--replace to overwrite it\n")
    connection = sqlite3.connect(other)
    assert connection.execute("SELECT name FROM customers").fetchall() == [("kept",)]
    connection.close()


@pytest.mark.slow  # over a second here: not in make test-fast
def test_restore_verifies_the_backup_first_and_keeps_the_ledger_it_replaces(policy, tmp_path):
    landing, archive = tmp_path / "landing", tmp_path / "archive"
    original = backed_up_after_the_first_night(policy, tmp_path)
    after_first = books(original)
    run_night(original, policy, landing, archive, RUNNING)
    after_two = books(original)
    shutil.copyfile(tmp_path / "backup.db", tmp_path / "forged.db")
    forge(tmp_path / "forged.db", *FORGED_LINES)

    refused = restore(original.url, tmp_path / "forged.db", tmp_path, "--replace", check=False)
    assert refused.returncode == 1
    assert refused.stderr.startswith(
        f"creditbooks: error: backup {tmp_path / 'forged.db'} fails verify (journal hash chain: ")
    assert refused.stderr.endswith(f"); nothing was restored: {original.url} is as it was\n")
    assert books(original) == after_two
    assert list(tmp_path.glob("ledger.db.before-restore-*")) == []  # no copy: nothing replaced

    replaced = restore(original.url, tmp_path / "backup.db", tmp_path, "--replace")
    assert replaced.stdout.startswith(
        f"verified {tmp_path / 'backup.db'} before restoring it: both hash chains and the "
        "period events, and the controls\n")
    kept = safety_copy_named(replaced.stdout)
    assert kept.parent == tmp_path and kept.name.startswith("ledger.db.before-restore-")
    assert books(original) == after_first
    original.dispose()
    # The copy is the ledger as it was before the restore, and restores like any backup.
    put_back = restore(f"sqlite:///{tmp_path / 'ledger.db'}", kept, tmp_path, "--replace")
    assert books(store_at(f"sqlite:///{tmp_path / 'ledger.db'}")) == after_two
    assert safety_copy_named(put_back.stdout) != kept

    # A path of one's own; one already there is never overwritten, and nothing is restored.
    given = restore(original.url, tmp_path / "backup.db", tmp_path, "--replace",
                    "--safety-copy", str(tmp_path / "mine.db"))
    assert safety_copy_named(given.stdout) == tmp_path / "mine.db"
    again = restore(original.url, kept, tmp_path, "--replace", "--safety-copy",
                    str(tmp_path / "mine.db"), check=False)
    assert again.stderr == (f"creditbooks: error: safety copy {tmp_path / 'mine.db'} already "
                            "exists; it is not overwritten: give another --safety-copy; nothing "
                            "was restored\n")
    assert books(original) == after_first
    original.dispose()


@pytest.mark.slow  # over a second here: not in make test-fast
def test_a_newer_damaged_or_foreign_backup_is_refused_and_nothing_is_restored(policy, tmp_path):
    original = backed_up_after_the_first_night(policy, tmp_path)
    newer = sqlite3.connect(tmp_path / "backup.db")
    newer.execute("UPDATE creditbooks_alembic_version SET version_num = 'f00dfeedf00d'")
    newer.commit()
    newer.close()
    refused = restore(f"sqlite:///{tmp_path / 'restored.db'}", tmp_path / "backup.db", tmp_path,
                      check=False)
    assert refused.returncode == 1
    assert refused.stderr == (
        f"creditbooks: error: backup {tmp_path / 'backup.db'}: ledger schema f00dfeedf00d is "
        f"not one this version knows (its newest is {migration_revisions().head}): the ledger "
        "was made or upgraded by a newer creditbooks; use that version; nothing was restored\n")
    assert not (tmp_path / "restored.db").exists()
    cut = tmp_path / "cut.db"
    cut.write_bytes((tmp_path / "backup.db").read_bytes()[:8192])  # a copy cut short
    damaged = restore(f"sqlite:///{tmp_path / 'restored.db'}", cut, tmp_path, check=False)
    assert damaged.stderr == (f"creditbooks: error: backup {cut} is damaged (SQLite: database "
                              "disk image is malformed); nothing was restored: restore another "
                              "backup\n")
    assert not (tmp_path / "restored.db").exists()
    nothing = creditbooks("--db", f"sqlite:///{tmp_path / 'nothing.db'}", "backup", "--to",
                          "nothing-backup.db", cwd=tmp_path, check=False)
    assert nothing.stderr == (f"creditbooks: error: no SQLite ledger at {tmp_path / 'nothing.db'}"
                              ": nothing to back up\n")
    assert not (tmp_path / "nothing-backup.db").exists()
    not_a_backup = restore(f"sqlite:///{tmp_path / 'restored.db'}", tmp_path / "landing" /
                           "2026-01-30" / "usage.csv", tmp_path, check=False)
    assert not_a_backup.stderr.endswith("is neither a SQLite ledger nor a pg_dump custom "
                                        "archive: give a file `creditbooks backup` wrote\n")
    original.dispose()


@pytest.mark.slow  # over a second here: not in make test-fast
def test_a_backup_of_a_v010_ledger_restores_as_it_is_and_upgrade_brings_it_forward(tmp_path):
    shutil.copyfile(FIXTURES / "ledger.sqlite", tmp_path / "old.sqlite")
    taken = creditbooks("--db", f"sqlite:///{tmp_path / 'old.sqlite'}", "backup", "--to",
                        "old-backup.db", cwd=tmp_path).stdout
    assert "schema v0.1.0" in taken and "the last 2026-01-05" in taken
    restored_url = f"sqlite:///{tmp_path / 'restored.sqlite'}"
    restored = restore(restored_url, tmp_path / "old-backup.db", tmp_path).stdout
    assert ("the backup is at schema v0.1.0, older than this version's: run creditbooks "
            "upgrade, then creditbooks verify") in restored
    assert "run creditbooks upgrade" in verify(restored_url, tmp_path).stderr
    creditbooks("--db", restored_url, "upgrade", "--archive", str(FIXTURES / "archive"),
                cwd=tmp_path)
    assert verify(restored_url, tmp_path).returncode == 0


@pytest.mark.postgres
def test_a_pg_dump_during_an_airflow_night_restores_its_open_batch_unpublished(
        postgres_server, policy, tmp_path, monkeypatch):
    landing, archive = tmp_path / "landing", tmp_path / "archive"
    write_scenario(landing)
    original = store_at(postgres_server.create_database())
    for name, value in (("CREDITBOOKS_DB", original.url), ("CREDITBOOKS_LANDING", str(landing)),
                        ("CREDITBOOKS_ARCHIVE", str(archive))):
        monkeypatch.setenv(name, value)

    def stages(day, *ran):
        """Airflow's tasks for a night, the plan's tasks of the stages `ran`: each its own
        transaction."""
        for task in night_tasks():
            if task.stage not in ran:
                continue
            if task.stage is Stage.INGEST:
                pipeline.ingest_day(day.isoformat())
            elif task.stage is Stage.PUBLISH:
                pipeline.publish_day(day.isoformat())
            else:
                pipeline.run_stage_day(day.isoformat(), task.stage, task.shard, task.shard_count)

    every_stage = list(Stage)
    paused_at = every_stage.index(Stage.EXPIRE)
    stages(FIRST, *every_stage)
    after_first = books(original)
    stages(RUNNING, *every_stage[:paused_at])
    dump = tmp_path / "ledger.dump"
    # The expire stage is paused inside its transaction while pg_dump runs.
    backup_while_paused(monkeypatch, Stage.EXPIRE, lambda: stages(RUNNING, Stage.EXPIRE),
                        original.url, dump, tmp_path)
    stages(RUNNING, *every_stage[paused_at + 1:])
    stages(LAST, *every_stage)

    restored_url = postgres_server.create_database()
    output = restore(restored_url, dump, tmp_path, "--archive", str(archive)).stdout
    assert "nights published: 1, the last 2026-01-30" in output
    assert "of 2026-01-31 is open (a night was running;" in output
    restored = Store(restored_url)
    assert batches(restored) == {"2026-01-30": "posted", "2026-01-31": "open"}
    with restored.engine.connect() as connection:
        done = {row[0] for row in connection.execute(text(
            "SELECT stage FROM batch_stages WHERE batch_id = 'nightly-2026-01-31'"))}
    # The stages committed before the dump; the paused expire is not in it.
    assert done == {stage.value for stage in every_stage[:paused_at]} == {
        "ingest", "purchases", "burn"}
    reference = store_at(postgres_server.create_database())
    # In a directory of its own: its anchors go beside its archive (one ledger a file).
    run_night(reference, policy, landing, tmp_path / "reference" / "archive", FIRST)
    assert books(restored) == books(reference) == after_first

    for day in (RUNNING, LAST):  # re-running the night finishes its open batch
        creditbooks("--db", restored_url, "nightly", "--date", day.isoformat(), "--landing",
                    str(landing), "--archive", str(archive), "--anchors",
                    str(tmp_path / "restored-anchors.jsonl"), cwd=tmp_path)
    assert books(restored) == books(original)
    assert set(batches(restored).values()) == {"posted"}
    assert verify(restored_url, tmp_path, "--archive", str(archive), "--anchors",
                  str(tmp_path / "creditbooks-anchors.jsonl")).returncode == 0

    cut = tmp_path / "cut.dump"
    cut.write_bytes(dump.read_bytes()[:-64])  # the archive's table of contents, data cut short
    empty_url = postgres_server.create_database()
    failed = restore(empty_url, cut, tmp_path, check=False)
    assert failed.returncode == 1
    assert "failed in pg_restore, nothing was changed: pg_restore: error: " in failed.stderr
    empty = Store(empty_url)
    assert empty.read_frame("SELECT COUNT(*) AS n FROM information_schema.tables "
                            "WHERE table_schema = 'public'")["n"].iloc[0] == 0
    empty.dispose()

    again = restore(restored_url, dump, tmp_path, "--replace").stdout
    assert "of 2026-01-31 is open" in again
    assert books(restored) == after_first
    for store in (original, restored, reference):
        store.dispose()


@pytest.mark.postgres
def test_a_pg_restore_verifies_the_backup_first_and_dumps_the_ledger_it_replaces(
        postgres_server, policy, tmp_path):
    landing, archive = tmp_path / "landing", tmp_path / "archive"
    original = backed_up_after_the_first_night(policy, tmp_path,
                                               postgres_server.create_database(), "good.dump")
    after_first = books(original)
    forged = store_at(postgres_server.create_database())
    run_night(forged, policy, landing, tmp_path / "forged" / "archive", FIRST)
    with forged.engine.begin() as connection:  # as the owner, the guards switched off
        connection.execute(text("ALTER TABLE journal_lines DISABLE TRIGGER USER"))
        for statement in FORGED_LINES:
            connection.execute(text(statement))
        connection.execute(text("ALTER TABLE journal_lines ENABLE TRIGGER USER"))
    creditbooks("--db", forged.url, "backup", "--to", "forged.dump", cwd=tmp_path)
    forged.dispose()
    run_night(original, policy, landing, archive, RUNNING)
    after_two = books(original)

    refused = restore(original.url, tmp_path / "forged.dump", tmp_path, "--replace", check=False)
    assert refused.returncode == 1
    assert refused.stderr.startswith(f"creditbooks: error: backup {tmp_path / 'forged.dump'} "
                                     "fails verify (journal hash chain: ")
    assert refused.stderr.endswith(f"); nothing was restored: {original.url} is as it was\n")
    assert books(original) == after_two
    assert sorted(path.name for path in tmp_path.glob("*.dump")) == ["forged.dump", "good.dump"]
    with original.engine.connect() as connection:  # the scratch databases were dropped
        assert connection.execute(text(
            "SELECT COUNT(*) FROM pg_database WHERE datname LIKE 'creditbooks_restore_check_%'"
        )).scalar() == 0

    replaced = restore(original.url, tmp_path / "good.dump", tmp_path, "--replace").stdout
    kept = safety_copy_named(replaced)
    database = original.url.rsplit("/", 1)[1]
    assert kept.parent == tmp_path and kept.name.startswith(f"{database}.before-restore-")
    assert kept.name.endswith(".dump")
    assert books(original) == after_first
    put_back = store_at(postgres_server.create_database())
    put_back.dispose()
    restore(put_back.url, kept, tmp_path, "--replace")
    assert books(Store(put_back.url)) == after_two
    original.dispose()


@pytest.mark.postgres
def test_an_older_pg_backup_replaces_a_newer_ledger_whole_and_upgrade_brings_it_forward(
        postgres_server, policy, tmp_path):
    old_url = postgres_server.create_database()  # the v0.1.0 fixture, as v0.1.0 left it
    subprocess.run([str(postgres_server.binaries / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
                    "-d", old_url.replace("postgresql+psycopg", "postgresql"),
                    "-f", str(FIXTURES / "ledger.postgresql.sql")], check=True, capture_output=True)
    taken = creditbooks("--db", old_url, "backup", "--to", "old.dump", cwd=tmp_path).stdout
    assert "schema v0.1.0" in taken and "the last 2026-01-05" in taken

    write_scenario(tmp_path / "landing")
    newer = store_at(postgres_server.create_database())  # tables v0.1.0 never had, too
    # In a directory of its own: plain verify in tmp_path must not find the anchors of the
    # ledger this restore replaces (one ledger a file).
    run_night(newer, policy, tmp_path / "landing", tmp_path / "newer" / "archive", FIRST)
    replaced = restore(newer.url, tmp_path / "old.dump", tmp_path, "--replace",
                       "--other-ledger").stdout  # other books: v0.1.0's, without a ledger id
    assert "the backup is at schema v0.1.0, older than this version's: run creditbooks " \
           "upgrade" in replaced
    assert "nights published: 5, the last 2026-01-05" in replaced
    creditbooks("--db", newer.url, "upgrade", "--archive", str(FIXTURES / "archive"),
                cwd=tmp_path)
    assert verify(newer.url, tmp_path).returncode == 0
    recorded = json.loads((FIXTURES / "books.json").read_text())["chain_head"]
    with newer.engine.connect() as connection:
        head = chain_head(connection)
    assert (head.sequence, head.chain_hash) == (recorded["sequence"], recorded["chain_hash"])
    newer.dispose()
