"""The tamper-evident journal: edits made behind the ledger's back are caught and named."""

from __future__ import annotations

import json
import sqlite3

from ledger.chain import GENESIS, chain_head, verify_chain
from tests.test_cli import creditbooks
from tests.test_nightly_end_to_end import run_nights, write_scenario


def test_the_chain_holds_and_grows_with_each_published_night(store, policy, tmp_path):
    write_scenario(tmp_path / "landing")
    with store.engine.connect() as connection:
        assert chain_head(connection).chain_hash == GENESIS
    run_nights(store, policy, tmp_path)
    with store.engine.connect() as connection:
        verification = verify_chain(connection)
        head = chain_head(connection)
    entries = store.read_frame("SELECT COUNT(*) AS n FROM journal_entries")["n"][0]
    assert verification.holds and verification.entries_checked == entries == head.sequence
    assert verification.head == head
    run_nights(store, policy, tmp_path)  # re-runs seal nothing new
    with store.engine.connect() as connection:
        assert chain_head(connection) == head


def test_editing_a_line_in_the_database_is_caught_and_the_entry_named(tmp_path):
    write_scenario(tmp_path / "landing")
    creditbooks("init", cwd=tmp_path)
    creditbooks("nightly", "--from", "2026-01-30", "--to", "2026-02-01", cwd=tmp_path)
    assert creditbooks("verify", cwd=tmp_path).returncode == 0
    database = sqlite3.connect(tmp_path / "creditbooks.db")
    # A careful forger keeps the entry balanced: both lines move by 1 cent.
    database.execute("UPDATE journal_lines SET amount_minor = amount_minor + 1 "
                     "WHERE entry_id = 'usage/A/2026-01-31' AND line_number = 1")
    database.execute("UPDATE journal_lines SET amount_minor = amount_minor - 1 "
                     "WHERE entry_id = 'usage/A/2026-01-31' AND line_number = 2")
    database.commit()
    caught = creditbooks("verify", "--format", "json", cwd=tmp_path, check=False)
    assert caught.returncode == 1
    chain = json.loads(caught.stdout)[0]
    assert chain["passed"] is False
    assert chain["detail"].startswith("entry usage/A/2026-01-31 (seal ")
    assert "was altered" in chain["detail"]


def test_rewriting_a_seal_breaks_the_chain_at_that_seal(sqlite_store, policy, tmp_path):
    write_scenario(tmp_path / "landing")
    run_nights(sqlite_store, policy, tmp_path)
    with sqlite_store.transaction() as connection:
        connection.exec_driver_sql("UPDATE journal_seals SET content_hash = '" + "f" * 64
                                   + "' WHERE sequence = 3")
    with sqlite_store.engine.connect() as connection:
        verification = verify_chain(connection)
    assert not verification.holds and verification.entries_checked == 2
    assert "(seal 3) was altered" in verification.first_mismatch


def test_content_hashes_are_the_documented_text_and_do_not_depend_on_read_blocks(
        sqlite_store, policy, tmp_path, monkeypatch):
    """An entry's hash is SHA-256 of its fields joined by \\x1f, a newline, then each line
    the same way (missing values empty), however the rows fall into read blocks."""
    import hashlib

    from sqlalchemy import text

    import ledger.chain as chain

    write_scenario(tmp_path / "landing")
    run_nights(sqlite_store, policy, tmp_path)
    query = chain._ENTRY_CONTENT + " ORDER BY e.entry_id, l.line_number"
    with sqlite_store.engine.connect() as connection:
        rows = connection.execute(text(query)).fetchall()
        whole = dict(chain._content_hashes(connection.execute(text(query))))
        monkeypatch.setattr(chain, "_FETCH_ROWS", 2)  # most entries straddle two blocks
        in_pairs = dict(chain._content_hashes(connection.execute(text(query))))
    expected: dict[str, hashlib._Hash] = {}
    for row in rows:
        fields = ["" if value is None else str(value) for value in row]
        if row[0] not in expected:
            expected[row[0]] = hashlib.sha256(("\x1f".join(fields[:8]) + "\n").encode())
        expected[row[0]].update(("\x1f".join(fields[8:]) + "\n").encode())
    assert len(whole) > 10
    assert whole == in_pairs == {entry: digest.hexdigest() for entry, digest in expected.items()}
