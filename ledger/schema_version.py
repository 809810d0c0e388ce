"""Which schema a ledger is at, and whether this version of creditbooks can use it.

Every schema change ships an Alembic migration (`ledger/migrations/versions/`); a ledger
records the revision it is at in its own version table. Every command checks that revision
before it reads or writes: a ledger at an older revision is refused with one line telling
the person to run `creditbooks upgrade`, and a ledger at a revision this version does not
know (made by a newer version) is refused too. `init` creates a fresh ledger at the newest
revision and never changes an existing one.

A ledger made by v0.1.0, before there were migrations, has no version table: it is known
by its tables, and is at the baseline revision (the v0.1.0 schema); `creditbooks upgrade`
records that revision in it and then runs the migrations after it.

The check is one query: the newest revision is read from the migration files' own
`revision` and `down_revision` lines without loading Alembic (which costs a command half a
second); a test holds this reading to Alembic's own.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from sqlalchemy import Connection, inspect, text

MIGRATIONS_DIRECTORY = Path(__file__).resolve().with_name("migrations")
# Named so that it never meets another program's Alembic table in a shared database
# (Airflow's metadata database has an `alembic_version` of its own).
VERSION_TABLE = "creditbooks_alembic_version"
BASELINE_REVISION = "d236b04c9f12"
BASELINE_NAME = "v0.1.0"  # how a ledger without a version table is named in messages
# The tables of v0.1.0: a database with all of them and no version table is a v0.1.0 ledger.
V0_1_0_TABLES = frozenset({
    "batches", "batch_stages", "batch_files", "quarantine", "lots", "lot_balances", "costs",
    "fx_rates", "refunds", "lot_adjustments", "burn_slices", "lot_expiries",
    "breakage_accruals", "usage_daily", "uncovered_usage", "overage_charges",
    "overage_settlements", "journal_entries", "journal_lines", "journal_seals", "period_events",
})


class LedgerSchemaError(RuntimeError):
    """The ledger's schema is not one this version can use as it is."""


class LedgerNeedsUpgradeError(LedgerSchemaError):
    """The ledger is at an older revision; `creditbooks upgrade` brings it forward."""

    def __init__(self, found: str, needed: str) -> None:
        super().__init__(f"ledger schema {found}, this version needs {needed}: "
                         "run creditbooks upgrade")
        self.found, self.needed = found, needed


@dataclass(frozen=True)
class Revisions:
    """The migration files' revisions: each one's predecessor, and the newest (head)."""

    down_revisions: dict[str, str | None]
    head: str

    def after(self, revision: str) -> list[str]:
        """The revisions an upgrade from `revision` runs, oldest first."""
        chain, current = [], self.head
        while current != revision:
            if current is None:
                raise LedgerSchemaError(f"revision {revision} is not before {self.head}")
            chain.append(current)
            current = self.down_revisions[current]
        return chain[::-1]


@dataclass(frozen=True)
class LedgerSchema:
    """What a database holds: nothing of ours, a v0.1.0 ledger with no version table, or a
    ledger that records its revision."""

    revision: str | None  # None: no version recorded
    has_ledger_tables: bool

    @property
    def is_empty(self) -> bool:
        return self.revision is None and not self.has_ledger_tables

    @property
    def shown(self) -> str:
        """The schema as messages name it: its revision, or v0.1.0 when none is recorded."""
        return self.revision or BASELINE_NAME

    @property
    def effective_revision(self) -> str:
        """The revision the migrations start from: an unrecorded v0.1.0 ledger is at the
        baseline."""
        return self.revision or BASELINE_REVISION


@lru_cache(maxsize=8)
def migration_revisions(directory: Path = MIGRATIONS_DIRECTORY) -> Revisions:
    """Every revision in `directory`/versions and the single newest one."""
    down_revisions: dict[str, str | None] = {}
    for path in sorted((directory / "versions").glob("*.py")):
        assigned = _module_constants(path, ("revision", "down_revision"))
        if "revision" not in assigned:
            continue  # not a migration (a helper module, say)
        if isinstance(assigned.get("down_revision"), tuple | list):
            raise LedgerSchemaError(f"{path.name}: merge revisions are not supported; keep the "
                                    "migrations in one line")
        down_revisions[assigned["revision"]] = assigned.get("down_revision")
    heads = sorted(set(down_revisions) - set(down_revisions.values()))
    if len(heads) != 1:
        raise LedgerSchemaError(f"{directory / 'versions'}: the migrations must form one line "
                                f"with one newest revision, found {len(heads)}: "
                                f"{', '.join(heads) or 'none'}; set down_revision of the newer "
                                "file to the revision before it")
    return Revisions(down_revisions, heads[0])


def _module_constants(path: Path, names: tuple[str, ...]) -> dict:
    """Module-level `name = literal` (or `name: type = literal`) values, without importing."""
    found = {}
    for node in ast.parse(path.read_text(encoding="utf-8"), str(path)).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id in names:
            found[target.id] = ast.literal_eval(value)
    return found


def read_ledger_schema(connection: Connection) -> LedgerSchema:
    """The revision the ledger records and whether it has the ledger's tables."""
    tables = set(inspect(connection).get_table_names())
    has_ledger_tables = bool(tables & V0_1_0_TABLES)
    if VERSION_TABLE not in tables:
        if has_ledger_tables and not V0_1_0_TABLES <= tables:
            missing = ", ".join(sorted(V0_1_0_TABLES - tables))
            raise LedgerSchemaError(
                "the database has some of the ledger's tables but not all, and no "
                f"{VERSION_TABLE} table (missing: {missing}); it is not a ledger this version "
                "can upgrade")
        return LedgerSchema(None, has_ledger_tables)
    recorded = [row[0] for row in connection.execute(
        text(f"SELECT version_num FROM {VERSION_TABLE}"))]  # a constant name, no user input
    if len(recorded) > 1:
        raise LedgerSchemaError(f"{VERSION_TABLE} records {len(recorded)} revisions "
                                f"({', '.join(sorted(recorded))}); a ledger is at one")
    if not recorded:
        return LedgerSchema(None, has_ledger_tables)
    return LedgerSchema(recorded[0], has_ledger_tables)


def require_current(found: LedgerSchema, directory: Path = MIGRATIONS_DIRECTORY) -> None:
    """Refuse a ledger that is not at this version's newest revision (it must not be empty)."""
    revisions = migration_revisions(directory)
    if found.revision == revisions.head:
        return
    if found.effective_revision not in revisions.down_revisions:
        raise LedgerSchemaError(
            f"ledger schema {found.shown} is not one this version knows (its newest is "
            f"{revisions.head}): the ledger was made or upgraded by a newer creditbooks; "
            "use that version")
    raise LedgerNeedsUpgradeError(found.shown, revisions.head)
