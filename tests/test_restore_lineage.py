"""Restore over a live ledger takes only that ledger's own books (issue 26, review): a
re-sealed rewrite of its backup is refused naming the first differing seal, another
ledger's backup needs --other-ledger, and the append-only guards are checked by verify and
installed again by restore.

The books are the hand-worked scenario (tests/support/scenario.py), its first night backed
up, its second night posted after.
"""

from __future__ import annotations

import shutil
import sqlite3
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import text

from creditbooks.night.run import run_night
from ledger.chain import chain_head
from ledger.store import Store
from tests.support.cli import creditbooks
from tests.support.scenario import write_scenario
from tests.support.tamper import forge, reseal_both_chains

FIRST, SECOND = date(2026, 1, 30), date(2026, 1, 31)


def ledger_with_two_nights(policy, root: Path) -> Store:
    """A ledger at root / ledger.db, its first night backed up to root / backup.db, then its
    second night posted."""
    write_scenario(root / "landing")
    store = Store(f"sqlite:///{root / 'ledger.db'}")
    store.initialise()
    run_night(store, policy, root / "landing", root / "archive", FIRST)
    creditbooks("--db", store.url, "backup", "--to", "backup.db", cwd=root)
    run_night(store, policy, root / "landing", root / "archive", SECOND)
    return store


def head_of(store: Store) -> tuple[int, str]:
    with store.engine.connect() as connection:
        head = chain_head(connection)
    return head.sequence, head.chain_hash


def restore(url: str, backup: Path, cwd: Path, *options: str, check: bool = True):
    return creditbooks("--db", url, "restore", "--from", str(backup), "--format", "csv",
                       "--replace", *options, cwd=cwd, check=check)


def seal_at(database: Path, sequence: int) -> str:
    connection = sqlite3.connect(database)
    try:
        return connection.execute("SELECT chain_hash FROM journal_seals WHERE sequence = ?",
                                  (sequence,)).fetchone()[0]
    finally:
        connection.close()


@pytest.mark.slow
def test_a_resealed_rewrite_of_the_ledgers_backup_is_refused_an_older_backup_is_not(
        policy, tmp_path):
    store = ledger_with_two_nights(policy, tmp_path)
    before = head_of(store)
    forged = tmp_path / "forged.db"
    shutil.copyfile(tmp_path / "backup.db", forged)
    # One entry's source reference rewritten, both chains sealed again: the database checks
    # (what restore verifies a backup with; the anchor file is not in the backup) pass it.
    forge(forged, "UPDATE journal_entries SET source_ref = 'forged' WHERE entry_id = "
                  "(SELECT entry_id FROM journal_entries ORDER BY entry_id LIMIT 1)")
    reseal_both_chains(forged)
    (tmp_path / "no-anchors").mkdir()
    assert creditbooks("--db", f"sqlite:///{forged}", "verify", cwd=tmp_path / "no-anchors",
                       check=False).returncode == 0

    refused = restore(store.url, forged, tmp_path, check=False)
    assert refused.returncode == 1
    first = next(sequence for sequence in range(1, before[0] + 1)
                 if seal_at(forged, sequence) != seal_at(tmp_path / "ledger.db", sequence))
    assert refused.stderr == (
        f"creditbooks: error: backup {forged} is not {store.url}'s books: its journal chain "
        f"seal at sequence {first} is {seal_at(forged, first)}, the ledger's is "
        f"{seal_at(tmp_path / 'ledger.db', first)}; the backup is a rewrite of this ledger, "
        f"nothing was restored (ledger {ledger_id(tmp_path / 'ledger.db')} is as it was)\n")
    assert head_of(store) == before
    assert list(tmp_path.glob("ledger.db.before-restore-*")) == []

    # The honest older backup (a shorter chain, the same seals) still restores.
    restored = restore(store.url, tmp_path / "backup.db", tmp_path)
    assert ("\nthe backup is the same ledger's books as the one replaced (journal chain "
            in restored.stdout)
    assert "nights published: 1, the last 2026-01-30" in restored.stdout
    store.dispose()


def ledger_id(database: Path) -> str:
    connection = sqlite3.connect(database)
    try:
        return connection.execute("SELECT ledger_id FROM ledger_identity").fetchone()[0]
    finally:
        connection.close()


@pytest.mark.slow
def test_another_ledgers_backup_replaces_a_ledger_only_with_other_ledger(policy, tmp_path):
    store = ledger_with_two_nights(policy, tmp_path / "ours")
    before = head_of(store)
    theirs = tmp_path / "theirs"
    ledger_with_two_nights(policy, theirs).dispose()
    ours_id, theirs_id = ledger_id(tmp_path / "ours" / "ledger.db"), ledger_id(
        theirs / "ledger.db")
    assert ours_id != theirs_id

    refused = restore(store.url, theirs / "backup.db", tmp_path, check=False)
    assert refused.returncode == 1
    assert refused.stderr == (
        f"creditbooks: error: backup {theirs / 'backup.db'} is ledger {theirs_id}, but "
        f"{store.url} is ledger {ours_id}, which holds 2 nights published (the last "
        "2026-01-31), 0 periods closed; nothing was restored: give --other-ledger to replace "
        "it with another ledger's books\n")
    assert head_of(store) == before

    allowed = restore(store.url, theirs / "backup.db", tmp_path, "--other-ledger")
    assert (f"\nthe backup is ledger {theirs_id}, replacing ledger {ours_id} "
            "(--other-ledger)\n") in allowed.stdout
    assert ledger_id(tmp_path / "ours" / "ledger.db") == theirs_id
    store.dispose()


@pytest.mark.slow
def test_verify_names_a_missing_guard_and_restore_installs_the_guards_again(policy, tmp_path):
    store = ledger_with_two_nights(policy, tmp_path)
    store.dispose()
    assert creditbooks("--db", store.url, "verify", cwd=tmp_path).returncode == 0
    # Every trigger dropped, nothing else changed.
    forge(tmp_path / "backup.db", put_guards_back=False)
    forge(tmp_path / "ledger.db", put_guards_back=False)
    failed = creditbooks("--db", store.url, "verify", cwd=tmp_path, check=False)
    assert failed.returncode == 1
    assert failed.stderr == (
        "creditbooks: error: verification failed: append-only guards (triggers); first: guard "
        "exported_journal_ids_no_delete is missing (21 of 21 missing): exported_journal_ids "
        "accepts UPDATE/DELETE; run "
        "creditbooks init to reinstall the guards\n")

    restored = restore(store.url, tmp_path / "backup.db", tmp_path)
    assert ("append-only guards installed on the restored books, as init installs them (21 "
            "were missing from the backup)") in restored.stdout
    assert "append-only guards (triggers),True,21 guards present" in restored.stdout
    connection = sqlite3.connect(tmp_path / "ledger.db")
    with pytest.raises(sqlite3.IntegrityError, match="DELETE on journal_lines is refused"):
        connection.execute("DELETE FROM journal_lines")
    connection.close()
    with Store(store.url).engine.connect() as connection:
        assert connection.execute(text(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger'")).scalar() == 21
