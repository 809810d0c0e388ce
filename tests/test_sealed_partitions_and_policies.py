"""Archive partitions and policy versions are sealed onto the record chain, and a
partition's rows are tied to its batch's (issue 26, the hostile review's three holes).

1. A partition file rewritten together with its recorded SHA-256 (or its row removed)
   is named by `verify`, by the partition's name.
2. A partition's row count must be what its batch accepted: a v0.1.0 archive with a row
   removed is refused by `upgrade --archive`, and `verify --archive` names such a
   partition even when the forger re-sealed the chain.
3. A policy version removed, put back altered, or added behind the ledger is named.

And a ledger kept before these were sealed (v0.1.0's, or one posted by the code before
this change) upgrades, has them sealed by the upgrade, and verifies.

The books: the hand-worked scenario's three nights, through the command line. A forger
with the SQLite file drops the append-only triggers first.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from alembic import command

import ledger.policy_versions
from creditbooks.night import stages as night_stages
from ledger.archive_index import file_sha256
from ledger.chain import chain_head
from ledger.domain import RecordKind
from ledger.evidence import verify_evidence
from ledger.record_chain import (
    batch_contents,
    seal_records,
)
from ledger.schema_version import VERSION_TABLE, migration_revisions
from ledger.store import Store
from ledger.upgrade import alembic_config, schema_change_connection, upgrade_ledger
from rules.policy import policy_version_of_text
from tests.support.cli import creditbooks, verify_rows
from tests.support.scenario import run_nights, scenario_books_on_the_command_line, write_scenario
from tests.support.tamper import forge, reseal_record_chain

pytestmark = pytest.mark.slow  # posts nights through the command line

FIXTURES = Path(__file__).parent / "fixtures" / "v0.1.0"
SEALED_BATCH = "nightly-2026-01-31"
ARCHIVE_CONTROL = "archive partitions = ledger's record"


@pytest.fixture(scope="module")
def posted_books(tmp_path_factory) -> Path:
    return scenario_books_on_the_command_line(tmp_path_factory.mktemp("posted-books"),
                                              "2026-01-30", "2026-02-01")


@pytest.fixture
def books(posted_books, tmp_path) -> Path:
    shutil.copytree(posted_books, tmp_path / "books")
    # The anchors kept away from where verify looks by default: these tests ask what the
    # ledger and the archive alone show (the anchors catch a re-seal: test_tamper_evidence).
    (tmp_path / "books" / "creditbooks-anchors.jsonl").rename(tmp_path / "anchors.jsonl")
    return tmp_path / "books"


def failed(rows: dict[str, dict]) -> list[str]:
    return [name for name, row in rows.items() if not row["passed"]]


def query(database: Path, sql: str) -> list[tuple]:
    connection = sqlite3.connect(database)
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


def record_seals(database: Path) -> list[tuple]:
    return query(database, "SELECT sequence, record_kind, record_key, content_hash, chain_hash "
                           "FROM record_seals ORDER BY sequence")


def usage_partition(books: Path) -> tuple[str, int, int]:
    """The usage partition the night of 2026-01-31 wrote: its path, recorded row count
    and the rows its batch accepted."""
    [(relative, recorded, accepted)] = query(books / "creditbooks.db", f"""
        SELECT p.relative_path, p.row_count, f.rows_accepted FROM archive_partitions p
        JOIN batch_files f ON f.batch_id = p.batch_id AND f.document = p.document
        WHERE p.batch_id = '{SEALED_BATCH}' AND p.document = 'usage'""")
    return relative, recorded, accepted


def drop_last_row(path: Path) -> str:
    """Rewrite a Parquet partition without its last row; its new SHA-256."""
    table = pq.read_table(path)
    pq.write_table(table.slice(0, table.num_rows - 1), path)
    return file_sha256(path)


def test_each_nights_partitions_and_the_policy_version_are_sealed_in_order(books):
    [(version,)] = query(books / "creditbooks.db", "SELECT version FROM policy_versions")
    assert [seal[1:3] for seal in record_seals(books / "creditbooks.db")] == [
        ("policy_version", version),  # kept by the first night's intake, before it publishes
        ("batch", "nightly-2026-01-30"),
        ("partition", "nightly-2026-01-30/purchases"),
        ("partition", "nightly-2026-01-30/usage"),
        ("batch", "nightly-2026-01-31"),
        ("partition", "nightly-2026-01-31/usage"),
        ("batch", "nightly-2026-02-01"),
        ("partition", "nightly-2026-02-01/usage")]
    code, rows = verify_rows(books, "--archive", str(books / "archive"))
    assert code == 0, rows
    assert rows["record chain"]["detail"].startswith("8 records; head 8 ")


def test_a_partition_rewritten_with_its_recorded_sha256_is_named_by_its_name(books):
    database = books / "creditbooks.db"
    relative, recorded_rows, _ = usage_partition(books)
    new_sha256 = drop_last_row(books / "archive" / relative)
    forge(database, f"UPDATE archive_partitions SET sha256 = '{new_sha256}' "
                    f"WHERE batch_id = '{SEALED_BATCH}' AND document = 'usage'")
    code, rows = verify_rows(books, "--archive", str(books / "archive"))
    assert code == 1
    assert rows["record chain"]["detail"] == (
        f"archive partition {relative} (batch {SEALED_BATCH}, usage; record seal 6) was "
        "altered: its name, SHA-256 or row count no longer match the hash sealed when its "
        "batch published")
    # The file's bytes are now the recorded ones, but not its rows.
    shown = books / "archive" / relative
    assert rows[ARCHIVE_CONTROL]["detail"] == (
        f"1 of 4 partitions differ; first: archive partition {shown} (batch {SEALED_BATCH}, "
        f"usage) holds {recorded_rows - 1} rows, but its record in archive_partitions says "
        f"{recorded_rows}: the record was altered")
    assert failed(rows) == ["record chain", ARCHIVE_CONTROL]

    forge(database, f"DELETE FROM archive_partitions WHERE batch_id = '{SEALED_BATCH}' "
                    "AND document = 'usage'")
    code, rows = verify_rows(books)
    assert code == 1
    assert rows["record chain"]["detail"] == (
        f"archive partition (batch {SEALED_BATCH}, usage; record seal 6) is missing from "
        "archive_partitions (or its batch is no longer published)")


def test_a_partition_altered_on_disk_alone_is_named_by_verify_archive(books):
    relative, _, _ = usage_partition(books)
    drop_last_row(books / "archive" / relative)
    code, rows = verify_rows(books, "--archive", str(books / "archive"))
    assert code == 1 and failed(rows) == [ARCHIVE_CONTROL]
    assert rows[ARCHIVE_CONTROL]["detail"] == (
        f"1 of 4 partitions differ; first: archive partition {books / 'archive' / relative} "
        f"(batch {SEALED_BATCH}, usage) is not the file its batch wrote (SHA-256 differs): it "
        "was altered or written by another ledger")


def test_a_partition_short_of_its_batchs_rows_is_named_even_after_a_reseal(books):
    database = books / "creditbooks.db"
    relative, recorded_rows, accepted = usage_partition(books)
    assert recorded_rows == accepted > 1
    new_sha256 = drop_last_row(books / "archive" / relative)
    forge(database, f"UPDATE archive_partitions SET sha256 = '{new_sha256}', "
                    f"row_count = {accepted - 1} "
                    f"WHERE batch_id = '{SEALED_BATCH}' AND document = 'usage'")
    reseal_record_chain(database)  # the database alone can no longer tell (the anchors can)
    code, rows = verify_rows(books, "--archive", str(books / "archive"))
    assert code == 1 and failed(rows) == [ARCHIVE_CONTROL]
    assert rows[ARCHIVE_CONTROL]["detail"] == (
        f"1 of 4 partitions differ; first: archive partition {books / 'archive' / relative} "
        f"(batch {SEALED_BATCH}, usage) holds {accepted - 1} rows, but batch {SEALED_BATCH} "
        f"recorded {accepted} accepted rows of usage: rows were removed or added")


def forge_rows(database: Path, statement: str, *rows: tuple) -> None:
    """A forger's parameterised statement, run once per row (triggers dropped first)."""
    forge(database)
    connection = sqlite3.connect(database)
    try:
        connection.executemany(statement, rows)
        connection.commit()
    finally:
        connection.close()


KEEP_POLICY = "INSERT INTO policy_versions VALUES (?, ?, ?, ?, ?)"


def test_a_policy_version_removed_put_back_or_added_behind_the_ledger_is_named(books):
    database = books / "creditbooks.db"
    [kept] = query(database, "SELECT version, policy_text, first_used_by, first_used_for, "
                             "first_used_at FROM policy_versions")
    version, policy_text = kept[:2]
    forge(database, "DELETE FROM policy_versions")
    code, rows = verify_rows(books)
    assert code == 1 and failed(rows) == ["record chain"]
    assert rows["record chain"]["detail"] == (
        f"policy version {version} (record seal 1) is missing from policy_versions")

    # Put back with the same text (it still hashes to its version), first used by another.
    forge_rows(database, KEEP_POLICY, (*kept[:2], "cfo", *kept[3:]))
    code, rows = verify_rows(books)
    assert code == 1 and failed(rows) == ["record chain"]
    assert rows["record chain"]["detail"] == (
        f"policy version {version} (record seal 1) was altered: its text, or who first used "
        "it, for what or when, no longer match the hash sealed when it was kept")

    # As it was, and beside it a text no night or close used, kept under its true version.
    other_text = policy_text.replace("late_window_days = 31", "late_window_days = 90")
    other_version = policy_version_of_text(other_text)
    assert other_version != version
    forge(database, "DELETE FROM policy_versions")
    forge_rows(database, KEEP_POLICY, kept, (other_version, other_text, *kept[2:]))
    code, rows = verify_rows(books)
    assert code == 1 and failed(rows) == ["record chain"]
    assert rows["record chain"]["detail"] == f"policy version {other_version} was never sealed"


def test_a_v010_archive_with_a_row_removed_is_refused_and_the_whole_one_sealed(tmp_path):
    shutil.copyfile(FIXTURES / "ledger.sqlite", tmp_path / "ledger.sqlite")
    shutil.copytree(FIXTURES / "archive", tmp_path / "archive")
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    partition = tmp_path / "archive" / "usage" / "business_date=2026-01-03" / "rows.parquet"
    [(accepted,)] = query(tmp_path / "ledger.sqlite", "SELECT rows_accepted FROM batch_files "
                                                      "WHERE batch_id = 'nightly-2026-01-03' "
                                                      "AND document = 'usage'")
    assert pq.ParquetFile(partition).metadata.num_rows == accepted
    drop_last_row(partition)
    refused = creditbooks("--db", url, "upgrade", "--archive", str(tmp_path / "archive"),
                          cwd=tmp_path, check=False)
    assert refused.returncode == 1
    assert refused.stderr.splitlines()[-1] == (
        f"creditbooks: error: archive partition {partition} (batch nightly-2026-01-03, usage) "
        f"holds {accepted - 1} rows, but batch nightly-2026-01-03 recorded {accepted} "
        "accepted rows of usage: rows were removed or added; give the archive the ledger was "
        "posted with; nothing was changed")
    tables = {name for (name,) in query(tmp_path / "ledger.sqlite",
                                        "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert VERSION_TABLE not in tables and "record_seals" not in tables  # rolled back

    shutil.rmtree(tmp_path / "archive")
    shutil.copytree(FIXTURES / "archive", tmp_path / "archive")
    upgrade_ledger(url, archive_root=tmp_path / "archive")
    kinds = [kind for (_, kind, *_rest) in record_seals(tmp_path / "ledger.sqlite")]
    batches = kinds.count("batch")
    # The upgrade seals the batches and events (the record chain's migration), then the
    # partitions it adopted, in business-date order; v0.1.0 kept no policy text.
    assert kinds == ["batch"] * batches + ["partition"] * 9
    store = Store(url)
    with store.engine.connect() as connection:
        checks = verify_evidence(connection)
    store.dispose()
    assert all(check.passed for check in checks), checks


def test_a_ledger_posted_before_partitions_and_policies_were_sealed_upgrades_and_verifies(
        tmp_path, policy, monkeypatch):
    write_scenario(tmp_path / "landing")
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    store = Store(url)
    store.initialise()
    # As the code before this change sealed: a batch alone, and no policy version.
    monkeypatch.setattr(night_stages, "seal_batch_record", lambda connection, batch:
                        seal_records(connection, RecordKind.BATCH,
                                     batch_contents(connection, batch)))
    monkeypatch.setattr(ledger.policy_versions, "seal_policy_version", lambda *_: None)
    run_nights(store, policy, tmp_path)
    monkeypatch.undo()
    store.dispose()
    # ...and at the revision before this change, whose record chain had two kinds.
    with schema_change_connection(url) as connection:
        command.downgrade(alembic_config(connection), "-1")
    before = record_seals(tmp_path / "ledger.db")
    assert [seal[1] for seal in before] == ["batch"] * 3
    store = Store(url)
    with store.engine.connect() as connection:
        journal_before = chain_head(connection)
    store.dispose()

    outcome = upgrade_ledger(url)
    assert outcome.migrations_run == [migration_revisions().head]
    after = record_seals(tmp_path / "ledger.db")
    assert after[:3] == before  # every earlier seal stays as it was
    assert [seal[1:3] for seal in after[3:]] == [
        ("partition", "nightly-2026-01-30/purchases"), ("partition", "nightly-2026-01-30/usage"),
        ("partition", "nightly-2026-01-31/usage"), ("partition", "nightly-2026-02-01/usage"),
        ("policy_version", policy.version)]
    store = Store(url)
    with store.engine.connect() as connection:
        assert chain_head(connection) == journal_before
        checks = verify_evidence(connection)
    store.dispose()
    assert all(check.passed for check in checks), checks
