"""Security promises: parameterised SQL, secrets never printed, neutralised exports, pinned
dependencies, servers on localhost."""

from __future__ import annotations

import ast
import csv
import re
from datetime import date
from pathlib import Path

import pytest

from creditbooks.night.run import run_night
from creditbooks.pipeline import Settings
from reports.outputs.exports import export_period
from rules.policy import load_policy
from tests.support.cli import creditbooks
from tests.support.hostile_corpus import FORMULA_ID
from tests.support.landing import write_document

REPOSITORY = Path(__file__).resolve().parents[1]
PRODUCTION = ["ledger", "intake", "rules", "reports", "creditbooks", "dags"]
SQL_CALLS = {"text", "execute", "exec_driver_sql", "read_frame", "read_in_chunks", "copy"}
# The only values spliced into SQL text: names chosen by the code from fixed sets, never
# input. Each is checked where it is made (see the file named).
IDENTIFIERS_IN_SQL = {
    ("ledger/store.py", "table_name"),  # a SQLModel table's name
    ("ledger/store.py", "sql_table.name"),  # the same
    ("ledger/store.py", "', '.join(frame.columns)"),  # the frame's columns, named in code
    ("ledger/store.py", "placeholders"),  # "?, ?, ..."
    ("ledger/store.py", "assignments"),  # "column = ?, ..." over the frame's columns
    ("ledger/guards.py", "role"),      # checked against ^[a-z_][a-z0-9_]{0,62}$
    ("ledger/guards.py", "table"),     # from APPEND_ONLY_TABLES / MUTABLE_TABLES
    ("ledger/guards.py", "VERSION_TABLE"),  # the constant name of the schema version table
    ("ledger/schema_version.py", "VERSION_TABLE"),  # the same
    ("ledger/archive_index.py", "one_batch"),  # a constant WHERE with a bound parameter, or nothing
    ("ledger/record_chain.py", "_BATCHES"),     # constant SELECTs of the sealed records
    ("ledger/record_chain.py", "_FILES"),
    ("ledger/record_chain.py", "_QUARANTINE"),
    ("ledger/record_chain.py", "_EVENTS"),
    ("ledger/record_chain.py", "where"),        # a constant WHERE with a bound parameter, or none
    ("ledger/migrations/versions/e15c32d7cc7b_record_chain.py", "table"),  # a fixed table list
    ("ledger/migrations/versions/e15c32d7cc7b_record_chain.py", "operation"),  # UPDATE or DELETE
    ("ledger/migrations/versions/e15c32d7cc7b_record_chain.py", "operation.lower()"),
    ("ledger/migrations/versions/8d2da6d1432b_sqlite_refuses_replace.py", "table"),  # _KEYS
    ("ledger/migrations/versions/8d2da6d1432b_sqlite_refuses_replace.py", "existing"),  # from _KEYS
    ("creditbooks/backup.py", "name"),  # a scratch database name made from a uuid, not input
    ("reports/outputs/exports.py", "on_day"),           # a constant condition with a bound parameter
    ("reports/outputs/exports.py", "' AND '.join(conditions)"),  # constant conditions, bound values
    ("reports/outputs/exports.py",                      # fixed column names, NULL ones left out
     "', '.join((c for c in (day, 'e.kind', 'l.currency', 'e.batch_id') if c != 'NULL'))"),
    ("creditbooks/night/ingest.py", "id_column"),  # ID_COLUMN[document], a fixed mapping
    ("creditbooks/night/ingest.py", "table"),  # "lots", "costs", "refunds" or "lot_adjustments": fixed names
    ("ledger/digest.py", "_line_text_sql(connection.dialect.name)"),  # fixed column names
    ("reports/outputs/beancount_export.py", "condition"),  # "<" or "<=" from the caller
    ("reports/controls.py", "window"),      # a constant WHERE with bound parameters, or nothing
    ("reports/controls.py", "_DEFERRED"),   # a constant column expression
    ("reports/controls.py", "_MANUAL_CHANGES"),  # a constant join (posted manual journals)
    ("creditbooks/night/lots.py", "_LOT_STATE + ' WHERE b.is_open ORDER BY l.purchase_id'"),
    ("creditbooks/night/lots.py", "_LOT_STATE + ' WHERE l.purchase_id IN :ids'"),  # constant SQL
    ("creditbooks/night/lots.py",  # constant SQL; the ids are an expanding bound parameter
     "_LOT_STATE + ' WHERE b.is_open AND l.customer_id IN :ids'"),
    ("creditbooks/night/lots.py",  # constant SQL; the products are an expanding bound parameter
     "_LOT_STATE + '\\n        WHERE b.last_batch_id = :batch_id\\n           OR (b.is_open AND "
     "(b.expires_at < :expiring_before OR l.product IN :products))\\n        ORDER BY "
     "l.purchase_id'"),
    ("reports/outputs/exports.py", "day"),          # a column name or NULL, by summary level
    ("reports/outputs/exports.py", "customer"),     # a column name or NULL
    ("reports/outputs/exports.py", "grouped"),      # those names joined
    ("reports/outputs/exports.py", "amount"),       # amount_minor or functional_minor
    ("reports/outputs/exports.py", "currency"),     # l.currency or a bound parameter
    ("reports/outputs/beancount_export.py", "amount"),  # amount_minor or functional_minor
    ("reports/subledger.py", "day_filter"),  # a constant WHERE with a bound parameter, or nothing
    ("ledger/chain.py",                     # constant SQL joined to constant SQL
     "_ENTRY_CONTENT + ' ORDER BY e.entry_id, l.line_number'"),
    ("ledger/chain.py", "_ENTRY_CONTENT + '\\n        WHERE e.batch_id = :batch_id ORDER BY "
                        "e.entry_id, l.line_number'"),
    ("ledger/chain.py",  # constant SQL; the entry ids are an expanding bound parameter
     "_ENTRY_CONTENT + '\\n        WHERE e.entry_id IN :entry_ids ORDER BY e.entry_id, "
     "l.line_number'"),
    ("ledger/manual_journals.py", "_JOURNAL_COLUMNS"),  # constant column lists
    ("ledger/manual_journals.py", "_LINE_COLUMNS"),
    ("ledger/manual_journals.py", "'l.' + column.strip()"),  # the same, table-qualified
    ("ledger/manual_journals.py",
     "', '.join(('l.' + column.strip() for column in _LINE_COLUMNS.split(',')))"),
    ("ledger/manual_journals.py", "where"),  # constant conditions with bound parameters, or none
    ("ledger/record_chain.py", "_BATCHES.format(actor=actor)"),  # "actor" or "NULL", by schema
    ("ledger/record_chain.py", "query"),  # one of the constant period-event SELECTs, by schema
}


def _sql_splices(path: Path) -> set[tuple[str, str]]:
    """(file, name) for each name formatted into a string passed to a SQL call."""
    found = set()
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = getattr(node.func, "attr", getattr(node.func, "id", ""))
        if name not in SQL_CALLS:
            continue
        for argument in node.args:
            for part in ast.walk(argument):
                if isinstance(part, ast.FormattedValue):
                    splice = ast.unparse(part.value)
                    found.add((str(path.relative_to(REPOSITORY)), splice))
                elif isinstance(part, ast.BinOp) and isinstance(part.op, (ast.Add, ast.Mod)):
                    found.add((str(path.relative_to(REPOSITORY)), ast.unparse(part)))
    return found


def test_sql_is_parameterised_everywhere_but_for_reviewed_identifiers():
    splices = set()
    for package in PRODUCTION:
        for path in sorted((REPOSITORY / package).rglob("*.py")):
            splices |= _sql_splices(path)
    assert splices - IDENTIFIERS_IN_SQL == set()


@pytest.mark.slow  # over a second here: not in make test-fast
def test_a_database_password_is_never_printed(tmp_path):
    url = "postgresql+psycopg://app:s3cret-pw@127.0.0.1:1/books"
    for arguments in (["init"], ["balances"], ["--debug", "balances"]):
        completed = creditbooks("--db", url, *arguments, cwd=tmp_path, check=False)
        assert completed.returncode != 0
        assert "s3cret-pw" not in completed.stdout + completed.stderr


def test_the_ledger_url_comes_from_an_airflow_connection_and_stays_out_of_reprs(monkeypatch):
    monkeypatch.delenv("CREDITBOOKS_DB", raising=False)
    monkeypatch.setenv("AIRFLOW_CONN_CREDITBOOKS_DB",
                       "postgresql://app:s3cret-pw@db.example:5432/books")
    settings = Settings.resolve()
    assert settings.database_url == "postgresql+psycopg://app:s3cret-pw@db.example:5432/books"
    assert "s3cret-pw" not in repr(settings)


def test_erp_exports_neutralise_formula_injection(sqlite_store, tmp_path):
    policy = load_policy()
    landing = tmp_path / "landing"
    write_document(landing, "2026-01-30", "purchases", [{
        "purchase_id": FORMULA_ID, "customer_id": "@cmd|' /C calc'!A0",
        "purchased_at": "2026-01-30T09:00:00Z", "credits": "10", "amount": "5.00",
        "currency": "USD"}])
    run_night(sqlite_store, policy, landing, tmp_path / "archive", date(2026, 1, 30))
    for target in ("netsuite", "quickbooks", "xero", "sap", "csv"):
        for path in export_period(sqlite_store, "2026-01", target, tmp_path / f"{target}.csv",
                                  policy.exports, by_customer=True, draft=True):
            with Path(path).open(newline="") as handle:
                cells = [cell for row in csv.reader(handle) for cell in row]
            dangerous = [cell for cell in cells if cell[:1] in ("=", "+", "@")
                         or (cell[:1] == "-" and not re.fullmatch(r"-[0-9.]+", cell))]
            assert dangerous == [], (target, dangerous)
            assert any(cell.startswith("'@cmd") for cell in cells), target


def test_dependencies_are_pinned_with_hashes_and_installed_only_so():
    lock = (REPOSITORY / "requirements.lock").read_text()
    requirements = re.findall(r"^([A-Za-z0-9_.\-\[\]]+)==(\S+)", lock, flags=re.MULTILINE)
    assert len(requirements) > 100
    blocks = re.split(r"\n(?=[A-Za-z0-9_.\-]+==)", lock.split("\n", 1)[1])
    unhashed = [block.split()[0] for block in blocks
                if "==" in block and "--hash=sha256:" not in block]
    assert unhashed == []
    makefile = (REPOSITORY / "Makefile").read_text()
    assert "--require-hashes -r requirements.lock" in makefile
    assert "--no-deps -e ." in makefile  # the project itself adds nothing unpinned


@pytest.mark.parametrize("server", ["fava", "airflow"])
def test_served_pages_bind_to_localhost(server):
    readme = (REPOSITORY / "README.md").read_text()
    if server == "fava":
        commands = re.findall(r"^.*fava \S+.*$", readme, flags=re.MULTILINE)
        assert commands and all("--read-only" in command for command in commands)
        assert all("--host" not in command or "127.0.0.1" in command for command in commands)
    else:
        script = (REPOSITORY / "scripts" / "airflow-demo.sh").read_text()
        assert "export AIRFLOW__API__HOST=127.0.0.1" in script
