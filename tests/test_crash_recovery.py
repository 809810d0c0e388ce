"""Kill the run with SIGKILL at each stage, run it again: the books are those of a clean run.

The killed process gets no chance to clean up (see tests/support/fault_injection.py). After it,
no part of the killed night or close is visible; running the same command again gives
the same entries, hash chain head, row counts, archive and reports as a run that was
never interrupted.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from creditbooks.close import close_period
from creditbooks.night.run import run_night
from intake.archive import verified_path
from ledger.archive_index import recorded_partitions
from ledger.domain import RecordKind
from ledger.schema import ALL_TABLES
from ledger.store import Store
from reports.statements import trial_balance
from tests.support.nights import post_days
from tests.support.scenario import NIGHTS, write_scenario

pytestmark = pytest.mark.slow  # kills real processes at every stage

REPOSITORY = Path(__file__).resolve().parents[1]
# Times of writing, and names that carry the ledger's own identity (each ledger has its
# own; the bytes of a partition are still compared, by their SHA-256). A close's manifest
# SHA-256 too: the manifest holds the close's time and ledger id (its reports are compared
# file by file below).
VOLATILE_COLUMNS = {"id", "recorded_at", "started_at", "created_at", "first_used_at", "ledger_id",
                    "relative_path", "manifest_sha256"}
TABLES = [table.__tablename__ for table in ALL_TABLES]
CLOSE_REPORTS = ["trial_balance.csv", "rollforward.json", "reconciliations.csv",
                 "balance_sheet.json", "income_statement.csv", "completeness.csv"]


def snapshot(store: Store) -> dict:
    """Everything the books say, without the times at which it was written."""
    tables = {}
    for table in TABLES:
        frame = store.read_frame(f"SELECT * FROM {table}")
        frame = frame.drop(columns=[c for c in frame.columns if c in VOLATILE_COLUMNS])
        if table == "record_seals":
            # A period event's and a policy version's seals take in when they were written,
            # and a partition's its name (the ledger's id), so the record chain's links
            # differ between two ledgers; each batch's seal (place, anchor, content) does not.
            frame = frame[frame["record_kind"] == RecordKind.BATCH].drop(columns=["chain_hash"])
        tables[table] = sorted(tuple(str(value) for value in row)
                               for row in frame.itertuples(index=False))
    tables["trial_balances"] = [trial_balance(store, period) for period in ("2026-01", "2026-02")]
    return tables


def run_with_fault(point: str, *arguments: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tests.support.fault_injection", point, *arguments],
                          cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPOSITORY)})


@pytest.fixture(scope="module")
def landing(tmp_path_factory):
    root = tmp_path_factory.mktemp("crash-landing")
    write_scenario(root / "landing")
    return root / "landing"


@pytest.fixture(scope="module")
def clean_nights(landing, policy, tmp_path_factory):
    """The three nights run without interruption."""
    root = tmp_path_factory.mktemp("clean-nights")
    store = Store(f"sqlite:///{root / 'ledger.db'}")
    store.initialise()
    for night in NIGHTS:
        run_night(store, policy, landing, root / "archive", night)
    yield snapshot(store), root / "archive"
    store.dispose()


NIGHT_POINTS = ["mid-ingest", "mid-archive-write", "mid-burn", "mid-posting", "mid-publish"]


@pytest.mark.parametrize("point", NIGHT_POINTS)
def test_a_night_killed_at_any_stage_reruns_to_the_clean_books(point, landing, clean_nights,
                                                               policy, tmp_path):
    clean, _ = clean_nights
    store = Store(f"sqlite:///{tmp_path / 'ledger.db'}")
    store.initialise()
    archive = tmp_path / "archive"
    run_night(store, policy, landing, archive, NIGHTS[0])
    before = snapshot(store)

    killed = run_with_fault(point, "--db", store.url, "nightly", "--date", "2026-01-31",
                            "--landing", str(landing), "--archive", str(archive), cwd=tmp_path)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert snapshot(store) == before  # nothing of the killed night is visible

    for night in NIGHTS[1:]:
        assert run_night(store, policy, landing, archive, night).status == "posted"
    assert snapshot(store) == clean
    # The snapshot holds each partition's name and SHA-256: the re-run archived the clean
    # run's bytes, and nothing the killed run left beside them remains.
    with store.engine.connect() as connection:
        partitions = recorded_partitions(connection)
    for partition in partitions:
        path = verified_path(archive, partition)
        assert [file.name for file in path.parent.iterdir()] == [path.name]
    store.dispose()


@pytest.mark.postgres
def test_a_night_killed_mid_posting_on_postgresql_reruns_to_the_clean_books(
        landing, clean_nights, policy, postgres_server, tmp_path):
    store = Store(postgres_server.create_database())
    store.initialise()
    run_night(store, policy, landing, tmp_path / "archive", NIGHTS[0])
    killed = run_with_fault("mid-posting", "--db", store.url, "nightly", "--date", "2026-01-31",
                            "--landing", str(landing), "--archive", str(tmp_path / "archive"),
                            cwd=tmp_path)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert store.read_frame("SELECT COUNT(*) AS n FROM batches")["n"][0] == 1
    for night in NIGHTS[1:]:
        assert run_night(store, policy, landing, tmp_path / "archive", night).status == "posted"
    # The journal, its chain and the counts are the same as SQLite's clean run; other
    # tables differ between the two databases only in how they print instants and flags.
    books, clean = snapshot(store), clean_nights[0]
    for part in ("journal_entries", "journal_lines", "journal_seals", "batch_files",
                 "trial_balances"):
        assert books[part] == clean[part], part
    store.dispose()


@pytest.fixture(scope="module")
def january(landing, policy, tmp_path_factory):
    """Every night of January posted (not closed), and the package of a clean close of it."""
    root = tmp_path_factory.mktemp("january")
    shutil.copytree(landing, root / "landing")
    store = Store(f"sqlite:///{root / 'ledger.db'}")
    store.initialise()
    post_days(store, policy, root, date(2026, 1, 1), date(2026, 1, 31))
    store.dispose()
    clean = root.parent / "january-clean"
    shutil.copytree(root, clean)
    clean_store = Store(f"sqlite:///{clean / 'ledger.db'}")
    close_period(clean_store, policy, "2026-01", clean / "close", clean / "archive")
    clean_books = snapshot(clean_store)
    clean_store.dispose()
    return root, clean / "close" / "2026-01" / "v1", clean_books


@pytest.mark.parametrize("point", ["mid-close-package", "mid-close-lock"])
def test_a_close_killed_midway_leaves_the_period_open_and_reruns_to_the_clean_package(
        point, january, policy, tmp_path):
    base, clean_package, clean_books = january
    shutil.copytree(base, tmp_path / "books")
    root = tmp_path / "books"
    store = Store(f"sqlite:///{root / 'ledger.db'}")
    killed = run_with_fault(point, "--db", store.url, "close", "--period", "2026-01",
                            "--out", str(root / "close"), "--archive", str(root / "archive"),
                            cwd=tmp_path)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert store.read_frame("SELECT COUNT(*) AS n FROM period_events")["n"][0] == 0
    # Never half a package under its name, nor a whole one of a lock that never committed:
    # a package goes into place only after its lock, and is never overwritten.
    assert not (root / "close" / "2026-01" / "v1").exists()

    outcome = close_period(store, policy, "2026-01", root / "close", root / "archive")
    assert (outcome.status, outcome.version) == ("closed", 1)
    package = root / "close" / "2026-01" / "v1"
    for name in CLOSE_REPORTS:
        assert (package / name).read_bytes() == (clean_package / name).read_bytes(), name
    manifest, clean_manifest = (json.loads((directory / "manifest.json").read_text())
                                for directory in (package, clean_package))
    assert manifest["journal_digest"] == clean_manifest["journal_digest"]
    assert manifest["chain_head"] == clean_manifest["chain_head"]
    assert sorted(path.name for path in package.parent.iterdir()) == ["v1"]
    assert snapshot(store) == clean_books
    store.dispose()
