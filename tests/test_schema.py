"""The schema's facts are written once: the one table list, each table's retention, and
every CHECK constraint that lists values is its enumeration in `ledger/domain.py`.

The refusal tests insert into a ledger made by `initialise` (from the models), on SQLite and
(marker `postgres`) on PostgreSQL, and into one built by the migrations alone: every member
of the enumeration is accepted, and a value outside it is refused by the named constraint.
"""

from __future__ import annotations

import re
from datetime import date, datetime

from alembic import command
from sqlalchemy import Table, insert
from sqlalchemy.exc import DBAPIError
from sqlmodel import SQLModel

from ledger import guards
from ledger.domain import (
    AdjustmentAction,
    BatchStatus,
    CostType,
    EntryKind,
    ExpiryDestination,
    LotKind,
    ManualJournalStatus,
    OverageMode,
    PeriodAction,
    QuarantineKind,
    RecordKind,
    Stage,
    sql_values,
)
from ledger.schema import ALL_TABLES, Retention
from ledger.store import Store
from ledger.upgrade import alembic_config, schema_change_connection

# The specification: which enumeration each value-listing column holds.
ENUM_COLUMNS = {
    ("batches", "status"): BatchStatus,
    ("batch_stages", "stage"): Stage,
    ("quarantine", "kind"): QuarantineKind,
    ("lots", "kind"): LotKind,
    ("lot_adjustments", "action"): AdjustmentAction,
    ("lot_expiries", "destination"): ExpiryDestination,
    ("costs", "cost_type"): CostType,
    ("uncovered_usage", "treatment"): OverageMode,
    ("journal_entries", "kind"): EntryKind,
    ("period_events", "action"): PeriodAction,
    ("record_seals", "record_kind"): RecordKind,
    ("manual_journals", "status"): ManualJournalStatus,
}
# A row's other columns, where the sample would break another constraint: a journal's
# approver is never its preparer (ck_manual_journals_maker_checker).
OTHER_COLUMNS = {"manual_journals": {"approved_by": "checker"}}
VALUE_LIST = re.compile(r"^(\w+) IN \(")
# Rows that others name: a batch and a lot the test rows point to (committed once).
PARENT_KEYS = {("batches", "batch_id"): "B-PARENT", ("lots", "purchase_id"): "P-PARENT"}
NOT_A_MEMBER = "x"  # short enough for every column, so only the CHECK can refuse it


def _value_lists() -> dict[tuple[str, str], tuple[str, str]]:
    """(table, column) -> (constraint name, its SQL) for every CHECK listing values."""
    found = {}
    for table in SQLModel.metadata.tables.values():
        for constraint in table.constraints:
            match = VALUE_LIST.match(str(getattr(constraint, "sqltext", "")))
            if match:
                found[(table.name, match.group(1))] = (constraint.name, str(constraint.sqltext))
    return found


def test_the_one_table_list_is_every_table_alembic_compares():
    names = [table.__tablename__ for table in ALL_TABLES]
    assert len(names) == len(set(names)) == 30
    assert sorted(names) == sorted(SQLModel.metadata.tables)


def test_every_table_states_its_retention_and_the_guards_follow_it():
    assert [table.__tablename__ for table in ALL_TABLES if "retention" not in vars(table)] == []
    assert guards.APPEND_ONLY_TABLES == ("journal_entries", "journal_lines", "journal_seals",
                                         "record_seals", "period_events", "policy_versions",
                                         "exported_journal_ids")
    assert guards.WINDOW_TABLES == ("seen_usage_ids",)
    guarded = guards.APPEND_ONLY_TABLES + guards.MUTABLE_TABLES + guards.WINDOW_TABLES
    assert sorted(guarded) == sorted(table.__tablename__ for table in ALL_TABLES)
    assert {table.retention for table in ALL_TABLES} == set(Retention)


def test_every_check_listing_values_is_its_enumeration():
    value_lists = _value_lists()
    assert sorted(value_lists) == sorted(ENUM_COLUMNS)
    for (table, column), enumeration in ENUM_COLUMNS.items():
        assert value_lists[(table, column)][1] == f"{column} IN {sql_values(enumeration)}"


def _row_for(table: Table, **overrides) -> dict:
    """A row every constraint but the one under test accepts: keys point to the parents,
    credits are positive, money zero, instants in order, text a valid currency."""
    row = {}
    for column in table.columns:
        if column.foreign_keys:
            target = next(iter(column.foreign_keys)).column
            value = PARENT_KEYS[(target.table.name, target.name)]
        else:
            value = _sample(column)
        row[column.name] = value
    return {**row, **overrides}


def _sample(column) -> object:
    kind = getattr(column.type, "impl", column.type).python_type  # SQLModel's AutoString
    if kind is int:
        return 1 if column.name in ("credits_micro", "shard_count") else 0
    if kind is datetime:  # a nullable instant is an expiry: after every other instant
        return datetime(2026, 1, 3) if column.nullable else datetime(2026, 1, 2)
    if kind is str:  # a currency fits every currency check; `country` holds two letters
        return "USD"[: getattr(column.type, "length", None) or 3]
    return {date: date(2026, 1, 2), bool: False, bytes: b""}[kind]


def _refusal(store: Store, table: Table, row: dict) -> str | None:
    """The database's refusal of the row, or None when it takes it (never kept)."""
    with store.engine.connect() as connection:
        transaction = connection.begin()
        try:
            connection.execute(insert(table).values(**row))
        except DBAPIError as refusal:
            return str(refusal.orig)
        finally:
            transaction.rollback()
    return None


def _wrongly_checked(store: Store) -> list[str]:
    """Each member a ledger refuses, and each non-member it takes (or refuses otherwise)."""
    tables = SQLModel.metadata.tables
    with store.transaction() as connection:
        connection.execute(insert(tables["batches"]).values(**_row_for(
            tables["batches"], batch_id="B-PARENT", status="open", business_date=date(2026, 1, 1))))
        connection.execute(insert(tables["lots"]).values(**_row_for(
            tables["lots"], purchase_id="P-PARENT", kind="paid")))
    wrong = []
    for (table_name, column), enumeration in ENUM_COLUMNS.items():
        table = tables[table_name]
        constraint_name = _value_lists()[(table_name, column)][0]
        for member in enumeration:
            refusal = _refusal(store, table, _row_for(
                table, **OTHER_COLUMNS.get(table_name, {}), **{column: member.value}))
            if refusal is not None:
                wrong.append(f"{table_name}.{column} = {member.value!r} refused: {refusal}")
        refusal = _refusal(store, table, _row_for(
            table, **OTHER_COLUMNS.get(table_name, {}), **{column: NOT_A_MEMBER}))
        if refusal is None or constraint_name not in refusal:
            wrong.append(f"{table_name}.{column} = {NOT_A_MEMBER!r} not refused by "
                         f"{constraint_name}: {refusal}")
    return wrong


def test_the_database_takes_every_member_and_refuses_any_other_value(store):
    assert _wrongly_checked(store) == []


def test_a_ledger_built_by_the_migrations_alone_checks_the_same_values(tmp_path):
    # A fresh ledger's constraints come from the models; an upgraded one's from the
    # migrations. A member added to an enumeration without a migration fails here.
    url = f"sqlite:///{tmp_path / 'migrated.db'}"
    with schema_change_connection(url) as connection:
        command.upgrade(alembic_config(connection), "head")
    store = Store(url)
    try:
        assert _wrongly_checked(store) == []
    finally:
        store.dispose()
