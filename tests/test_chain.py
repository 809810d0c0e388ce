"""The tamper-evident journal: edits made behind the ledger's back are caught and named."""

from __future__ import annotations

import json
from datetime import date, datetime

import pandas as pd
import psycopg
import pytest
from sqlalchemy import insert

from ledger import schema
from ledger.chain import GENESIS, ChainHead, chain_head, seal_batch, verify_chain
from ledger.digest import journal_digest
from ledger.journal import JournalBatch
from ledger.store import Store, post_journal
from tests.support.cli import creditbooks
from tests.support.scenario import run_nights, write_scenario
from tests.support.tamper import forge


@pytest.mark.slow  # over a second here: not in make test-fast
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


@pytest.mark.slow  # over a second here: not in make test-fast
def test_editing_a_line_in_the_database_is_caught_and_the_entry_named(tmp_path):
    write_scenario(tmp_path / "landing")
    creditbooks("init", cwd=tmp_path)
    creditbooks("nightly", "--from", "2026-01-30", "--to", "2026-02-01", cwd=tmp_path)
    assert creditbooks("verify", cwd=tmp_path).returncode == 0
    # A careful forger drops the append-only triggers and keeps the entry balanced: both
    # lines move by 1 cent.
    forge(tmp_path / "creditbooks.db",
          "UPDATE journal_lines SET amount_minor = amount_minor + 1 "
          "WHERE entry_id = 'usage/A/2026-01-31' AND line_number = 1",
          "UPDATE journal_lines SET amount_minor = amount_minor - 1 "
          "WHERE entry_id = 'usage/A/2026-01-31' AND line_number = 2")
    caught = creditbooks("verify", "--format", "json", cwd=tmp_path, check=False)
    assert caught.returncode == 1
    chain = json.loads(caught.stdout)[0]
    assert chain["passed"] is False
    assert chain["detail"].startswith("entry usage/A/2026-01-31 (seal ")
    assert "was altered" in chain["detail"]


def test_rewriting_a_seal_breaks_the_chain_at_that_seal(sqlite_store, policy, tmp_path):
    write_scenario(tmp_path / "landing")
    run_nights(sqlite_store, policy, tmp_path)
    forge(tmp_path / "ledger.db", "UPDATE journal_seals SET content_hash = '" + "f" * 64
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


# Byte order, and the order an English-language server would choose (case and punctuation
# weighed differently): the ids below sort differently under the two.
_AWKWARD_IDS = ["manual/B", "manual/a", "manual/_z", "manual/a-1", "manual/a1", "manual/Ä"]


def _seal_awkward_ids(store: Store) -> tuple[list[str], ChainHead, str]:
    batch = {"batch_id": "manual-2026-01-31", "business_date": date(2026, 1, 31),
             "posting_period": "2026-01", "status": "open", "policy_version": "t",
             "input_fingerprint": "t", "started_at": datetime(2026, 2, 1),
             "recorded_at": datetime(2026, 2, 1), "entry_count": len(_AWKWARD_IDS)}
    entries = pd.DataFrame({"entry_id": _AWKWARD_IDS, "kind": "usage",
                            "business_date": date(2026, 1, 31), "period": "2026-01",
                            "customer_id": "A", "source_ref": "manual"})
    lines = pd.DataFrame({"entry_id": [i for i in _AWKWARD_IDS for _ in (1, 2)],
                          "line_number": [1, 2] * len(_AWKWARD_IDS),
                          "account": ["Liabilities:DeferredRevenue:Credits", "Income:Usage"]
                          * len(_AWKWARD_IDS),
                          "currency": "USD", "amount_minor": [5, -5] * len(_AWKWARD_IDS),
                          "functional_minor": [5, -5] * len(_AWKWARD_IDS), "meter": None,
                          "purchase_id": None})
    with store.transaction() as connection:
        connection.execute(insert(schema.Batch.__table__), [batch])
        post_journal(connection, JournalBatch(entries, lines), {
            "batch_id": batch["batch_id"], "policy_version": "t",
            "recorded_at": datetime(2026, 2, 1), "period": "2026-01"})
        head = seal_batch(connection, batch["batch_id"])
    with store.engine.connect() as connection:
        digest, _ = journal_digest(connection, "2026-01")
    order = store.read_frame("SELECT entry_id FROM journal_seals ORDER BY sequence")
    return list(order["entry_id"]), head, digest


@pytest.mark.postgres
def test_a_server_with_another_locale_seals_and_digests_in_byte_order(postgres_server,
                                                                       sqlite_store):
    with psycopg.connect(f"host=127.0.0.1 port={postgres_server.port} user=postgres "
                         "dbname=postgres", autocommit=True) as admin:
        admin.execute('CREATE DATABASE "english_locale" TEMPLATE template0 '
                      "LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'")
        english_order = [row[0] for row in admin.execute(
            "SELECT id COLLATE \"en-US-x-icu\" FROM unnest(%s::text[]) AS id ORDER BY 1",
            [_AWKWARD_IDS])]
    assert english_order != sorted(_AWKWARD_IDS)  # the locale really does differ
    english = Store(postgres_server.url("english_locale"))
    english.initialise()
    try:
        on_postgresql = _seal_awkward_ids(english)
    finally:
        english.dispose()
    on_sqlite = _seal_awkward_ids(sqlite_store)
    assert on_postgresql[0] == on_sqlite[0] == sorted(_AWKWARD_IDS)
    assert on_postgresql[1:] == on_sqlite[1:]
