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
