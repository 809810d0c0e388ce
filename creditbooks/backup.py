"""Backup and restore of the ledger, on either store: one consistent snapshot out, the same
books back in.

A backup is one snapshot of the database, so it holds whole nights only, even when it is
taken while a night runs. The command line posts a night in one transaction, which is in
the snapshot completely or not at all. Airflow runs a night as one transaction per
stage, so a snapshot can hold a batch that is still open: it has some of its stages and
is not published yet. Statements, closes and exports read published batches only, and
running that night again finishes it from the stages it already has.

- SQLite: the backup API (`sqlite3.Connection.backup`) copies every page in one step,
  under one read transaction. In WAL mode that read neither waits for a night's write
  transaction nor sees it. The copy is switched to a rollback journal so that it is one
  self-contained file, and checked with `PRAGMA quick_check`.
- PostgreSQL: `pg_dump --format=custom`, run inside a REPEATABLE READ snapshot that this
  module exports and also reads its summary from (`--snapshot`), so the summary printed
  is the dump's own. Restore pipes `pg_restore` into `psql` as one transaction that
  first takes the posting lock (no night can post while the books are replaced). Owners
  and grants are left out, so the target's roles need not exist.
  `creditbooks init --application-role ROLE` grants them again.

A backup is written to a partial file beside FILE and linked into place only when it is
whole. An existing FILE is never overwritten. Restore refuses to overwrite a database that
already holds a ledger unless told (`replace`), and a backup from a newer creditbooks. A
backup at an older schema is restored as it is, and `creditbooks upgrade` brings it
forward.

Restore verifies the backup before it touches the ledger: the backup is first restored into
a scratch database (SQLite: a temporary file; PostgreSQL: a temporary database on the same
server, dropped after) and verify's checks of the database run there (both chains, the
period events and, given the policy, the controls; a backup at an older schema, its journal
chain). A backup that fails is refused, naming the first check, and the ledger is left as
it was. Before a ledger that holds anything is replaced, a safety copy of it is written (the
same snapshot as a backup: SQLite, `<db>.before-restore-<UTC time>` beside it; PostgreSQL,
`<database>.before-restore-<UTC time>.dump` beside the backup; or the path given) and named
in the outcome, so a wrong `--replace` can be undone by restoring that copy.

Over a ledger, the backup must be that ledger's own books (`creditbooks.restore_lineage`):
a backup whose journal or record seal differs from the ledger's at a sequence both hold is
a re-sealed rewrite and is refused; one of another ledger (another ledger id) needs
`other_ledger`. The append-only guards are installed on the restored books as `init`
installs them, since a backup of a ledger whose triggers were dropped holds none.

What restore cannot bring back is what lives outside the database. Archive files no
restored batch recorded are ignored. Anchors beyond the restored chain head make
`verify --anchors` fail until the nights after the backup are run again. See the
README's "Backup and restore".
"""

from __future__ import annotations

import glob
import os
import shutil
import sqlite3
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, create_engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DatabaseError
from sqlalchemy.pool import NullPool

from ledger.chain import ChainHead, chain_head, verify_chain
from ledger.domain import BatchStatus
from ledger.locks import POSTING_LOCK_KEY
from ledger.schema import ALL_TABLES
from ledger.schema_version import (
    V0_1_0_TABLES,
    VERSION_TABLE,
    LedgerNeedsUpgradeError,
    LedgerSchema,
    LedgerSchemaError,
    read_ledger_schema,
    require_current,
)
from ledger.store import redacted

if TYPE_CHECKING:
    from rules.policy import Policy

SQLITE_MAGIC = b"SQLite format 3\x00"
PG_DUMP_MAGIC = b"PGDMP"
PG_BINARIES_ENVIRONMENT_VARIABLE = "CREDITBOOKS_PG_BIN"


class BackupError(RuntimeError):
    """A backup or restore that cannot be made as asked; the message says what to change."""


@dataclass(frozen=True)
class LedgerSummary:
    """What a ledger holds, as a backup or a restore reports it."""

    schema: str  # its revision, or v0.1.0
    head: ChainHead  # the journal chain's head: its sequence is the entries sealed
    published_nights: int
    last_published: date | None
    open_batches: tuple[tuple[str, date], ...]  # (batch id, business date) still running
    unpublished_entries: int  # entries of open batches (not in any statement)

    def lines(self) -> list[str]:
        last = self.last_published.isoformat() if self.last_published else "none"
        shown = [f"schema {self.schema}; chain head {self.head.sequence} {self.head.chain_hash}",
                 f"entries sealed: {self.head.sequence}; nights published: "
                 f"{self.published_nights}, the last {last}"]
        for batch_id, business_date in self.open_batches:
            shown.append(f"batch {batch_id} of {business_date.isoformat()} is open (a night was "
                         f"running; {self.unpublished_entries} unpublished entries, in no "
                         f"statement): run the night of {business_date.isoformat()} again "
                         "to finish it")
        return shown


@dataclass(frozen=True)
class RestoreOutcome:
    summary: LedgerSummary
    needs_upgrade: bool  # the backup's schema is older than this version's
    verified: str  # what was checked on the backup before the ledger was touched
    safety_copy: Path | None = None  # the replaced ledger, kept; None when nothing was replaced
    guards_installed: int = 0  # append-only guards installed after restoring (0: older schema)
    lineage: str = ""  # over a ledger: how the backup's chains compare with the ledger's


def backup_ledger(url: str, target: Path) -> LedgerSummary:
    """Write one consistent snapshot of the ledger at `url` to `target` (never overwritten)."""
    target = Path(target)
    if target.exists():
        raise BackupError(f"backup {target} already exists; it is not overwritten: "
                          "give another --to")
    if not target.parent.is_dir():
        raise BackupError(f"backup {target}: directory {target.parent} does not exist")
    return _snapshot(url, target, any_database=False)


def _snapshot(url: str, target: Path, any_database: bool) -> LedgerSummary | None:
    """The backup of `url` written whole to `target`; with `any_database`, of a database
    that holds no ledger too (its summary is then None)."""
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    try:
        if make_url(url).get_backend_name() == "sqlite":
            summary = _backup_sqlite(_sqlite_file(url), partial, any_database)
        elif make_url(url).get_backend_name() == "postgresql":
            summary = _backup_postgresql(url, partial, any_database)
        else:
            raise BackupError(f"backup of {redacted(url)}: only SQLite and PostgreSQL ledgers")
        try:
            os.link(partial, target)  # whole, and never over a file that appeared meanwhile
        except FileExistsError:
            raise BackupError(f"backup {target} appeared while it was being written; it is "
                              "not overwritten: give another --to") from None
    finally:
        partial.unlink(missing_ok=True)
    return summary


def restore_ledger(url: str, source: Path, replace: bool = False,
                   policy: Policy | None = None, safety_copy: Path | None = None,
                   other_ledger: bool = False) -> RestoreOutcome:
    """Put the books of backup `source` into the (empty, or with `replace` any) ledger at
    `url`, once they pass verify's checks in a scratch database (with `policy`, its
    controls too) and, over a ledger, are that ledger's own books (an older or newer state
    of the same chains; another ledger's only with `other_ledger`); a ledger replaced is
    kept first (at `safety_copy`, else the default place). The append-only guards are
    installed on the restored books. The caller runs verify's checks on them after."""
    source = Path(source)
    kind = backup_kind(source)
    target_kind = make_url(url).get_backend_name()
    if kind != target_kind:
        raise BackupError(f"{source} is a {kind} backup: restore it into a {kind} ledger "
                          f"(--db), not {redacted(url)}")
    found = _backup_schema(kind, source)
    if found.is_empty:
        raise BackupError(f"{source} holds no creditbooks ledger; nothing was restored")
    needs_upgrade = _require_restorable(found, source)
    holds_something = _require_replaceable(url, replace)
    verified, lineage = _verify_backup(kind, source, url, policy, needs_upgrade,
                                       over_ledger=holds_something, other_ledger=other_ledger)
    kept = None
    if holds_something:
        kept = Path(safety_copy) if safety_copy else _safety_copy_path(kind, url, source)
        _write_safety_copy(url, kept)
    if kind == "sqlite":
        _restore_sqlite(source, _sqlite_file(url))
    else:
        _restore_postgresql(source, url, replace)
    installed = 0 if needs_upgrade else _install_guards(url)  # an upgrade installs its own
    with _engine_at(url) as engine, engine.connect() as connection:
        return RestoreOutcome(ledger_summary(connection), needs_upgrade, verified, kept,
                              installed, lineage)


def _install_guards(url: str) -> int:
    """Install the append-only guards on the ledger at `url`, as init does: a backup of a
    ledger whose triggers were dropped restores without them. Returns how many were missing."""
    from ledger.guards import missing_guards
    from ledger.upgrade import install_store_guards

    with _engine_at(url) as engine, engine.begin() as connection:
        missing = len(missing_guards(connection))
        install_store_guards(connection)
    return missing


def _verify_backup(kind: str, source: Path, url: str, policy: Policy | None,
                   needs_upgrade: bool, over_ledger: bool = False,
                   other_ledger: bool = False) -> tuple[str, str]:
    """Verify's checks on the backup restored into a scratch database (its guards installed
    first, as the restore installs them); what was checked. Over a ledger, the backup must
    be that ledger's books (`require_same_books`). A failure is refused before the ledger at
    `url` is touched. Returns (what was checked, how the chains compare ('' over none))."""
    with _scratch_database(kind, source, url) as scratch_url:
        if not needs_upgrade:
            _install_guards(scratch_url)
        failures, checked = _failed_checks(scratch_url, policy, needs_upgrade)
        lineage = ""
        if over_ledger and not failures:
            from creditbooks.restore_lineage import require_same_books

            lineage = require_same_books(scratch_url, url, source, other_ledger)
    if failures:
        raise BackupError(f"backup {source} fails verify ({failures[0]}); nothing was "
                          f"restored: {redacted(url)} is as it was")
    return checked, lineage


def _failed_checks(url: str, policy: Policy | None,
                   needs_upgrade: bool) -> tuple[list[str], str]:
    """('control: detail' of every check that fails, what was checked) on the ledger at
    `url`. An older schema has its journal chain checked (the rest needs the upgrade)."""
    from ledger.evidence import verify_evidence
    from ledger.store import Store
    from reports.controls import run_controls

    store = Store(url)
    try:
        with store.engine.connect() as connection:
            if needs_upgrade:
                chain = verify_chain(connection)
                rows = [{"control": "journal hash chain", "passed": chain.holds,
                         "detail": chain.first_mismatch}]
            else:
                rows = [check.as_dict() for check in verify_evidence(connection)]
        checked = ("its journal hash chain (an older schema: verify the rest after upgrade)"
                   if needs_upgrade else "both hash chains and the period events")
        if policy is not None and not needs_upgrade:
            rows += [result.as_dict() for result in run_controls(
                store, policy.accounts.deferred_revenue, policy.functional_currency)]
            checked += ", and the controls"
    finally:
        store.dispose()
    return [f"{row['control']}: {row['detail']}" for row in rows if not row["passed"]], checked


@contextmanager
def _scratch_database(kind: str, source: Path, url: str) -> Iterator[str]:
    """The backup restored into a scratch database, removed after: SQLite, a temporary
    file; PostgreSQL, a temporary database on the ledger's server."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="creditbooks-restore-check-") as directory:
            scratch = Path(directory) / "backup-check.db"
            _restore_sqlite(source, scratch)
            yield f"sqlite:///{scratch}"
        return
    name = f"creditbooks_restore_check_{uuid.uuid4().hex[:12]}"  # made here, not from input
    with _engine_at(url) as engine, engine.connect().execution_options(
            isolation_level="AUTOCOMMIT") as connection:
        try:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        except DatabaseError as error:
            reason = str(error.orig).strip().splitlines()[0]
            raise BackupError(f"restore verifies the backup in a scratch database first, and "
                              f"one cannot be made on {redacted(url)} ({reason}): give the "
                              "role CREATEDB; nothing was restored") from None
        try:
            scratch_url = make_url(url).set(database=name).render_as_string(hide_password=False)
            _restore_postgresql(source, scratch_url, replace=False)
            yield scratch_url
        finally:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _safety_copy_path(kind: str, url: str, source: Path) -> Path:
    """Where the ledger a restore replaces is kept by default: SQLite, beside the ledger
    file; PostgreSQL, beside the backup."""
    stamp = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    if kind == "sqlite":
        database = _sqlite_file(url)
        place, name, ending = database.parent, f"{database.name}.before-restore-{stamp}", ""
    else:
        place, ending = source.parent, ".dump"
        name = f"{make_url(url).database}.before-restore-{stamp}"
    # Two restores in one second: the second copy gets a number, never the first's name.
    candidates = [place / f"{name}{ending}"] + [place / f"{name}-{number}{ending}"
                                                for number in range(2, 100)]
    return next((path for path in candidates if not path.exists()), candidates[0])


def _write_safety_copy(url: str, target: Path) -> None:
    if target.exists():
        raise BackupError(f"safety copy {target} already exists; it is not overwritten: give "
                          "another --safety-copy; nothing was restored")
    if not target.parent.is_dir():
        raise BackupError(f"safety copy {target}: directory {target.parent} does not exist; "
                          "nothing was restored")
    try:
        _snapshot(url, target, any_database=True)
    except BackupError as error:
        raise BackupError(f"the safety copy of {redacted(url)} could not be written ({error}); "
                          "nothing was restored") from None


def backup_kind(source: Path) -> str:
    """'sqlite' or 'postgresql', from the backup file's first bytes."""
    try:
        with Path(source).open("rb") as handle:
            start = handle.read(len(SQLITE_MAGIC))
    except OSError as error:
        raise BackupError(f"backup {source} cannot be read "
                          f"({error.strerror or error.__class__.__name__})") from None
    if start.startswith(SQLITE_MAGIC):
        return "sqlite"
    if start.startswith(PG_DUMP_MAGIC):
        return "postgresql"
    raise BackupError(f"{source} is neither a SQLite ledger nor a pg_dump custom archive: "
                      "give a file `creditbooks backup` wrote")


def ledger_summary(connection: Connection) -> LedgerSummary:
    nights = connection.execute(text(
        "SELECT COUNT(*), MAX(business_date) FROM batches WHERE status <> :open"),
        {"open": BatchStatus.OPEN}).first()
    open_batches = tuple((row[0], _as_date(row[1])) for row in connection.execute(text(
        "SELECT batch_id, business_date FROM batches WHERE status = :open "
        "ORDER BY business_date"), {"open": BatchStatus.OPEN}))
    unpublished = connection.execute(text(
        "SELECT COUNT(*) FROM journal_entries e JOIN batches b ON b.batch_id = e.batch_id "
        "WHERE b.status = :open"), {"open": BatchStatus.OPEN}).scalar()
    return LedgerSummary(read_ledger_schema(connection).shown, chain_head(connection),
                         int(nights[0]), _as_date(nights[1]), open_batches, int(unpublished))


def _as_date(value) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])  # SQLite hands a DATE back as text


def _require_restorable(found: LedgerSchema, source: Path) -> bool:
    """True when the backup is at an older schema (restored as it is, then upgraded)."""
    try:
        require_current(found)
    except LedgerNeedsUpgradeError:
        return True
    except LedgerSchemaError as error:
        raise BackupError(f"backup {source}: {error}; nothing was restored") from None
    return False


def _require_replaceable(url: str, replace: bool) -> bool:
    """Whether the database at `url` holds anything (a ledger or other tables), once it may
    be written: empty, or `replace` given."""
    if make_url(url).get_backend_name() == "sqlite" and not _sqlite_file(url).exists():
        return False  # connecting would make the file; the restore makes it
    with _engine_at(url) as engine, engine.connect() as connection:
        existing = read_ledger_schema(connection)
        others = sorted(inspect(connection).get_table_names())
        if replace:
            return bool(others)
        if existing.is_empty:
            # Not a ledger, but maybe someone's data: restore writes only into an empty one.
            if others:
                raise BackupError(
                    f"{redacted(url)} is not empty (tables: {', '.join(others[:5])}"
                    f"{', ...' if len(others) > 5 else ''}); restore writes only into an empty "
                    "database: give --replace to overwrite it")
            return False
        last = connection.execute(text(
            "SELECT MAX(business_date) FROM batches WHERE status <> :open"),
            {"open": BatchStatus.OPEN}).scalar()
    raise BackupError(f"{redacted(url)} already holds a ledger (schema {existing.shown}, last "
                      f"published night {_as_date(last) or 'none'}); restore never overwrites "
                      "one silently: give --replace, or restore into an empty database")


@contextmanager
def _engine_at(url: str) -> Iterator:
    engine = create_engine(url, poolclass=NullPool)
    try:
        yield engine
    finally:
        engine.dispose()


# SQLite ---------------------------------------------------------------------------------

def _sqlite_file(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up or restored: "
                          "give --db sqlite:///FILE")
    return Path(database)


def _read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=60)


def _backup_sqlite(database: Path, partial: Path, any_database: bool = False) -> LedgerSummary | None:
    if not database.is_file():
        raise BackupError(f"no SQLite ledger at {database}: nothing to back up")
    source, copy = _read_only(database), sqlite3.connect(partial)
    try:
        # One step (pages=-1): every page under one read transaction, a single snapshot.
        source.backup(copy)
        copy.execute("PRAGMA journal_mode = DELETE")  # one file, no -wal beside it
        checked = copy.execute("PRAGMA quick_check").fetchone()[0]
        if checked != "ok":
            raise BackupError(f"the copy of {database} fails SQLite's quick_check ({checked}); "
                              "no backup was written")
        summary = _summary_over(copy)
    finally:
        copy.close()
        source.close()
    if summary is None and not any_database:
        raise BackupError(f"{database} holds no creditbooks ledger: nothing to back up")
    os.chmod(partial, database.stat().st_mode & 0o777)  # as private as the ledger itself
    return summary


def _summary_over(connection: sqlite3.Connection) -> LedgerSummary | None:
    """The summary of an open SQLite connection's ledger, None when it holds none."""
    engine = create_engine("sqlite://", creator=lambda: connection, poolclass=NullPool)
    with engine.connect() as over:
        if read_ledger_schema(over).is_empty:
            return None
        return ledger_summary(over)


def _restore_sqlite(source: Path, database: Path) -> None:
    if not database.parent.is_dir():
        raise BackupError(f"restore into {database}: directory {database.parent} does not exist")
    backup, target = _read_only(source), sqlite3.connect(database, timeout=60)
    try:
        # The backup API writes the target in one transaction under its write lock: other
        # connections see the old books or the restored ones, never a mix, and a -wal file
        # beside the target stays consistent with it (copying the file over would not).
        backup.backup(target)
    finally:
        target.close()
        backup.close()


def _sqlite_schema(source: Path) -> LedgerSchema:
    """The backup's schema, once SQLite finds the file whole (a cut or damaged copy is
    refused before anything is written)."""
    connection = _read_only(source)
    try:
        checked = connection.execute("PRAGMA quick_check").fetchone()[0]
        if checked != "ok":
            raise sqlite3.DatabaseError(checked)
        engine = create_engine("sqlite://", creator=lambda: connection, poolclass=NullPool)
        with engine.connect() as over:
            return read_ledger_schema(over)
    except (sqlite3.DatabaseError, DatabaseError) as error:
        reason = str(getattr(error, "orig", error)).strip().splitlines()[0]
        raise BackupError(f"backup {source} is damaged (SQLite: {reason}); nothing was "
                          "restored: restore another backup") from None
    finally:
        connection.close()


def _backup_schema(kind: str, source: Path) -> LedgerSchema:
    return _sqlite_schema(source) if kind == "sqlite" else _dump_schema(source)


# PostgreSQL -----------------------------------------------------------------------------

def postgresql_tool(name: str) -> Path:
    """A PostgreSQL client program: from $CREDITBOOKS_PG_BIN, else the newest
    /usr/lib/postgresql/N/bin, else the PATH."""
    directory = os.environ.get(PG_BINARIES_ENVIRONMENT_VARIABLE)
    candidates = [Path(directory) / name] if directory else []
    candidates += [Path(found) for found in sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
        key=lambda path: int(Path(path).parts[-3]) if Path(path).parts[-3].isdigit() else 0,
        reverse=True)]
    on_path = shutil.which(name)
    candidates += [Path(on_path)] if on_path else []
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise BackupError(f"PostgreSQL's {name} was not found: install the PostgreSQL client "
                      f"(the server's major version or newer) or set "
                      f"{PG_BINARIES_ENVIRONMENT_VARIABLE} to the directory that holds it")


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """The URL as a libpq connection string, and the environment that carries its
    password (never on a command line, where `ps` would show it)."""
    from psycopg.conninfo import make_conninfo

    parsed = make_url(url)
    keys = {"host": parsed.host, "port": str(parsed.port) if parsed.port else None,
            "user": parsed.username, "dbname": parsed.database,
            **{key: str(value) for key, value in parsed.query.items()}}
    environment = dict(os.environ)
    if parsed.password is not None:
        environment["PGPASSWORD"] = str(parsed.password)
    return make_conninfo(**{key: value for key, value in keys.items() if value}), environment


def _run_tool(command: list, environment: dict[str, str], what: str, **options) -> bytes:
    completed = subprocess.run([str(part) for part in command], env=environment,
                               capture_output=True, **options)
    if completed.returncode != 0:
        error = completed.stderr.decode(errors="replace").strip().splitlines()
        raise BackupError(f"{what} failed: {error[0] if error else f'exit {completed.returncode}'}")
    return completed.stdout


def _backup_postgresql(url: str, partial: Path, any_database: bool = False) -> LedgerSummary | None:
    conninfo, environment = _libpq(url)
    pg_dump = postgresql_tool("pg_dump")
    with _engine_at(url) as engine, engine.connect().execution_options(
            isolation_level="REPEATABLE READ") as connection, connection.begin():
        snapshot = connection.execute(text("SELECT pg_export_snapshot()")).scalar()
        if read_ledger_schema(connection).is_empty and not any_database:
            raise BackupError(f"no creditbooks ledger at {redacted(url)}: nothing to back up")
        summary = None if read_ledger_schema(connection).is_empty else ledger_summary(connection)
        # The dump reads the snapshot this transaction exported: what the summary read.
        _run_tool([pg_dump, "--format=custom", f"--snapshot={snapshot}", f"--file={partial}",
                   f"--dbname={conninfo}"], environment, f"pg_dump of {redacted(url)}")
    return summary


def _dump_tables(source: Path) -> set[str]:
    """The tables of schema public a pg_dump custom archive creates (from its listing)."""
    listing = _run_tool([postgresql_tool("pg_restore"), "--list", source], dict(os.environ),
                        f"reading {source} with pg_restore").decode()
    return {line.split()[-2] for line in listing.splitlines()
            if not line.startswith(";") and " TABLE public " in line}


def _dump_schema(source: Path) -> LedgerSchema:
    """The schema a pg_dump custom archive holds: its tables and its recorded revision."""
    tables, revision = _dump_tables(source), None
    if VERSION_TABLE in tables:
        data = _run_tool([postgresql_tool("pg_restore"), "--data-only",
                          f"--table={VERSION_TABLE}", "--file=-", source], dict(os.environ),
                         f"reading {source} with pg_restore").decode()
        revision = _copied_value(data, VERSION_TABLE)
    return LedgerSchema(revision, bool(tables & V0_1_0_TABLES))


def _drop_tables_not_in(source: Path, url: str, replace: bool) -> list[str]:
    """psql's command dropping the ledger's tables the dump does not create (a ledger at a
    newer schema replaced by an older backup); pg_restore --clean drops the others."""
    if not replace:
        return []
    ledger_tables = {table.__tablename__ for table in ALL_TABLES} | {VERSION_TABLE}
    with _engine_at(url) as engine:
        stale = (set(inspect(engine).get_table_names()) & ledger_tables) - _dump_tables(source)
    if not stale:
        return []
    # Names from the models, not from input; quoted all the same.
    return ["--command=DROP TABLE IF EXISTS "
            + ", ".join(f'public."{table}"' for table in sorted(stale)) + " CASCADE"]


def _copied_value(script: str, table: str) -> str | None:
    """The single value of a one-column table in a pg_restore script's COPY block."""
    lines = script.splitlines()
    for number, line in enumerate(lines):
        if line.startswith(f"COPY public.{table} ") and number + 1 < len(lines):
            value = lines[number + 1]
            return None if value == "\\." else value
    return None


def _restore_postgresql(source: Path, url: str, replace: bool) -> None:
    """pg_restore's script into psql, as one transaction holding the posting lock.

    The script goes through this process so that psql's input ends (and it commits) only
    once pg_restore has read the whole archive: if pg_restore fails, psql is killed before
    its input ends and the server rolls the transaction back."""
    conninfo, environment = _libpq(url)
    environment["PGOPTIONS"] = "-c client_min_messages=warning"  # no notice per dropped object
    restore_command = [postgresql_tool("pg_restore"), "--no-owner", "--no-privileges",
                       *(["--clean", "--if-exists"] if replace else []), "--file=-", source]
    load_command = [postgresql_tool("psql"), "--no-psqlrc", "--quiet", "--single-transaction",
                    "--set=ON_ERROR_STOP=1",
                    f"--command=SELECT pg_advisory_xact_lock({POSTING_LOCK_KEY})",
                    *_drop_tables_not_in(source, url, replace), "--file=-",
                    f"--dbname={conninfo}"]
    with tempfile.TemporaryFile() as restore_errors, tempfile.TemporaryFile() as load_errors:
        loader = subprocess.Popen([str(part) for part in load_command], env=environment,
                                  stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                  stderr=load_errors)
        script = subprocess.Popen([str(part) for part in restore_command], env=environment,
                                  stdout=subprocess.PIPE, stderr=restore_errors)
        try:
            shutil.copyfileobj(script.stdout, loader.stdin, 1 << 20)
        except BrokenPipeError:
            pass  # psql stopped at an error; its message is read below
        script.stdout.close()
        script.wait()
        if script.returncode != 0:
            loader.kill()  # before its input ends, so it never commits half a script
        with suppress(BrokenPipeError):
            loader.stdin.close()
        loader.wait()
        for what, code, errors in (("pg_restore", script.returncode, restore_errors),
                                   ("psql", loader.returncode, load_errors)):
            if code != 0:
                errors.seek(0)
                lines = errors.read().decode(errors="replace").strip().splitlines()
                raise BackupError(f"restore of {source} into {redacted(url)} failed in {what}, "
                                  f"nothing was changed: {lines[0] if lines else f'exit {code}'}")
