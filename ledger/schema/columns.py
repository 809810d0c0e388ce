"""What every ledger table is built from: its column types, the currency check, and its
retention (whether its rows may be changed or removed once written).

Money is BIGINT minor units and credits BIGINT micro-credits; instants are stored as naive
UTC timestamps. Each table states its `Retention`; the database guards (`ledger/guards.py`)
read it to decide which tables refuse every change and what the application role may do.
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint, Column, DateTime, String


class Retention(StrEnum):
    """What may happen to a table's rows once written (the guards and grants follow it)."""

    # Never changed or removed, by any role: the journal, its seals, the period events.
    APPEND_ONLY = "append_only"
    # Inserted and updated by the night and the close, never deleted by them.
    MUTABLE = "mutable"
    # A window, not a record: a night adds rows and removes those no late window reaches.
    WINDOW = "window"


def bigint(*, nullable: bool = False, primary_key: bool = False) -> Column:
    return Column(BigInteger, nullable=nullable, primary_key=primary_key)


def utc_instant(*, nullable: bool = False) -> Column:
    return Column(DateTime(timezone=False), nullable=nullable)


def identifier(length: int) -> String:
    """Text that PostgreSQL compares byte by byte, as SQLite does, whatever the server's
    locale: ids sort (and so seal and digest) the same on every server, and the journal's
    indexes are kept without the locale's collation rules (a fifth of their upkeep)."""
    return String(length).with_variant(String(length, collation="C"), "postgresql")


def currency_check(column: str = "currency") -> CheckConstraint:
    return CheckConstraint(
        f"length({column}) = 3 AND upper({column}) = {column}", name=f"ck_%(table_name)s_{column}"
    )


def tables_of(namespace: dict) -> tuple[type, ...]:
    """The table models a family module defines, in the order it defines them (which is
    the order they are created in): each family's list is its own class statements."""
    from sqlmodel import SQLModel

    return tuple(value for value in namespace.values()
                 if isinstance(value, type) and issubclass(value, SQLModel)
                 and getattr(value, "__table__", None) is not None
                 and value.__module__ == namespace["__name__"])
