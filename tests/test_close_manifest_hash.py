"""A close records the SHA-256 of its package's manifest.json in its period event (sealed
on the record chain), so a package whose figures were changed and whose manifest was
re-hashed to match is named by `verify-package --ledger` and `verify --close-dir`
(issue 19 review); closes from before it was recorded are reported, not failed."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from ledger.evidence import MANIFEST_HASH_NOT_RECORDED
from ledger.record_chain import seal_unsealed_records
from ledger.store import Store
from tests.support.cli import creditbooks
from tests.support.package_forgery import edit, rehash_manifest
from tests.support.scenario import scenario_books_on_the_command_line
from tests.support.tamper import forge

pytestmark = pytest.mark.slow  # posts and closes a month


@pytest.fixture(scope="module")
def closed_books(tmp_path_factory) -> Path:
    root = scenario_books_on_the_command_line(tmp_path_factory.mktemp("manifest-hash"),
                                              "2026-01-01", "2026-02-01")
    creditbooks("close", "--period", "2026-01", cwd=root)
    return root


@pytest.fixture
def books(closed_books, tmp_path) -> Path:
    return Path(shutil.copytree(closed_books, tmp_path / "books"))


def package_of(books: Path) -> Path:
    return books / "close" / "2026-01" / "v1"


def recorded_hash(books: Path) -> str | None:
    with sqlite3.connect(books / "creditbooks.db") as connection:
        return connection.execute("SELECT manifest_sha256 FROM period_events "
                                  "WHERE period = '2026-01' AND action = 'close'").fetchone()[0]


def manifest_hash(books: Path) -> str:
    return hashlib.sha256((package_of(books) / "manifest.json").read_bytes()).hexdigest()


def verify_package_lines(books: Path) -> tuple[int, list[str]]:
    shown = creditbooks("verify-package", str(package_of(books)), "--ledger", cwd=books,
                        check=False)
    return shown.returncode, shown.stdout.splitlines()


def close_manifests_row(books: Path) -> tuple[int, dict]:
    shown = creditbooks("verify", "--format", "json", "--close-dir", str(books / "close"),
                        cwd=books, check=False)
    rows = [row for row in json.loads(shown.stdout)
            if row["control"].startswith("close manifests")]
    return shown.returncode, rows[0]


def test_the_close_records_its_manifest_hash_and_both_verifiers_check_it(books):
    assert recorded_hash(books) == manifest_hash(books)
    code, lines = verify_package_lines(books)
    assert code == 0 and lines[-1] == f"package {package_of(books)} ties out", lines
    assert not any(line.startswith("note:") for line in lines)
    code, row = close_manifests_row(books)
    assert code == 0 and row["passed"] and "not recorded" not in row["detail"], row


def test_a_figure_changed_with_the_manifest_rehashed_is_named_by_the_manifest_hash(books):
    package = package_of(books)
    recorded = recorded_hash(books)
    # A note in the exceptions' place no figure ties to: only the manifest's hash can tell.
    manifest = json.loads((package / "manifest.json").read_text())
    manifest["empty_days"] = []
    manifest["accepted_exceptions_reason"] = "reviewed"
    (package / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
    found = manifest_hash(books)
    code, lines = verify_package_lines(books)
    assert code == 1
    assert (f"manifest.json: SHA-256 {found} but its close (period event id 1) recorded "
            f"{recorded}: the manifest was altered") in lines
    code, row = close_manifests_row(books)
    assert code == 1 and row["detail"] == (
        f"close manifest {package / 'manifest.json'} has SHA-256 {found}, but its close "
        f"(period event id 1) recorded {recorded}: the manifest was altered")


def test_moving_revenue_between_customers_and_rehashing_is_named(books):
    package = package_of(books)
    edit(package, "revenue_by_customer", {"customer_id": "A", "meter": "api"}, revenue="2.16")
    rehash_manifest(package)
    code, lines = verify_package_lines(books)
    assert code == 1
    assert any(line.startswith("manifest.json: SHA-256 ") and line.endswith(
        "the manifest was altered") for line in lines), lines


def test_a_close_from_before_the_hash_is_reported_not_failed(books):
    # As an upgraded ledger's older close is: no hash, and sealed without one (the close's
    # seal is the chain's last, so only it is sealed again).
    forge(books / "creditbooks.db", "UPDATE period_events SET manifest_sha256 = NULL",
          "DELETE FROM record_seals WHERE record_kind = 'period_event'")
    store = Store(f"sqlite:///{books / 'creditbooks.db'}")
    with store.transaction() as connection:
        seal_unsealed_records(connection)
    store.dispose()
    code, lines = verify_package_lines(books)
    assert code == 0, lines
    assert (f"note: manifest.json SHA-256 against the ledger: not recorded "
            f"({MANIFEST_HASH_NOT_RECORDED})") in lines
    # (verify itself fails here: the forger's dropped triggers.)
    _, row = close_manifests_row(books)
    assert row["passed"], row
    assert row["detail"].endswith(
        f"; manifest SHA-256 of 2026-01 v1 not recorded ({MANIFEST_HASH_NOT_RECORDED})")
    # Without the hash, a changed closed_by is the manifest's doing (the event is sealed).
    manifest_path = package_of(books) / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["closed_by"] = "someone-else"
    manifest_path.write_text(json.dumps(manifest))
    _, row = close_manifests_row(books)
    assert not row["passed"] and row["detail"].endswith(
        "says closed_by someone-else, but period event id 1 says actor tester: the manifest "
        "was altered (or the event, if the record chain check fails too)")


def test_a_changed_recorded_hash_breaks_the_events_seal(books):
    forge(books / "creditbooks.db", f"UPDATE period_events SET manifest_sha256 = '{'0' * 64}'")
    shown = creditbooks("verify", "--format", "json", cwd=books, check=False)
    rows = {row["control"].split(" (")[0]: row for row in json.loads(shown.stdout)}
    assert shown.returncode == 1
    assert rows["record chain"]["detail"].startswith("period event id 1 (record seal ")
    assert rows["record chain"]["detail"].endswith(
        "was altered: it no longer matches the hash sealed when it was recorded")
