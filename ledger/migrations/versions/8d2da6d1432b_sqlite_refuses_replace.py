"""SQLite refuses REPLACE on the append-only tables

Revision ID: 8d2da6d1432b
Revises: f3a9c2d71e58
Create Date: 2026-11-29 16:40:00.000000

What changed, and why (issue 26): on SQLite the append-only tables refused UPDATE and
DELETE with triggers, but `INSERT OR REPLACE` and `REPLACE INTO` swap a row all the same:
the row in the way is deleted without firing DELETE triggers (recursive_triggers is off).
Each append-only table now has a BEFORE INSERT trigger that refuses a row meeting one
already there on its primary key or a unique key (`ledger/guards.py`,
`sqlite_replace_guard`). An upsert's DO UPDATE is an UPDATE and was refused already.
PostgreSQL has no REPLACE; its ON CONFLICT DO UPDATE fires its UPDATE guard.

What the upgrade does to existing rows: nothing; no table is rebuilt. The tables and keys
are written out as this revision has them (a migration stays as written); the upgrade also
installs every guard from ledger/guards.py after the migrations.
"""

from collections.abc import Sequence

from alembic import op

revision: str = '8d2da6d1432b'
down_revision: str | None = 'f3a9c2d71e58'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Each append-only table at this revision: its primary key, then its unique keys.
_KEYS = {
    "journal_entries": (("entry_id",),),
    "journal_lines": (("entry_id", "line_number"),),
    "journal_seals": (("sequence",), ("entry_id",)),
    "record_seals": (("sequence",), ("record_kind", "record_key")),
    "period_events": (("id",),),
    "policy_versions": (("version",),),
    "exported_journal_ids": (("namespace", "journal_key"), ("namespace", "number")),
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table, keys in _KEYS.items():
        existing = " OR ".join(
            f"EXISTS (SELECT 1 FROM {table} WHERE "
            + " AND ".join(f"{column} = NEW.{column}" for column in key) + ")" for key in keys)
        op.execute(f"CREATE TRIGGER IF NOT EXISTS {table}_no_replace BEFORE INSERT ON {table} "
                   f"WHEN {existing} BEGIN SELECT RAISE(ABORT, 'creditbooks: INSERT over a row "
                   f"of {table} already there (REPLACE) is refused: the journal is append-only; "
                   "correct it with a new (reversing) entry'); END")


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in _KEYS:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_replace")
