"""Alembic's entry point: run the migrations against the ledger database.

`creditbooks upgrade` passes its own connection (in `config.attributes["connection"]`),
already inside the one transaction the whole upgrade runs in; the `alembic` command line
(for writing migrations, see alembic.ini) gets one here from `-x db=URL`, else
$CREDITBOOKS_DB, else creditbooks.db in the working directory.
"""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel
from sqlmodel.sql.sqltypes import AutoString

import ledger.schema  # noqa: F401  (the models fill SQLModel.metadata)
from ledger.schema_version import VERSION_TABLE
from ledger.upgrade import include_object_for, schema_change_connection

config = context.config


def _database_url() -> str:
    import os
    from pathlib import Path

    return (context.get_x_argument(as_dictionary=True).get("db")
            or os.environ.get("CREDITBOOKS_DB") or f"sqlite:///{Path.cwd() / 'creditbooks.db'}")


def _render_item(type_, object_, autogen_context):
    """SQLModel's AutoString is a VARCHAR: written as sa.String, so that a migration needs
    SQLAlchemy only and stays as written whatever SQLModel does later."""
    if type_ == "type" and isinstance(object_, AutoString):
        return f"sa.String(length={object_.length})" if object_.length else "sa.String()"
    return False


def _run(connection) -> None:
    context.configure(
        connection=connection, target_metadata=SQLModel.metadata, version_table=VERSION_TABLE,
        # SQLite changes a table by copying it; autogenerate writes batch operations so
        # that one migration file serves both stores.
        render_as_batch=True, compare_type=True, render_item=_render_item,
        include_object=include_object_for(connection.dialect.name),
        transaction_per_migration=False)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    context.configure(url=_database_url(), target_metadata=SQLModel.metadata,
                      version_table=VERSION_TABLE, render_as_batch=True, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
elif config.attributes.get("connection") is not None:
    _run(config.attributes["connection"])
else:
    with schema_change_connection(_database_url()) as own_connection:
        _run(own_connection)
