"""Schema changes to a ledger: create a fresh one (`init`) and upgrade an older one.

`upgrade_ledger` runs the Alembic migrations (ledger/migrations) after the revision the
ledger records, in one transaction: PostgreSQL has transactional DDL, and on SQLite the
driver's own transaction handling is switched off so that every CREATE, ALTER and table
rebuild sits between one BEGIN IMMEDIATE and one COMMIT. Before it commits, the upgraded
ledger must match this version's models (Alembic's comparison, plus CHECK constraint
names, which Alembic does not compare), record the newest revision and, on SQLite, keep
its foreign keys; otherwise nothing changes. On SQLite the database is first copied to
`<db>.backup-<old schema>-<UTC time>` (SQLite's backup API, inside the upgrade's own
transaction, so no night can post between the copy and the upgrade).

A v0.1.0 ledger has no version table: its tables say what it is, and the upgrade records
the baseline revision in it before running the migrations after the baseline.

Archive partitions and policy versions kept before the record chain sealed them are sealed
here, after the migrations and the archive's adoption (a v0.1.0 ledger records its
partitions only then), in the same transaction (`seal_unsealed_partitions_and_policy_versions`).

Guards (PostgreSQL's triggers and SQLite's append-only ones, ledger/guards.py) are not
migrations: they are installed again, as the code of this version has them, at the end
of every upgrade and by `init`.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import CheckConstraint, Connection, create_engine, event, inspect
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import NullPool
from sqlmodel import SQLModel

from ledger import schema
from ledger.archive_adoption import adopt_archive
from ledger.errors import BooksError
from ledger.guards import install_guards, install_sqlite_guards
from ledger.locks import take_posting_lock
from ledger.schema_version import (
    BASELINE_REVISION,
    MIGRATIONS_DIRECTORY,
    VERSION_TABLE,
    LedgerNeedsUpgradeError,
    LedgerSchemaError,
    migration_revisions,
    read_ledger_schema,
    require_current,
)

# The row-level foreign keys PostgreSQL's guards replace with statement-level checks
# (ledger/guards.py drops them): (table, columns, referred table). The models keep them,
# SQLite keeps them, and comparing a PostgreSQL ledger with the models leaves them out.
GUARD_REPLACED_FOREIGN_KEYS = frozenset({
    ("journal_lines", ("entry_id",), "journal_entries"),
    ("journal_entries", ("batch_id",), "batches"),
})


@dataclass(frozen=True)
class UpgradeOutcome:
    from_schema: str  # as messages name it: a revision, or v0.1.0 when none was recorded
    to_revision: str
    migrations_run: list[str]
    backup: Path | None
    partitions_adopted: int = 0

    @property
    def changed(self) -> bool:
        return self.from_schema != self.to_revision


def install_store_guards(connection: Connection) -> None:
    """The database-enforced invariants of this version, where the store has them."""
    if connection.dialect.name == "postgresql":
        install_guards(connection)
    elif connection.dialect.name == "sqlite":
        install_sqlite_guards(connection)


def include_object_for(dialect_name: str) -> Callable[..., bool]:
    """Alembic's filter for comparing a ledger with the models (autogenerate too)."""
    def include(object_, name, type_, reflected, compare_to) -> bool:
        if type_ == "foreign_key_constraint" and dialect_name == "postgresql":
            signature = (object_.table.name, tuple(object_.column_keys),
                         object_.referred_table.name)
            return signature not in GUARD_REPLACED_FOREIGN_KEYS
        return True
    return include


@contextmanager
def schema_change_connection(url: str) -> Iterator[Connection]:
    """A connection inside the one transaction a schema change runs in.

    PostgreSQL: the posting lock is held exclusively, so nights in flight finish first
    and none starts until the change commits. SQLite: BEGIN IMMEDIATE (the write lock),
    foreign keys off as SQLite's table rebuild requires, and checked before COMMIT."""
    engine = _schema_change_engine(url)
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                take_posting_lock(connection)
            yield connection
            if connection.dialect.name == "sqlite":
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").first()
                if broken:
                    raise LedgerSchemaError(f"after the schema change a row of {broken[0]} "
                                            f"refers to a missing row of {broken[2]}; "
                                            "nothing was changed")
    finally:
        engine.dispose()


def _schema_change_engine(url: str) -> Engine:
    if make_url(url).get_backend_name() != "sqlite":
        return create_engine(url, poolclass=NullPool)
    engine = create_engine(url, poolclass=NullPool, connect_args={"timeout": 60})

    @event.listens_for(engine, "connect")
    def _no_driver_transactions(dbapi_connection, _record) -> None:
        # The driver would begin its own transactions for DML only and leave DDL outside
        # them; with its handling off, the BEGIN below covers everything.
        dbapi_connection.isolation_level = None
        dbapi_connection.execute("PRAGMA foreign_keys = OFF")

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def alembic_config(connection: Connection, directory: Path = MIGRATIONS_DIRECTORY):
    """Alembic's configuration for running `directory`'s migrations over `connection`."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(directory))
    config.attributes["connection"] = connection
    return config


def create_ledger(url: str) -> None:
    """A fresh database: every table of the models, the guards, and the newest revision
    recorded, in one transaction. A ledger another process made meanwhile is left as it is
    (and must be at the newest revision)."""
    from alembic import command

    with schema_change_connection(url) as connection:
        found = read_ledger_schema(connection)
        if not found.is_empty:
            require_current(found)
            return
        SQLModel.metadata.create_all(connection, tables=[t.__table__ for t in schema.ALL_TABLES])
        install_store_guards(connection)
        command.stamp(alembic_config(connection), migration_revisions().head)


def upgrade_ledger(url: str, directory: Path = MIGRATIONS_DIRECTORY,
                   now: datetime | None = None, archive_root: Path | None = None) -> UpgradeOutcome:
    """Bring the ledger at `url` to the newest revision in `directory` (see the module).

    archive_root: the archive the ledger's nights wrote, adopted when the ledger does not
    yet record its partitions (ledger/archive_adoption.py)."""
    from alembic import command

    revisions = migration_revisions(directory)
    with schema_change_connection(url) as connection:
        found = read_ledger_schema(connection)
        if found.is_empty:
            raise LedgerSchemaError(f"no creditbooks ledger at {_shown_url(url)}; "
                                    "run `creditbooks init` (upgrade changes existing ledgers)")
        if found.revision == revisions.head:
            return UpgradeOutcome(found.shown, revisions.head, [], None)
        try:
            require_current(found, directory)
        except LedgerNeedsUpgradeError:
            pass  # what this function is for; any other refusal stands
        backup = (_backup_sqlite(url, found.shown, now or datetime.now(UTC))
                  if connection.dialect.name == "sqlite" else None)
        config = alembic_config(connection, directory)
        if found.revision is None:
            command.stamp(config, BASELINE_REVISION)
        command.upgrade(config, "head")
        install_store_guards(connection)
        _require_upgraded(connection, revisions.head, directory)
        adopted = 0
        if _records_partitions(connection):
            adopted = adopt_archive(connection, archive_root)
            _seal_what_was_kept_unsealed(connection)
    return UpgradeOutcome(found.shown, revisions.head,
                          revisions.after(found.effective_revision), backup, adopted)


def _seal_what_was_kept_unsealed(connection: Connection) -> None:
    # Imported here: ledger.record_chain needs ledger.chain, whose ledger.store imports this.
    from ledger.record_chain import seal_unsealed_partitions_and_policy_versions

    seal_unsealed_partitions_and_policy_versions(connection)


def _records_partitions(connection: Connection) -> bool:
    """Whether the schema now has the record of archive partitions (a test may upgrade
    with migrations of its own that stop before it)."""
    return schema.ArchivedPartition.__tablename__ in inspect(connection).get_table_names()


def _require_upgraded(connection: Connection, head: str, directory: Path) -> None:
    recorded = read_ledger_schema(connection).revision
    if recorded != head:
        raise LedgerSchemaError(f"the migrations ended at {recorded}, not {head}; "
                                "nothing was changed")
    differences = schema_differences(connection)
    if differences:
        raise LedgerSchemaError(
            f"after the migrations the ledger's schema still differs from this version's "
            f"models ({'; '.join(difference.message for difference in differences)}); "
            f"nothing was changed: a migration in "
            f"{directory / 'versions'} is missing or incomplete")


def _backup_sqlite(url: str, shown: str, now: datetime) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise LedgerSchemaError("an in-memory SQLite database has no ledger to upgrade")
    source = Path(database)
    stem = f"{source.name}.backup-{shown}-{now:%Y%m%dT%H%M%SZ}"
    # A backup that exists is never overwritten: an upgrade run again within the same
    # second (after a refused one) takes the next free name.
    candidates = (source.with_name(stem if number == 1 else f"{stem}-{number}")
                  for number in range(1, 1000))
    target = next((candidate for candidate in candidates if not candidate.exists()), None)
    if target is None:
        raise LedgerSchemaError(f"999 backups named {stem} exist already; none is overwritten")
    # The upgrade's connection holds the write lock (and SQLite will not copy through a
    # connection that holds it): a second one reads the ledger exactly as the upgrade
    # found it, since nobody else can write until the upgrade ends.
    reader = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)
    copy = sqlite3.connect(target)
    try:
        reader.backup(copy)
    except BaseException:
        copy.close()
        target.unlink()  # no half-made backup left to be mistaken for a whole one
        raise
    finally:
        copy.close()
        reader.close()
    os.chmod(target, source.stat().st_mode & 0o777)  # as private as the ledger itself
    return target


SCHEMA_SOURCE = "ledger schema"


def schema_differences(connection: Connection) -> list[BooksError]:
    """How the database's schema differs from the models, one phrase a difference, with the
    table it concerns as the entry; empty when they agree. Alembic's comparison (tables,
    columns, types, nullability, indexes, unique and foreign keys) plus CHECK constraints
    by name."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    context = MigrationContext.configure(connection, opts={
        "version_table": VERSION_TABLE, "compare_type": True,
        "include_object": include_object_for(connection.dialect.name)})
    found = [BooksError(SCHEMA_SOURCE, _described(difference), _table_of(difference))
             for difference in compare_metadata(context, SQLModel.metadata)]
    return found + _check_constraint_differences(connection)


def _table_of(difference) -> str | None:
    """The table an Alembic difference concerns: a Table, an index's or constraint's table,
    or the table name that follows the schema in a column difference."""
    if isinstance(difference, list):  # one column's changes, all on one table
        return _table_of(difference[0])
    action, *details = difference
    for detail in details:
        table = getattr(detail, "table", None)
        if table is not None and hasattr(table, "name"):
            return table.name
        if hasattr(detail, "columns") and hasattr(detail, "name"):  # a Table
            return detail.name
    # modify_type, modify_nullable, ...: (action, schema, table name, column name, ...)
    return details[1] if action.startswith("modify_") and len(details) > 1 else None


def _described(difference) -> str:
    if isinstance(difference, list):  # one column's changes
        return "; ".join(_described(part) for part in difference)
    action, *details = difference
    named = [str(getattr(detail, "name", None) or detail) for detail in details
             if detail is not None and not isinstance(detail, dict)]
    return " ".join([action, *named])


def _check_constraint_differences(connection: Connection) -> list[BooksError]:
    inspector = inspect(connection)
    existing = set(inspector.get_table_names())
    found = []
    for table in SQLModel.metadata.sorted_tables:
        if table.name not in existing:
            continue  # Alembic's comparison names the missing table
        modelled = {constraint.name for constraint in table.constraints
                    if isinstance(constraint, CheckConstraint)}
        stored = {constraint["name"] for constraint in inspector.get_check_constraints(table.name)}
        found += [BooksError(SCHEMA_SOURCE, f"missing check constraint {table.name}.{name}",
                             table.name) for name in sorted(modelled - stored, key=str)]
        found += [BooksError(SCHEMA_SOURCE, f"unexpected check constraint {table.name}.{name}",
                             table.name) for name in sorted(stored - modelled, key=str)]
    return found


def _shown_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)
