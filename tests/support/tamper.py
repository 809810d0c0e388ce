"""Tampering with a SQLite ledger as a forger would, for the tests that must catch it."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def forge(database: Path, *statements: str) -> None:
    """Run statements on the SQLite file as a forger would: triggers dropped first."""
    connection = sqlite3.connect(database)
    try:
        for (name,) in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
            connection.execute(f'DROP TRIGGER "{name}"')
        for statement in statements:
            connection.execute(statement)
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
    from ledger.guards import install_sqlite_guards
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
            install_sqlite_guards(connection)  # put back, so that nothing looks amiss
    finally:
        store.dispose()
