"""Tampering with a SQLite ledger as a forger would, for the tests that must catch it."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def forge(database: Path, *statements: str, put_guards_back: bool = True) -> None:
    """Run statements on the SQLite file as a forger would: triggers dropped first, and put
    back after as they were (so that verify's check of the guards does not give it away),
    unless `put_guards_back` is False."""
    connection = sqlite3.connect(database)
    try:
        triggers = connection.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger'").fetchall()
        for name, _ in triggers:
            connection.execute(f'DROP TRIGGER "{name}"')
        for statement in statements:
            connection.execute(statement)
        if put_guards_back:
            for _, definition in triggers:
                connection.execute(definition)
        connection.commit()
    finally:
        connection.close()


def reseal_record_chain(database: Path) -> None:
    """The record chain sealed again from the (altered) tables, with the project's own
    functions, as a forger with the source would (the journal chain left as it is)."""
    from ledger.record_chain import (
        seal_unsealed_partitions_and_policy_versions,
        seal_unsealed_records,
    )
    from ledger.store import Store

    forge(database, "DELETE FROM record_seals")
    store = Store(f"sqlite:///{database}")
    with store.transaction() as connection:
        seal_unsealed_records(connection)
        seal_unsealed_partitions_and_policy_versions(connection)
    store.dispose()


def reseal_both_chains(database: Path) -> None:
    """Both chains sealed again from the (altered) tables with the project's own functions,
    as a forger with the source would: what verify's chain checks alone cannot tell apart."""
    from sqlalchemy import text

    from ledger.chain import seal_batch
    from ledger.record_chain import (
        seal_unsealed_partitions_and_policy_versions,
        seal_unsealed_records,
    )
    from ledger.store import Store

    forge(database, "DELETE FROM journal_seals", "DELETE FROM record_seals")
    store = Store(f"sqlite:///{database}")
    try:
        with store.transaction() as connection:
            for (batch_id,) in connection.execute(text(
                    "SELECT batch_id FROM batches WHERE status <> 'open' "
                    "ORDER BY business_date")).all():
                seal_batch(connection, batch_id)
            seal_unsealed_records(connection)
            seal_unsealed_partitions_and_policy_versions(connection)
    finally:
        store.dispose()
