"""Schema migrations: a ledger made by v0.1.0 upgrades to this version and keeps its books.

The fixtures (tests/fixtures/v0.1.0/, made by scripts/make-v010-fixtures.sh with the v0.1.0
code itself) are the demo's first five nights on SQLite and as a PostgreSQL dump, with the
books v0.1.0 reported for them. Each test upgrades a copy and compares; before the upgrade
every command refuses the ledger and `init` leaves it as it is. The models and the
migrations are held to each other on both stores.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text
from sqlmodel import SQLModel

from ledger.errors import BooksError
from ledger.guards import APPEND_ONLY_TABLES
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
from ledger.store import Store
from ledger.upgrade import (
    alembic_config,
    schema_change_connection,
    schema_differences,
    upgrade_ledger,
)

pytestmark = pytest.mark.slow  # upgrades real ledgers in processes of their own

REPOSITORY = Path(__file__).resolve().parents[1]
FIXTURES = REPOSITORY / "tests" / "fixtures" / "v0.1.0"
RECORDED_BOOKS = json.loads((FIXTURES / "books.json").read_text(encoding="utf-8"))
STORES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def alembic_head() -> str:
    """The newest revision as Alembic itself reads the migration files."""
    return ScriptDirectory(str(MIGRATIONS_DIRECTORY)).get_current_head()


def refusal(found: str) -> str:
    return (f"creditbooks: error: ledger schema {found}, this version needs {alembic_head()}: "
            "run creditbooks upgrade")


def creditbooks(*arguments, cwd: Path) -> subprocess.CompletedProcess:
    """The command line of this checkout, in a process of its own."""
    program = "import sys; from creditbooks.cli import main; sys.argv[0] = 'creditbooks'; main()"
    return subprocess.run([sys.executable, "-c", program, *arguments], cwd=cwd,
                          capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(cwd),
                               "PYTHONPATH": str(REPOSITORY)})


def _record_books_module():
    spec = importlib.util.spec_from_file_location("record_books",
                                                  REPOSITORY / "scripts" / "record_books.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def books_now(url: str) -> dict:
    """The books this version reports, read as the fixture script read v0.1.0's; a lot's
    manual_journals column (v0.1.0 had no manual journals: always zero here) set aside."""
    books = _record_books_module().recorded_books(url)
    for lot in books["lot_balances"]:
        assert Decimal(lot.pop("manual_journals")) == 0
    return books


def ledger_state(url: str) -> dict:
    """Every table with its row count, and the revision recorded (if any)."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            tables = sorted(inspect(connection).get_table_names())
            counts = {table: connection.execute(text(f'SELECT COUNT(*) FROM "{table}"')).scalar()
                      for table in tables}
    finally:
        engine.dispose()
    return {"tables": tables, "rows": counts}


def restore_postgresql_dump(server, dump: Path) -> str:
    url = server.create_database()
    database = url.rsplit("/", 1)[1]
    subprocess.run([str(server.binaries / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
                    "-h", "127.0.0.1", "-p", str(server.port), "-U", "postgres", "-d", database,
                    "-f", str(dump)], check=True, capture_output=True)
    return url


@pytest.fixture(params=STORES)
def v010_ledger(request, tmp_path) -> str:
    """A copy of the v0.1.0 fixture ledger on the store asked for; its URL."""
    if request.param == "sqlite":
        shutil.copyfile(FIXTURES / "ledger.sqlite", tmp_path / "ledger.sqlite")
        return f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    return restore_postgresql_dump(request.getfixturevalue("postgres_server"),
                                   FIXTURES / "ledger.postgresql.sql")


@pytest.fixture(params=STORES)
def empty_database(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.sqlite'}"
    return request.getfixturevalue("postgres_server").create_database()


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_fixture_is_a_v010_ledger_as_v010_recorded_it(tmp_path):
    assert RECORDED_BOOKS["recorded_by"].endswith("v010/ledger/store.py")
    assert RECORDED_BOOKS["chain_head"]["sequence"] == 30
    assert (FIXTURES / "ledger.sqlite").stat().st_size < 2_000_000
    shutil.copyfile(FIXTURES / "ledger.sqlite", tmp_path / "copy.sqlite")
    engine = create_engine(f"sqlite:///{tmp_path / 'copy.sqlite'}")
    with engine.connect() as connection:
        found = read_ledger_schema(connection)
    engine.dispose()
    assert (found.revision, found.has_ledger_tables, found.shown) == (None, True, "v0.1.0")


def test_every_command_refuses_a_v010_ledger_in_one_line_and_changes_nothing(v010_ledger,
                                                                             tmp_path):
    before = ledger_state(v010_ledger)
    for arguments in (["balances"], ["verify"], ["nightly", "--date", "2026-01-06"],
                      ["report", "trial-balance", "--period", "2026-01"]):
        refused = creditbooks("--db", v010_ledger, *arguments, cwd=tmp_path)
        assert refused.returncode == 1, arguments
        assert refused.stderr.splitlines() == [refusal("v0.1.0")], arguments
        assert refused.stdout == ""
    assert ledger_state(v010_ledger) == before


def test_init_never_alters_a_v010_ledger(v010_ledger, tmp_path):
    before = ledger_state(v010_ledger)
    sqlite_file = Path(v010_ledger.removeprefix("sqlite:///"))
    digest = file_digest(sqlite_file) if v010_ledger.startswith("sqlite") else None
    refused = creditbooks("--db", v010_ledger, "init", cwd=tmp_path)
    assert (refused.returncode, refused.stderr.splitlines()) == (1, [refusal("v0.1.0")])
    assert ledger_state(v010_ledger) == before
    assert VERSION_TABLE not in before["tables"]
    if digest:
        assert file_digest(sqlite_file) == digest


def test_upgrade_keeps_the_books_v010_recorded_and_verify_passes(v010_ledger, tmp_path):
    rows_before = ledger_state(v010_ledger)["rows"]
    without_archive = creditbooks("--db", v010_ledger, "upgrade", cwd=tmp_path)
    assert without_archive.returncode == 1
    assert without_archive.stderr.splitlines()[-1] == (
        "creditbooks: error: the ledger's nights archived 9 partitions that it does not "
        "record yet: run creditbooks upgrade --archive DIR with the archive they were posted "
        "with; nothing was changed")
    assert ledger_state(v010_ledger)["rows"] == rows_before
    for backup in tmp_path.glob("ledger.sqlite.backup-*"):
        backup.unlink()  # the refused upgrade's copy, taken before it found no archive
    archive = tmp_path / "archive"
    shutil.copytree(FIXTURES / "archive", archive)
    upgraded = creditbooks("--db", v010_ledger, "upgrade", "--archive", str(archive), cwd=tmp_path)
    assert upgraded.returncode == 0, upgraded.stderr
    lines = upgraded.stdout.splitlines()
    if v010_ledger.startswith("sqlite"):
        database = Path(v010_ledger.removeprefix("sqlite:///"))
        backups = list(database.parent.glob("ledger.sqlite.backup-v0.1.0-*"))
        assert len(backups) == 1
        assert lines[0] == f"backup of the ledger before the upgrade: {backups[0]}"
        # The copy is the v0.1.0 ledger as it was: the same books, no version table.
        shutil.copyfile(FIXTURES / "ledger.sqlite", tmp_path / "original.sqlite")
        assert books_now(f"sqlite:///{backups[0]}") == books_now(
            f"sqlite:///{tmp_path / 'original.sqlite'}")
        assert VERSION_TABLE not in ledger_state(f"sqlite:///{backups[0]}")["tables"]
        lines = lines[1:]
    after_baseline = migration_revisions().after(BASELINE_REVISION)
    assert lines[0] == f"archive partitions adopted from {archive}: 9"
    lines = lines[1:]
    assert lines == [f"ledger at {v010_ledger} upgraded from schema v0.1.0 to {alembic_head()}; "
                     "migrations run: "
                     f"{', '.join(after_baseline) or 'none (its revision is now recorded)'}"]
    recorded = {key: value for key, value in RECORDED_BOOKS.items() if key != "recorded_by"}
    assert books_now(v010_ledger) == recorded
    rows_after = ledger_state(v010_ledger)["rows"]
    assert rows_after[VERSION_TABLE] == 1
    assert {table: rows_after[table] for table in rows_before} == rows_before
    verified = creditbooks("--db", v010_ledger, "verify", "--format", "json",
                           "--archive", str(archive), cwd=tmp_path)
    assert verified.returncode == 0, verified.stderr
    checks = json.loads(verified.stdout)
    assert all(check["passed"] for check in checks)
    assert checks[-1]["detail"] == "9 partitions, each as its batch recorded it"
    head = RECORDED_BOOKS["chain_head"]["chain_hash"]
    assert checks[0]["detail"] == f"30 entries; head 30 {head}"
    again = creditbooks("--db", v010_ledger, "upgrade", cwd=tmp_path)
    assert again.stdout.splitlines() == [f"ledger at {v010_ledger} is at {alembic_head()}; "
                                         "nothing to upgrade"]


@pytest.mark.postgres
def test_postgresql_guards_stand_after_the_upgrade(postgres_server, tmp_path):
    url = restore_postgresql_dump(postgres_server, FIXTURES / "ledger.postgresql.sql")
    upgrade_ledger(url, archive_root=FIXTURES / "archive")
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            triggers = {row[0] for row in connection.execute(text(
                "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"))}
            with pytest.raises(Exception, match="the journal is append-only"):
                connection.execute(text("DELETE FROM journal_lines"))
    finally:
        engine.dispose()
    assert {"journal_lines_append_only", "journal_lines_balanced", "journal_entries_open_period",
            "batches_keep_posted", "period_events_append_only"} <= triggers


@pytest.mark.parametrize("store_kind", STORES)
def test_an_upgrade_that_does_not_reach_the_models_changes_nothing(store_kind, request, tmp_path):
    """A ledger that is not quite v0.1.0's (a column missing, as an earlier build made it)
    is refused by the upgrade's last check, and the version it stamped is rolled back."""
    if store_kind == "sqlite":
        shutil.copyfile(FIXTURES / "ledger.sqlite", tmp_path / "ledger.sqlite")
        url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    else:
        url = restore_postgresql_dump(request.getfixturevalue("postgres_server"),
                                      FIXTURES / "ledger.postgresql.sql")
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("ALTER TABLE fx_rates DROP COLUMN payload_hash"))
    engine.dispose()
    before = ledger_state(url)
    refused = creditbooks("--db", url, "upgrade", cwd=tmp_path)
    assert refused.returncode == 1
    assert refused.stderr.splitlines() == [
        "creditbooks: error: after the migrations the ledger's schema still differs from this "
        "version's models (add_column fx_rates payload_hash); nothing was changed: a migration "
        f"in {MIGRATIONS_DIRECTORY / 'versions'} is missing or incomplete"]
    assert ledger_state(url) == before  # no version table: the stamp was rolled back


def test_a_later_migration_runs_in_the_upgrade_and_names_the_revisions(tmp_path):
    """What the next schema change goes through: one more file in versions/, after the
    newest. On SQLite its batch operation rebuilds `lots`, which other tables refer to,
    inside the transaction."""
    newest = alembic_head()
    migrations = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIRECTORY, migrations,
                    ignore=shutil.ignore_patterns("__pycache__"))
    (migrations / "versions" / "0002test_rebuild_lots.py").write_text(f'''
"""Rebuild lots (SQLite copies the table; PostgreSQL alters it in place)."""
from alembic import op
import sqlalchemy as sa

revision = "0002test"
down_revision = "{newest}"


def upgrade():
    with op.batch_alter_table("lots") as batch_op:
        batch_op.add_column(sa.Column("scratch", sa.Integer(), nullable=True))
    with op.batch_alter_table("lots") as batch_op:
        batch_op.drop_column("scratch")
''', encoding="utf-8")
    shutil.copyfile(FIXTURES / "ledger.sqlite", tmp_path / "ledger.sqlite")
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    assert upgrade_ledger(url, archive_root=FIXTURES / "archive").to_revision == newest
    with create_engine(url).connect() as connection:
        with pytest.raises(LedgerNeedsUpgradeError) as refused:
            require_current(read_ledger_schema(connection), migrations)
    assert str(refused.value) == (f"ledger schema {newest}, this version needs "
                                  "0002test: run creditbooks upgrade")
    outcome = upgrade_ledger(url, migrations, now=datetime(2026, 5, 1, 12, 0, tzinfo=UTC))
    assert (outcome.from_schema, outcome.to_revision, outcome.migrations_run) == (
        newest, "0002test", ["0002test"])
    assert outcome.backup == tmp_path / f"ledger.sqlite.backup-{newest}-20260501T120000Z"
    assert outcome.backup.exists()
    recorded = {key: value for key, value in RECORDED_BOOKS.items() if key != "recorded_by"}
    assert books_now(url) == recorded
    with create_engine(url).connect() as connection:
        assert read_ledger_schema(connection).revision == "0002test"
        assert connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall() == []
        assert schema_differences(connection) == []


def test_a_ledger_from_a_newer_version_is_refused(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    store.initialise()
    with store.transaction() as connection:
        connection.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = 'f00dfeedbeef'"))
    with pytest.raises(LedgerSchemaError) as refused:
        store.require_initialised()
    assert str(refused.value) == (
        f"ledger schema f00dfeedbeef is not one this version knows (its newest is "
        f"{alembic_head()}): the ledger was made or upgraded by a newer creditbooks; use that "
        "version")
    with pytest.raises(LedgerSchemaError):
        store.initialise()
    store.dispose()


def test_init_makes_a_ledger_at_the_newest_revision_and_repeats_safely(empty_database):
    store = Store(empty_database)
    store.initialise()
    store.initialise()
    with store.engine.connect() as connection:
        assert read_ledger_schema(connection).revision == alembic_head()
        assert schema_differences(connection) == []
    store.require_initialised()
    store.dispose()


def test_a_schema_difference_is_data_naming_its_table(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    store.initialise()
    with store.transaction() as connection:
        connection.execute(text("ALTER TABLE fx_rates DROP COLUMN payload_hash"))
    with store.engine.connect() as connection:
        assert schema_differences(connection) == [
            BooksError("ledger schema", "add_column fx_rates payload_hash", "fx_rates")]
    store.dispose()


def test_the_models_and_the_migrations_agree(empty_database):
    """A database built by the migrations alone is what the models describe: Alembic's
    autogenerate finds nothing to add, and the CHECK constraints (which it does not
    compare) have the same names."""
    with schema_change_connection(empty_database) as connection:
        command.upgrade(alembic_config(connection), "head")
    engine = create_engine(empty_database)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={
                "version_table": VERSION_TABLE, "compare_type": True})
            assert compare_metadata(context, SQLModel.metadata) == []
            assert schema_differences(connection) == []
            assert read_ledger_schema(connection).revision == alembic_head()
    finally:
        engine.dispose()


def test_the_migrations_refuse_replace_as_a_fresh_ledger_does(tmp_path):
    """The REPLACE triggers a migration wrote out are the ones `init` installs from
    ledger/guards.py, word for word. (An append-only table added later may leave its
    triggers to the upgrade, which installs every guard after the migrations.)"""
    def replace_triggers(url: str) -> dict[str, str]:
        engine = create_engine(url)
        try:
            with engine.connect() as connection:
                return dict(connection.execute(text(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
                    "AND name LIKE '%no_replace'")).all())
        finally:
            engine.dispose()

    migrated = f"sqlite:///{tmp_path / 'migrated.sqlite'}"
    with schema_change_connection(migrated) as connection:
        command.upgrade(alembic_config(connection), "head")
    fresh = Store(f"sqlite:///{tmp_path / 'fresh.sqlite'}")
    fresh.initialise()
    fresh.dispose()
    installed = replace_triggers(fresh.url)
    assert sorted(installed) == sorted(f"{table}_no_replace" for table in APPEND_ONLY_TABLES)
    written_out = replace_triggers(migrated)
    assert {"journal_entries_no_replace", "journal_lines_no_replace", "journal_seals_no_replace",
            "period_events_no_replace"} <= set(written_out)
    assert written_out == {name: installed[name] for name in written_out}


def test_the_newest_revision_is_read_as_alembic_reads_it():
    scripts = ScriptDirectory(str(MIGRATIONS_DIRECTORY))
    revisions = migration_revisions()
    assert revisions.head == scripts.get_current_head()
    assert revisions.down_revisions == {
        script.revision: script.down_revision for script in scripts.walk_revisions()}
    assert revisions.after(BASELINE_REVISION) == [
        script.revision for script in reversed(list(scripts.walk_revisions()))][1:]


def test_the_migrations_ship_inside_the_installed_package(tmp_path):
    """What setuptools installs (its build_py, as a wheel or an install runs it) holds
    env.py, the template and every version file."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copyfile(REPOSITORY / name, source / name)
    for package in ("ledger", "rules", "reports", "creditbooks"):
        shutil.copytree(REPOSITORY / package, source / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-c", "import setuptools; setuptools.setup()", "-q",
                    "build_py", "-d", str(tmp_path / "installed")], cwd=source, check=True,
                   capture_output=True)
    names = {path.relative_to(tmp_path / "installed").as_posix()
             for path in (tmp_path / "installed").rglob("*") if path.is_file()}
    versions = {f"ledger/migrations/versions/{path.name}"
                for path in (MIGRATIONS_DIRECTORY / "versions").glob("*.py")}
    assert {"ledger/migrations/env.py", "ledger/migrations/script.py.mako",
            "ledger/upgrade.py", "ledger/schema_version.py"} | versions <= names


@pytest.mark.postgres
def test_the_application_role_reads_the_revision_and_cannot_change_it(postgres_server, tmp_path):
    import psycopg

    url = postgres_server.create_database()
    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql"),
                         autocommit=True) as admin:
        admin.execute("DO $$ BEGIN CREATE ROLE creditbooks_app LOGIN; "
                      "EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    made = creditbooks("--db", url, "init", "--application-role", "creditbooks_app",
                       cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    application_url = url.replace("postgres@", "creditbooks_app@")
    listed = creditbooks("--db", application_url, "balances", "--format", "json", cwd=tmp_path)
    assert (listed.returncode, listed.stderr, json.loads(listed.stdout)) == (0, "", [])
    with psycopg.connect(application_url.replace("postgresql+psycopg", "postgresql")) as role:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            role.execute(f"UPDATE {VERSION_TABLE} SET version_num = 'x'")


def test_after_the_upgrade_a_resent_event_of_a_v010_night_is_a_duplicate(tmp_path):
    shutil.copyfile(FIXTURES / "ledger.sqlite", tmp_path / "ledger.sqlite")
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    archive = tmp_path / "archive"
    shutil.copytree(FIXTURES / "archive", archive)
    upgraded = creditbooks("--db", url, "upgrade", "--archive", str(archive), cwd=tmp_path)
    assert upgraded.returncode == 0, upgraded.stderr
    # Two events v0.1.0 accepted on 2026-01-05, re-sent on 01-06: one as it was, one changed.
    accepted = pd.read_parquet(archive / "usage" / "business_date=2026-01-05" / "rows.parquet")
    sent = accepted.iloc[:2].assign(
        occurred_at=accepted["occurred_at"].iloc[:2].dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
        credits=(accepted["credits_micro"].iloc[:2] / 1_000_000).map("{:.6f}".format),
        quantity=(accepted["quantity_micro"].iloc[:2] / 1_000_000).map("{:.6f}".format))
    sent.loc[sent.index[1], "credits"] = "1.000000"
    day = tmp_path / "landing" / "2026-01-06"
    day.mkdir(parents=True)
    sent[["event_id", "customer_id", "occurred_at", "meter", "credits", "quantity"]].to_csv(
        day / "usage.csv", index=False)
    night = creditbooks("--db", url, "nightly", "--date", "2026-01-06", "--landing",
                        str(tmp_path / "landing"), "--archive", str(archive), "--format", "json",
                        cwd=tmp_path)
    assert night.returncode == 0, night.stderr
    outcome = json.loads(night.stdout)[0]
    assert (outcome["rows_read"], outcome["accepted"], outcome["duplicates"],
            outcome["rejected"]) == (2, 0, 1, 1)
    conflicts = creditbooks("--db", url, "exceptions", "--format", "json", cwd=tmp_path)
    assert "event_id was accepted on 2026-01-05 with different contents" in conflicts.stdout


def test_the_baseline_is_never_downgraded_and_the_books_stay(tmp_path):
    """Downgrading below v0.1.0 would drop every table: it is refused, and nothing changes."""
    from alembic import command

    from ledger.upgrade import alembic_config, schema_change_connection

    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    Store(url).initialise()
    before = ledger_state(url)
    with pytest.raises(LedgerSchemaError, match="never taken below its v0.1.0 baseline"):
        with schema_change_connection(url) as connection:
            command.downgrade(alembic_config(connection), "base")
    assert ledger_state(url) == before
