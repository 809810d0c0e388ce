"""Exports: the external ids issued to exported journals, so an id is never reissued.

An ERP keys an imported journal on its external id (NetSuite "Add" refuses a known id,
"Add or Update" overwrites it, QuickBooks posts it again), so an id, once issued to a
journal key within a namespace (the id's prefix: final or draft, period, daily or
monthly, transaction or functional currency, by customer), names that key on every
re-export, and a key that appears later (a manual journal posted after a reopen) gets the
namespace's next number. Append-only: an issued id is never changed or taken back.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from sqlalchemy import CheckConstraint, Column, Integer, UniqueConstraint
from sqlmodel import Field, SQLModel

from ledger.schema.columns import Retention, identifier, tables_of, utc_instant


class ExportedJournalId(SQLModel, table=True):
    """One external id: namespace + number, issued once to one journal key."""

    __tablename__ = "exported_journal_ids"
    retention: ClassVar[Retention] = Retention.APPEND_ONLY
    __table_args__ = (
        UniqueConstraint("namespace", "number", name="uq_exported_journal_ids_number"),
        CheckConstraint("number > 0", name="ck_exported_journal_ids_number"),
    )
    namespace: str = Field(sa_type=identifier(16), primary_key=True)
    journal_key: str = Field(sa_type=identifier(600), primary_key=True)
    number: int = Field(sa_column=Column(Integer, nullable=False))
    issued_at: datetime = Field(sa_column=utc_instant())


TABLES = tables_of(globals())
