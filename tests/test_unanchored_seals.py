"""Seals the anchors do not cover (issue 26, hostile review): a record appended and sealed
after the last anchor, a partition sealed outside its batch's publish, a truncated anchor
file, and plain verify's default archive."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import text

from ledger.chain import chain_head
from ledger.domain import RecordKind
from ledger.record_chain import partition_contents, record_chain_head, seal_records
from ledger.store import Store
from tests.support.cli import creditbooks, verify_rows
from tests.support.scenario import scenario_books_on_the_command_line
from tests.support.tamper import forge

ANCHORS = "creditbooks-anchors.jsonl"
ARCHIVE_CONTROL = "archive partitions = ledger's record"
FORGED = "usage_source/business_date=2026-01-30/nightly-2026-01-30-forged.jsonl"


@pytest.fixture(scope="module")
def three_nights(tmp_path_factory) -> Path:
    return scenario_books_on_the_command_line(tmp_path_factory.mktemp("three-nights"),
                                              "2026-01-30", "2026-02-01")


@pytest.fixture
def books(three_nights, tmp_path) -> Path:
    shutil.copytree(three_nights, tmp_path / "books")
    return tmp_path / "books"


def append_forged_partition(books: Path) -> tuple[int, int, int]:
    """A fabricated usage source file for the first night (its row count the night's usage
    rows read), its archive_partitions row put in behind the ledger and sealed at the end
    of the record chain with the project's own function; (the new seal's sequence, the
    first batch's seal, the next batch's seal)."""
    content = b'{"event_id": "U1"}\n{"event_id": "U2"}\n'
    (books / "archive" / FORGED).parent.mkdir(parents=True, exist_ok=True)
    (books / "archive" / FORGED).write_bytes(content)
    forge(books / "creditbooks.db",
          "INSERT INTO archive_partitions VALUES ('nightly-2026-01-30', 'usage_source', "
          f"'2026-01-30', '{FORGED}', '{hashlib.sha256(content).hexdigest()}', 2)")
    store = Store(f"sqlite:///{books / 'creditbooks.db'}")
    with store.transaction() as connection:
        key = "nightly-2026-01-30/usage_source"
        head = seal_records(connection, RecordKind.PARTITION, {
            key: partition_contents(connection, "nightly-2026-01-30")[key]})
        first_batch, next_batch = (connection.execute(text(
            "SELECT sequence FROM record_seals WHERE record_key = :key"), {"key": key}).scalar()
            for key in ("nightly-2026-01-30", "nightly-2026-01-31"))
    store.dispose()
    return head.sequence, first_batch, next_batch


def test_a_partition_sealed_after_the_last_anchor_is_named_by_anchors_and_its_place(books):
    sequence, first_batch, next_batch = append_forged_partition(books)
    code, rows = verify_rows(books, "--archive", "archive")
    assert code == 1
    assert rows["anchors"]["detail"].startswith(
        f"record seals {sequence}..{sequence} are after the last anchor (line 3, publish "
        "2026-02-01 at ")
    assert rows["record chain"]["detail"] == (
        f"archive partition {FORGED} (batch nightly-2026-01-30, usage_source; record seal "
        f"{sequence}) is not sealed in its batch's publish: batch nightly-2026-01-30 is "
        f"record seal {first_batch}, the next batch's seal is {next_batch}; it was added "
        "behind the ledger")


def test_a_truncated_anchor_file_is_named(books):
    code, rows = verify_rows(books)
    assert code == 0, rows
    store = Store(f"sqlite:///{books / 'creditbooks.db'}")
    with store.engine.connect() as connection:
        head = chain_head(connection).sequence
    store.dispose()
    first = (books / ANCHORS).read_text().splitlines()[0]
    (books / ANCHORS).write_text(first + "\n")
    anchored = json.loads(first)["journal_chain"]["sequence"]
    code, rows = verify_rows(books)
    assert code == 1
    assert rows["anchors"]["detail"].startswith(
        f"journal seals {anchored + 1}..{head} are after the last anchor (line 1, publish "
        "2026-01-30 at ")


def test_plain_verify_checks_the_default_archive_or_says_it_did_not(books):
    said = creditbooks("verify", cwd=books).stdout.splitlines()
    assert said[2] == f"archive: checked {Path('archive')}/ (the default archive)"
    code, rows = verify_rows(books)
    assert code == 0 and rows[ARCHIVE_CONTROL]["passed"]
    (books / "archive" / "usage" / "business_date=2026-01-31").rename(
        books / "archive" / "moved")
    code, rows = verify_rows(books)
    assert code == 1 and not rows[ARCHIVE_CONTROL]["passed"]
    shutil.rmtree(books / "archive")
    said = creditbooks("verify", cwd=books).stdout.splitlines()
    assert said[2] == (f"archive: not checked, no {Path('archive')}/ here (the default "
                       "archive): give --archive DIR")


JOURNAL_HEADER = ("journal_ref,date,account,currency,debit,credit,memo,customer_id,"
                  "purchase_id,reverse_on")
# 2.00 of P-B's deferred revenue earned off-meter (as in tests/test_manual_journals.py).
RECOGNISE = ["MJ-1,2026-01-31,Liabilities:DeferredRevenue:Credits,USD,2.00,,earned "
             "off-meter,A,P-B,",
             "MJ-1,2026-01-31,Income:Revenue:Usage,USD,,2.00,earned off-meter,A,,"]


def last_anchor_is_the_ledger_head(books: Path) -> str:
    """The last anchor's event, once verify has passed and that anchor holds both heads."""
    code, rows = verify_rows(books)
    assert code == 0, [row["detail"] for row in rows.values() if not row["passed"]]
    last = json.loads((books / ANCHORS).read_text().splitlines()[-1])
    store = Store(f"sqlite:///{books / 'creditbooks.db'}")
    with store.engine.connect() as connection:
        heads = (chain_head(connection).sequence, record_chain_head(connection).sequence)
    store.dispose()
    assert (last["journal_chain"]["sequence"], last["record_chain"]["sequence"]) == heads
    return last["event"]


@pytest.mark.slow  # several commands: not in make test-fast
def test_nights_and_a_manual_journal_approval_each_end_with_an_anchor_at_the_ledger_head(books):
    assert last_anchor_is_the_ledger_head(books) == "publish 2026-02-01"
    (books / "journals.csv").write_text("\n".join([JOURNAL_HEADER, *RECOGNISE]) + "\n")
    creditbooks("journal", "import", "journals.csv", "--by", "alice", cwd=books)
    creditbooks("journal", "approve", "MJ-1", "--by", "bob", cwd=books)
    assert last_anchor_is_the_ledger_head(books) == "journal approve MJ-1"
