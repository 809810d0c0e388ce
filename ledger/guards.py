"""Database-enforced invariants: the ledger's promises kept by PostgreSQL itself.

The application checks every entry before writing it (`ledger.journal.require_valid`,
`ledger.locks.require_open`); these guards hold the same promises against anything else
that can reach the database (a script, a console, a bug):

- the journal is append-only: UPDATE, DELETE and TRUNCATE of journal entries, lines,
  seals, period events and record seals raise, for every role, owner included;
- the lines each statement writes balance, entry by entry, in each currency and in the
  functional currency, and every line's entry exists (one set-based check per statement
  over its transition table; this replaces the row-level foreign key from lines to
  entries, which cost more than all the other checks together). Lines are never changed
  or removed, so an entry all of whose statements balanced is balanced;
- every entry's batch exists, checked the same way once per statement (replacing the
  row-level foreign key from entries to batches), and a batch with entries can be
  neither deleted nor renamed;
- at commit, every entry written in the transaction has lines (a deferred constraint
  trigger, since an entry is written before its lines);
- at commit, no entry sits in a period whose last event is a close.

`grant_application_role` gives a login role what the nightly run and the close need
and no more: on the append-only tables it may read and insert, never change.

On SQLite (`install_sqlite_guards`) the same tables refuse UPDATE and DELETE with
triggers, and an INSERT onto a primary or unique key already there (what `INSERT OR
REPLACE` and `REPLACE INTO` do, deleting the old row without firing DELETE triggers);
the other promises are the application's checks there. A trigger stops a
mistake or a script, not someone who can rewrite the file: that is what the hash chains,
the close manifests and the anchor file are for (`ledger/evidence.py`).
"""

from __future__ import annotations

import re

from sqlalchemy import Connection, UniqueConstraint

from ledger.schema import ALL_TABLES, Retention, table_names
from ledger.schema_version import VERSION_TABLE

# Each table states its own retention (`ledger/schema/`); these follow from it.
APPEND_ONLY_TABLES = table_names(Retention.APPEND_ONLY)
MUTABLE_TABLES = table_names(Retention.MUTABLE)
# The late window's look-back: a night adds its ids and removes those no window reaches.
WINDOW_TABLES = table_names(Retention.WINDOW)
_ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

_FUNCTIONS = r"""
CREATE OR REPLACE FUNCTION creditbooks_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'creditbooks: % on % is refused: the journal is append-only; '
                    'correct it with a new (reversing) entry', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END $$;

-- Memory enough to sum a night's lines by entry without spilling to disk (bounded: a
-- larger statement spills, and is checked all the same).
CREATE OR REPLACE FUNCTION creditbooks_require_balanced_lines() RETURNS trigger
LANGUAGE plpgsql SET work_mem = '64MB' AS $$
DECLARE
    -- Prefixed so that no variable shares a column's name.
    found_orphan text;
    found_entry text;
    found_currency text;
    found_total numeric;
    found_functional_entry text;
    found_functional_total numeric;
BEGIN
    -- The lines this statement wrote, summed by entry in one pass. Lines are never changed
    -- or removed, so when every statement's lines balance each entry's lines balance, and
    -- the entries' earlier lines need not be read. Each entry is looked up once.
    WITH by_currency AS MATERIALIZED (
        SELECT entry_id, currency, SUM(amount_minor) AS amount_total,
               SUM(functional_minor) AS functional_total
        FROM written_lines GROUP BY entry_id, currency
    ), by_entry AS MATERIALIZED (
        SELECT entry_id, SUM(functional_total) AS functional_total
        FROM by_currency GROUP BY entry_id
    )
    SELECT missing.entry_id, currency_check.entry_id, currency_check.currency,
           currency_check.amount_total, functional_check.entry_id,
           functional_check.functional_total
    INTO found_orphan, found_entry, found_currency, found_total, found_functional_entry,
         found_functional_total
    FROM (SELECT 1) AS one
    LEFT JOIN LATERAL (
        SELECT b.entry_id FROM by_entry b
        WHERE NOT EXISTS (SELECT 1 FROM journal_entries e WHERE e.entry_id = b.entry_id)
        ORDER BY b.entry_id LIMIT 1) AS missing ON true
    LEFT JOIN LATERAL (
        SELECT c.entry_id, c.currency, c.amount_total FROM by_currency c
        WHERE c.amount_total <> 0 ORDER BY c.entry_id, c.currency LIMIT 1) AS currency_check ON true
    LEFT JOIN LATERAL (
        SELECT b.entry_id, b.functional_total FROM by_entry b
        WHERE b.functional_total <> 0 ORDER BY b.entry_id LIMIT 1) AS functional_check ON true;
    IF found_orphan IS NOT NULL THEN
        RAISE EXCEPTION 'creditbooks: a line refers to entry %, which does not exist', found_orphan
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF found_entry IS NOT NULL THEN
        RAISE EXCEPTION 'creditbooks: entry % does not balance in % (off by % minor units)',
                        found_entry, found_currency, found_total
            USING ERRCODE = 'check_violation';
    END IF;
    IF found_functional_entry IS NOT NULL THEN
        RAISE EXCEPTION 'creditbooks: entry % does not balance in the functional currency '
                        '(off by % minor units)', found_functional_entry,
                        found_functional_total
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION creditbooks_require_known_batches() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    found_batch text;
BEGIN
    SELECT w.batch_id INTO found_batch FROM (SELECT DISTINCT batch_id FROM written_entries) w
    WHERE NOT EXISTS (SELECT 1 FROM batches b WHERE b.batch_id = w.batch_id)
    ORDER BY w.batch_id LIMIT 1;
    IF found_batch IS NOT NULL THEN
        RAISE EXCEPTION 'creditbooks: an entry refers to batch %, which does not exist',
                        found_batch
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION creditbooks_keep_posted_batch() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.batch_id = OLD.batch_id THEN
        RETURN NEW;
    END IF;
    IF EXISTS (SELECT 1 FROM journal_entries WHERE batch_id = OLD.batch_id) THEN
        RAISE EXCEPTION 'creditbooks: batch % has journal entries; it cannot be removed or '
                        'renamed', OLD.batch_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END $$;

CREATE OR REPLACE FUNCTION creditbooks_require_open_period() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    has_lines boolean;
    last_action text;
BEGIN
    -- One query a row: this runs once for every entry a transaction writes.
    SELECT EXISTS (SELECT 1 FROM journal_lines WHERE entry_id = NEW.entry_id),
           (SELECT action FROM period_events WHERE period = NEW.period ORDER BY id DESC LIMIT 1)
    INTO has_lines, last_action;
    IF NOT has_lines THEN
        RAISE EXCEPTION 'creditbooks: entry % has no lines', NEW.entry_id
            USING ERRCODE = 'check_violation';
    END IF;
    IF last_action = 'close' THEN
        RAISE EXCEPTION 'creditbooks: period % is locked; entry % cannot be posted into it',
                        NEW.period, NEW.entry_id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;
"""


def _triggers(table: str) -> str:
    return f"""
    DROP TRIGGER IF EXISTS {table}_append_only ON {table};
    CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
        FOR EACH ROW EXECUTE FUNCTION creditbooks_refuse_change();
    DROP TRIGGER IF EXISTS {table}_no_truncate ON {table};
    CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
        FOR EACH STATEMENT EXECUTE FUNCTION creditbooks_refuse_change();
    """


_CONSTRAINT_TRIGGERS = """
-- The statement checks below also find a line's entry and an entry's batch, once per
-- statement: a row-level foreign key would look each row's up on its own.
ALTER TABLE journal_lines DROP CONSTRAINT IF EXISTS journal_lines_entry_id_fkey;
ALTER TABLE journal_entries DROP CONSTRAINT IF EXISTS journal_entries_batch_id_fkey;
DROP TRIGGER IF EXISTS journal_entries_known_batches ON journal_entries;
CREATE TRIGGER journal_entries_known_batches AFTER INSERT ON journal_entries
    REFERENCING NEW TABLE AS written_entries FOR EACH STATEMENT
    EXECUTE FUNCTION creditbooks_require_known_batches();
DROP TRIGGER IF EXISTS batches_keep_posted ON batches;
CREATE TRIGGER batches_keep_posted BEFORE DELETE OR UPDATE OF batch_id ON batches
    FOR EACH ROW EXECUTE FUNCTION creditbooks_keep_posted_batch();
DROP TRIGGER IF EXISTS journal_lines_balanced ON journal_lines;
CREATE TRIGGER journal_lines_balanced AFTER INSERT ON journal_lines
    REFERENCING NEW TABLE AS written_lines FOR EACH STATEMENT
    EXECUTE FUNCTION creditbooks_require_balanced_lines();
DROP FUNCTION IF EXISTS creditbooks_require_balanced_line();
DROP TRIGGER IF EXISTS journal_entries_open_period ON journal_entries;
CREATE CONSTRAINT TRIGGER journal_entries_open_period AFTER INSERT ON journal_entries
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    EXECUTE FUNCTION creditbooks_require_open_period();
"""


def install_guards(connection: Connection) -> None:
    """Create (or replace) the PostgreSQL guards; safe to run again."""
    # Through the driver's own cursor, which passes a script without parameters untouched
    # (the `%` of RAISE's format would otherwise be read as a placeholder).
    with connection.connection.dbapi_connection.cursor() as cursor:
        cursor.execute(_FUNCTIONS)
        for table in APPEND_ONLY_TABLES:
            cursor.execute(_triggers(table))
        cursor.execute(_CONSTRAINT_TRIGGERS)


def sqlite_guard_statements(tables: tuple[str, ...] = APPEND_ONLY_TABLES) -> list[str]:
    """SQLite triggers refusing UPDATE and DELETE on each table, and an INSERT onto a key
    already there (kept if already there)."""
    return [f"CREATE TRIGGER IF NOT EXISTS {table}_no_{operation.lower()} BEFORE {operation} "
            f"ON {table} BEGIN SELECT RAISE(ABORT, 'creditbooks: {operation} on {table} is "
            "refused: the journal is append-only; correct it with a new (reversing) entry'); END"
            for table in tables for operation in ("UPDATE", "DELETE")] + [
            sqlite_replace_guard(table, _keys(table)) for table in tables]


def _keys(table: str) -> tuple[tuple[str, ...], ...]:
    """The table's primary key and each of its unique keys, as the models declare them."""
    found = {model.__tablename__: model.__table__ for model in ALL_TABLES}[table]
    keys = [tuple(column.name for column in found.primary_key.columns)]
    keys += [tuple(column.name for column in constraint.columns)
             for constraint in found.constraints if isinstance(constraint, UniqueConstraint)]
    keys += [tuple(column.name for column in index.columns)
             for index in found.indexes if index.unique]
    return tuple(sorted(set(keys), key=keys.index))


def sqlite_replace_guard(table: str, keys: tuple[tuple[str, ...], ...]) -> str:
    """A trigger refusing an INSERT whose row meets one already there on a key.

    `INSERT OR REPLACE` and `REPLACE INTO` delete the row in the way without firing DELETE
    triggers (unless recursive_triggers is on), so the UPDATE and DELETE refusals alone let
    a row be swapped; an upsert's DO UPDATE is an UPDATE and refused already. A plain
    INSERT onto a key is refused here too, as the key's constraint would refuse it."""
    existing = " OR ".join(
        f"EXISTS (SELECT 1 FROM {table} WHERE "
        + " AND ".join(f"{column} = NEW.{column}" for column in key) + ")" for key in keys)
    return (f"CREATE TRIGGER IF NOT EXISTS {table}_no_replace BEFORE INSERT ON {table} "
            f"WHEN {existing} BEGIN SELECT RAISE(ABORT, 'creditbooks: INSERT over a row of "
            f"{table} already there (REPLACE) is refused: the journal is append-only; correct "
            "it with a new (reversing) entry'); END")


def install_sqlite_guards(connection: Connection) -> None:
    """The append-only triggers on SQLite; safe to run again (a table rebuilt by a
    migration loses its triggers, and the upgrade installs them again)."""
    for statement in sqlite_guard_statements():
        connection.exec_driver_sql(statement)


def grant_application_role(connection: Connection, role: str) -> None:
    """Let `role` run nights and closes: insert-only on the journal, no UPDATE or DELETE."""
    if not _ROLE_NAME.match(role):
        # Identifiers cannot be bound as parameters, so the name is checked instead.
        raise ValueError(f"role name {role!r} must be lower-case letters, digits and _")
    connection.exec_driver_sql(f"GRANT USAGE ON SCHEMA public TO {role}")
    for table in APPEND_ONLY_TABLES:
        connection.exec_driver_sql(f"REVOKE ALL ON {table} FROM {role}")
        connection.exec_driver_sql(f"GRANT SELECT, INSERT ON {table} TO {role}")
    for table in MUTABLE_TABLES:
        connection.exec_driver_sql(f"REVOKE ALL ON {table} FROM {role}")
        connection.exec_driver_sql(f"GRANT SELECT, INSERT, UPDATE ON {table} TO {role}")
    for table in WINDOW_TABLES:
        connection.exec_driver_sql(f"REVOKE ALL ON {table} FROM {role}")
        connection.exec_driver_sql(f"GRANT SELECT, INSERT, DELETE ON {table} TO {role}")
    # Every command reads the schema revision; only `upgrade`, run by the owner, writes it.
    connection.exec_driver_sql(f"REVOKE ALL ON {VERSION_TABLE} FROM {role}")
    connection.exec_driver_sql(f"GRANT SELECT ON {VERSION_TABLE} TO {role}")
    connection.exec_driver_sql(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {role}")


# The guards of the PostgreSQL constraint triggers above, beside each append-only table's own.
_POSTGRESQL_CHECK_GUARDS = {
    "journal_entries_known_batches": "journal_entries", "batches_keep_posted": "batches",
    "journal_lines_balanced": "journal_lines", "journal_entries_open_period": "journal_entries"}


def expected_guards(dialect_name: str) -> dict[str, str]:
    """{trigger name: its table} of every guard this version installs on the store."""
    if dialect_name == "sqlite":
        return {f"{table}_no_{operation}": table for table in APPEND_ONLY_TABLES
                for operation in ("update", "delete", "replace")}
    if dialect_name == "postgresql":
        return {**{f"{table}_{kind}": table for table in APPEND_ONLY_TABLES
                   for kind in ("append_only", "no_truncate")}, **_POSTGRESQL_CHECK_GUARDS}
    return {}


def missing_guards(connection: Connection) -> list[str]:
    """The guards this version installs that the ledger lacks (or has disabled), sorted."""
    expected = expected_guards(connection.dialect.name)
    if connection.dialect.name == "sqlite":
        present = {row[0] for row in connection.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    elif connection.dialect.name == "postgresql":
        # A trigger disabled (ALTER TABLE ... DISABLE TRIGGER) guards nothing either.
        present = {row[0] for row in connection.exec_driver_sql(
            "SELECT t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND NOT t.tgisinternal AND t.tgenabled <> 'D'")}
    else:
        present = set()
    return sorted(set(expected) - present)


def guards_check_detail(connection: Connection) -> tuple[bool, str]:
    """(every guard present, what verify says): the first missing guard named with its table."""
    missing = missing_guards(connection)
    if not missing:
        return True, f"{len(expected_guards(connection.dialect.name))} guards present"
    table = expected_guards(connection.dialect.name)[missing[0]]
    return False, (f"guard {missing[0]} is missing ({len(missing)} of "
                   f"{len(expected_guards(connection.dialect.name))} missing): {table} accepts "
                   "UPDATE/DELETE; run creditbooks init to reinstall the guards")
