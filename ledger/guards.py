"""Database-enforced invariants: the ledger's promises kept by PostgreSQL itself.

The application checks every entry before writing it (`ledger.journal.require_valid`,
`ledger.locks.require_open`); these guards hold the same promises against anything else
that can reach the database (a script, a console, a bug):

- the journal is append-only: UPDATE, DELETE and TRUNCATE of journal entries, lines,
  seals and period events raise, for every role, owner included;
- every statement that writes journal lines leaves each entry it touched balanced in
  each currency and in the functional currency, and every line's entry exists (one
  set-based check per statement over its transition table; this replaces the row-level
  foreign key from lines to entries, which cost more than all the other checks together);
- at commit, every entry written in the transaction has lines (a deferred constraint
  trigger, since an entry is written before its lines);
- at commit, no entry sits in a period whose last event is a close.

`grant_application_role` gives a login role what the nightly run and the close need
and no more: on the append-only tables it may read and insert, never change.
SQLite has no triggers of this kind here; the application checks are its guard.
"""

from __future__ import annotations

import re

from sqlalchemy import Connection

APPEND_ONLY_TABLES = ("journal_entries", "journal_lines", "journal_seals", "period_events")
MUTABLE_TABLES = ("batches", "batch_stages", "batch_files", "quarantine", "lots", "lot_balances",
                  "burn_slices", "lot_expiries", "costs", "usage_daily", "uncovered_usage",
                  "refunds", "lot_adjustments", "breakage_accruals", "overage_charges",
                  "overage_settlements", "fx_rates")
_ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

_FUNCTIONS = r"""
CREATE OR REPLACE FUNCTION creditbooks_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'creditbooks: % on % is refused: the journal is append-only; '
                    'correct it with a new (reversing) entry', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END $$;

CREATE OR REPLACE FUNCTION creditbooks_require_balanced_lines() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    unbalanced record;
    orphan text;
BEGIN
    SELECT w.entry_id INTO orphan FROM written_lines w
    WHERE NOT EXISTS (SELECT 1 FROM journal_entries e WHERE e.entry_id = w.entry_id) LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'creditbooks: a line refers to entry %, which does not exist', orphan
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    -- Every entry the statement wrote lines for, with all its lines (earlier ones too).
    SELECT l.entry_id, l.currency, SUM(l.amount_minor) AS total INTO unbalanced
    FROM journal_lines l WHERE l.entry_id IN (SELECT DISTINCT entry_id FROM written_lines)
    GROUP BY l.entry_id, l.currency HAVING SUM(l.amount_minor) <> 0
    ORDER BY l.entry_id, l.currency LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'creditbooks: entry % does not balance in % (off by % minor units)',
                        unbalanced.entry_id, unbalanced.currency, unbalanced.total
            USING ERRCODE = 'check_violation';
    END IF;
    SELECT l.entry_id, SUM(l.functional_minor) AS total INTO unbalanced
    FROM journal_lines l WHERE l.entry_id IN (SELECT DISTINCT entry_id FROM written_lines)
    GROUP BY l.entry_id HAVING SUM(l.functional_minor) <> 0 ORDER BY l.entry_id LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'creditbooks: entry % does not balance in the functional currency '
                        '(off by % minor units)', unbalanced.entry_id, unbalanced.total
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION creditbooks_require_open_period() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    last_action text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM journal_lines WHERE entry_id = NEW.entry_id) THEN
        RAISE EXCEPTION 'creditbooks: entry % has no lines', NEW.entry_id
            USING ERRCODE = 'check_violation';
    END IF;
    SELECT action INTO last_action FROM period_events
    WHERE period = NEW.period ORDER BY id DESC LIMIT 1;
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
-- The statement check below also finds a line's entry, once per statement: a row-level
-- foreign key would look each line's entry up on its own.
ALTER TABLE journal_lines DROP CONSTRAINT IF EXISTS journal_lines_entry_id_fkey;
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
    connection.exec_driver_sql(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {role}")
