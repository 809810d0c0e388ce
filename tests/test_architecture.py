"""The house rules, checked: dependencies point one way, rules/ is pure, facts are written once.

ledger/ is the bottom and imports nothing above it; intake/ reads files on top of it;
rules/ holds pure functions (no database, no SQL); reports/ reads the books; creditbooks/
(the command line, the night, the close, the Airflow calls) and dags/ sit on top. A test
file imports helpers from tests/support/, never another test file.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[1]
# Each package and the packages it may import (itself included).
ALLOWED_IMPORTS = {
    "ledger": {"ledger"},
    "intake": {"ledger", "intake"},
    "rules": {"ledger", "intake", "rules"},
    "reports": {"ledger", "intake", "rules", "reports"},
    "creditbooks": {"ledger", "intake", "rules", "reports", "creditbooks"},
    "dags": {"ledger", "creditbooks"},
}
PROJECT_PACKAGES = set(ALLOWED_IMPORTS)
# What betrays a database in rules/: a driver or SQLAlchemy, the store, or SQL text.
DATABASE_SIGNS = re.compile(
    r"\bsqlalchemy\b|\bsqlite3\b|\bpsycopg\b|\bledger\.store\b|\bConnection\b|\bread_frame\b"
    r"|\b(SELECT|INSERT INTO|UPDATE|DELETE FROM)\s", re.IGNORECASE)


def _sources(package: str) -> list[Path]:
    return sorted(path for path in (REPOSITORY / package).rglob("*.py")
                  if "__pycache__" not in path.parts)


def _imported_packages(path: Path) -> set[str]:
    """The top-level project packages a module imports, anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
    return found & PROJECT_PACKAGES


@pytest.mark.parametrize("package", sorted(ALLOWED_IMPORTS))
def test_dependencies_point_one_way(package):
    wrong = {str(path.relative_to(REPOSITORY)): sorted(imported - ALLOWED_IMPORTS[package])
             for path in _sources(package)
             if (imported := _imported_packages(path)) - ALLOWED_IMPORTS[package]}
    assert wrong == {}


def test_rules_holds_no_database_connection_and_no_sql():
    found = [f"{path.relative_to(REPOSITORY)}:{number}: {line.strip()}"
             for path in _sources("rules")
             for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if DATABASE_SIGNS.search(line)]
    assert found == []


def test_the_database_sign_detector_finds_what_it_looks_for():
    # So that the test above can fail: each of these lines would be refused in rules/.
    for line in ('from sqlalchemy import text', 'rows = read_frame(connection, "x")',
                 'statement = "SELECT purchase_id FROM lots"', 'import sqlite3',
                 'def burn(connection: Connection):'):
        assert DATABASE_SIGNS.search(line), line
    assert not DATABASE_SIGNS.search("credits are selected by burn order")


def test_no_test_file_imports_another():
    test_files = {path.stem for path in (REPOSITORY / "tests").glob("test_*.py")}
    importing = {}
    for path in sorted((REPOSITORY / "tests").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        modules = {node.module for node in ast.walk(tree)
                   if isinstance(node, ast.ImportFrom) and node.module}
        modules |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                    for alias in node.names}
        named = sorted(module for module in modules
                       if module.split(".")[-1] in test_files or module == "tests.conftest")
        if named:
            importing[str(path.relative_to(REPOSITORY))] = named
    assert importing == {}


def test_the_stage_order_is_written_once():
    """Only ledger/domain.py lists the stages in order; everything else walks `Stage`."""
    order = re.compile(r"ingest\W+(post_)?purchases\W+.*burn\W+.*expire\W+.*controls\W+.*publish",
                       re.DOTALL)
    places = []
    for package in [*sorted(PROJECT_PACKAGES), "tests"]:
        for path in _sources(package):
            text = path.read_text(encoding="utf-8")
            for match in re.finditer(r"\[[^\[\]]*\]|\([^()]*\)", text):  # lists and tuples
                if order.search(match.group()) and len(match.group()) < 400:
                    places.append(str(path.relative_to(REPOSITORY)))
    allowed = {"ledger/migrations/versions/d236b04c9f12_v0_1_0_baseline.py",  # frozen history
               "tests/test_stages.py"}  # the test that pins the order
    assert sorted(set(places) - allowed) == []


def test_report_computations_never_import_the_writers_of_files():
    # reports/ works figures out; reports/outputs/ writes them. A computation that wrote
    # (or read back) a file would hide a format inside a figure.
    writing = {str(path.relative_to(REPOSITORY)) for path in (REPOSITORY / "reports").glob("*.py")
               if re.search(r"\breports\.outputs\b|from reports import outputs",
                            path.read_text(encoding="utf-8"))}
    assert writing == set()


def _report_name_lists(source: str, names: frozenset[str]) -> list[int]:
    """The lines of literals (tuple, list, set, dict keys) naming ten or more close reports."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Tuple, ast.List, ast.Set, ast.Dict)):
            items = node.keys if isinstance(node, ast.Dict) else node.elts
            named = {item.value for item in items
                     if isinstance(item, ast.Constant) and item.value in names}
            if len(named) >= 10:
                lines.append(node.lineno)
    return lines


@pytest.mark.slow  # over a second here: not in make test-fast
def test_the_report_names_are_written_once():
    """Only reports/catalogue.py names every close report (one entry each); the close, the
    command line's `report NAME`, the package and the tests read the names off it."""
    from reports.catalogue import REPORT_NAMES

    names = frozenset(REPORT_NAMES)
    places = {f"{path.relative_to(REPOSITORY)}:{line}"
              for package in [*sorted(PROJECT_PACKAGES), "tests", "bench"]
              for path in _sources(package) if path != REPOSITORY / "reports" / "catalogue.py"
              for line in _report_name_lists(path.read_text(encoding="utf-8"), names)}
    assert places == set()
    # The detector finds a list of names as the close once wrote it beside the catalogue.
    assert _report_name_lists(f"REPORT_NAMES = {tuple(sorted(names))!r}\n", names) == [1]
    assert _report_name_lists(f"REPORT_NAMES = {tuple(sorted(names))[:9]!r}\n", names) == []


# The ledger's columns that hold the values of an enumeration of ledger/domain.py, with
# those enumerations: such a value spelt as a quoted literal where the column is compared
# (SQL or Python) is a second spelling, which ledger/domain.py says does not exist.
ENUMERATED_COLUMNS = {
    "status": ("BatchStatus",),
    "kind": ("EntryKind", "LotKind", "QuarantineKind"),
    "action": ("AdjustmentAction", "PeriodAction"),
    "destination": ("ExpiryDestination",),
    "cost_type": ("CostType",),
    "treatment": ("OverageMode",),
}


def _spelt_enum_value() -> re.Pattern:
    """`status <> 'open'`, `e.kind = 'usage'`, `kind IN ('usage', ...`, `row["kind"] ==
    "paid"`, `.assign(kind="rejected")`, `action != 'close'`: a column of
    ENUMERATED_COLUMNS (a name, an alias's column or a subscript) compared with, or set
    to, a quoted value of its enumerations."""
    from ledger import domain

    alternatives = []
    for column, enumerations in ENUMERATED_COLUMNS.items():
        values = "|".join(sorted({re.escape(member.value) for name in enumerations
                                  for member in getattr(domain, name)}))
        quoted = rf"""(?:'(?:{values})'|"(?:{values})")"""
        named = rf"""\b{column}\b['"]?\]?"""
        alternatives += [rf"{named}\s*(?:==|!=|<>|=)\s*{quoted}",  # kind = 'usage'
                         rf"{named}\s+(?:NOT\s+)?IN\s*\(\s*{quoted}"]  # kind IN ('usage', ...
    return re.compile("|".join(alternatives), re.IGNORECASE)


def _spelt_enum_values(path: Path) -> list[str]:
    pattern = _spelt_enum_value()
    return [f"{path.relative_to(REPOSITORY)}:{number}: {line.strip()}"
            for number, line in enumerate(path.read_text().splitlines(), start=1)
            if pattern.search(line)]


def test_enumeration_values_are_never_spelt_in_comparisons():
    """Outside ledger/domain.py and the migrations (which must keep the values they
    were written with), a comparison binds or builds its value from the enumeration."""
    found = [spelt for package in ("ledger", "intake", "rules", "reports", "creditbooks")
             for path in _sources(package)
             if path != REPOSITORY / "ledger" / "domain.py" and "migrations" not in path.parts
             for spelt in _spelt_enum_values(path)]
    assert found == []


def test_the_spelt_enum_value_detector_finds_what_it_looks_for():
    pattern = _spelt_enum_value()
    for spelt in ("WHERE status <> 'open'", "AND b.status <> 'open'", "e.kind = 'usage'",
                  "e.kind IN ('usage', 'breakage')", 'lots["kind"] == "paid"',
                  "action = 'close'", 'gone["destination"] == "escheat"',
                  'costs["cost_type"] == "variable"', "x.destination = 'breakage'",
                  'if event["action"] != "close":', '.assign(kind="rejected")',
                  'for destination in ("breakage", "escheat"):'):
        assert pattern.search(spelt), spelt
    for prose in ("the batch is open", "kind of usage", 'document = "usage"',
                  "status <> :open", "kind = '{LotKind.PAID}'", 'kind == "billing.credit_grant"',
                  "last_action = 'close'", 'write_document(landing, day, "usage", rows)',
                  'if status != "paid":', "kind = 'rollover'"):
        assert not pattern.search(prose), prose
