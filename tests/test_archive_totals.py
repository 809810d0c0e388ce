"""An archive partition's rows must sum to the totals its batch recorded (issue 26, review):
a row whose credits or amount were changed in place (the same row count) is refused by
`upgrade --archive` on a v0.1.0 archive and named by `verify --archive`, even after the
forger re-recorded the partition's SHA-256 and re-sealed the record chain.

The books: the v0.1.0 fixture ledger and archive (tests/fixtures/v0.1.0), and the
hand-worked scenario's three nights through the command line.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from ledger.archive_index import file_sha256
from tests.support.cli import creditbooks
from tests.support.scenario import scenario_books_on_the_command_line
from tests.support.tamper import forge, reseal_record_chain

pytestmark = pytest.mark.slow  # upgrades and posts nights through the command line

FIXTURES = Path(__file__).parent / "fixtures" / "v0.1.0"
ARCHIVE_CONTROL = "archive partitions = ledger's record"


def query(database: Path, sql: str, *parameters) -> list[tuple]:
    connection = sqlite3.connect(database)
    try:
        return connection.execute(sql, parameters).fetchall()
    finally:
        connection.close()


def add_to_first_row(path: Path, column: str, added: int) -> str:
    """Rewrite a Parquet partition with `added` more in its first row's `column` (the same
    rows otherwise); its new SHA-256."""
    table = pq.read_table(path)
    values = table[column].to_pylist()
    values[0] += added
    index = table.schema.get_field_index(column)
    pq.write_table(table.set_column(index, table.schema.field(index),
                                    pa.array(values, table.schema.field(index).type)), path)
    return file_sha256(path)


def credits_of(path: Path) -> int:
    return pc.sum(pq.read_table(path, columns=["credits_micro"])["credits_micro"]).as_py()


def upgrade(tmp_path: Path):
    return creditbooks("--db", f"sqlite:///{tmp_path / 'ledger.sqlite'}", "upgrade",
                       "--archive", str(tmp_path / "archive"), cwd=tmp_path, check=False)


def test_a_v010_archive_row_with_other_credits_or_amounts_is_refused(tmp_path):
    shutil.copyfile(FIXTURES / "ledger.sqlite", tmp_path / "ledger.sqlite")
    shutil.copytree(FIXTURES / "archive", tmp_path / "archive")
    usage = tmp_path / "archive" / "usage" / "business_date=2026-01-03" / "rows.parquet"
    [(recorded,)] = query(tmp_path / "ledger.sqlite", "SELECT credits_accepted_micro FROM "
                          "batch_files WHERE batch_id = 'nightly-2026-01-03' AND document = "
                          "'usage'")
    assert credits_of(usage) == recorded
    add_to_first_row(usage, "credits_micro", 1_000_000)
    refused = upgrade(tmp_path)
    assert refused.returncode == 1
    assert refused.stderr.splitlines()[-1] == (
        f"creditbooks: error: archive partition {usage} (batch nightly-2026-01-03, usage) "
        f"sums to {recorded + 1_000_000} credits_micro, but batch nightly-2026-01-03 recorded "
        f"{recorded} accepted credits_micro of usage: rows were changed; give the archive the "
        "ledger was posted with; nothing was changed")
    assert query(tmp_path / "ledger.sqlite", "SELECT name FROM sqlite_master WHERE name = "
                                             "'record_seals'") == []  # rolled back

    # A purchase's amount changed, its credits as they were.
    shutil.copyfile(FIXTURES / "archive" / "usage" / "business_date=2026-01-03" /
                    "rows.parquet", usage)
    purchases = tmp_path / "archive" / "purchases" / "business_date=2026-01-02" / "rows.parquet"
    [(amounts,)] = query(tmp_path / "ledger.sqlite", "SELECT amounts_accepted_json FROM "
                         "batch_files WHERE batch_id = 'nightly-2026-01-02' AND document = "
                         "'purchases'")
    assert json.loads(amounts) == {"JPY": "1500", "USD": "690.00"}
    first_currency = pq.read_table(purchases, columns=["currency"])["currency"][0].as_py()
    assert first_currency == "JPY"
    add_to_first_row(purchases, "amount_minor", 100)
    refused = upgrade(tmp_path)
    assert refused.returncode == 1
    assert refused.stderr.splitlines()[-1] == (
        f"creditbooks: error: archive partition {purchases} (batch nightly-2026-01-02, "
        'purchases) sums to amounts {"JPY": "1600", "USD": "690.00"}, but batch '
        'nightly-2026-01-02 recorded {"JPY": "1500", "USD": "690.00"} accepted of purchases: '
        "rows were changed; give the archive the ledger was posted with; nothing was changed")

    # The archive as it was posted is adopted, and verify --archive ties every partition.
    shutil.rmtree(tmp_path / "archive")
    shutil.copytree(FIXTURES / "archive", tmp_path / "archive")
    assert upgrade(tmp_path).returncode == 0
    verified = creditbooks("--db", f"sqlite:///{tmp_path / 'ledger.sqlite'}", "verify",
                           "--format", "json", "--archive", str(tmp_path / "archive"),
                           cwd=tmp_path, check=False)
    rows = {row["control"]: row for row in json.loads(verified.stdout)}
    assert rows[ARCHIVE_CONTROL]["passed"], rows[ARCHIVE_CONTROL]


@pytest.fixture(scope="module")
def posted_books(tmp_path_factory) -> Path:
    return scenario_books_on_the_command_line(tmp_path_factory.mktemp("posted-books"),
                                              "2026-01-30", "2026-02-01")


def test_verify_archive_names_a_partition_whose_credits_were_changed_after_a_reseal(
        posted_books, tmp_path):
    books = tmp_path / "books"
    shutil.copytree(posted_books, books)
    database = books / "creditbooks.db"
    [(relative, recorded)] = query(database, """
        SELECT p.relative_path, f.credits_accepted_micro FROM archive_partitions p
        JOIN batch_files f ON f.batch_id = p.batch_id AND f.document = p.document
        WHERE p.batch_id = 'nightly-2026-01-31' AND p.document = 'usage'""")
    partition = books / "archive" / relative
    assert credits_of(partition) == recorded
    new_sha256 = add_to_first_row(partition, "credits_micro", -1)
    forge(database, f"UPDATE archive_partitions SET sha256 = '{new_sha256}' "
                    "WHERE batch_id = 'nightly-2026-01-31' AND document = 'usage'")
    reseal_record_chain(database)
    verified = creditbooks("verify", "--format", "json", "--archive", str(books / "archive"),
                           cwd=books, check=False)
    assert verified.returncode == 1
    rows = {row["control"]: row for row in json.loads(verified.stdout)}
    assert rows[ARCHIVE_CONTROL] == {
        "control": ARCHIVE_CONTROL, "passed": False,
        "detail": f"1 of 4 partitions differ; first: archive partition {partition} (batch "
                  f"nightly-2026-01-31, usage) sums to {recorded - 1} credits_micro, but batch "
                  f"nightly-2026-01-31 recorded {recorded} accepted credits_micro of usage: "
                  "rows were changed"}
