"""Shared fixtures: a store on SQLite and on a real PostgreSQL, policies, landing days."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# Airflow reads its home when first imported: point it at a throwaway directory before
# any test module can import it, so tests never touch a real Airflow installation.
os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="creditbooks-airflow-home-")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(Path(__file__).resolve().parents[1] / "dags")
# Close, reopen and approve refuse without a named person (creditbooks/actors.py): the tests
# act as "tester" unless they pass another actor. The tests of that refusal unset it
# (tests/test_accountability.py), so setting it here hides no refusal.
os.environ["CREDITBOOKS_ACTOR"] = "tester"

import pytest  # noqa: E402

from ledger.store import Store  # noqa: E402
from rules.policy import load_policy  # noqa: E402
from tests.support.nights import post_days  # noqa: E402
from tests.support.postgres_server import PostgresServer  # noqa: E402


@pytest.fixture(scope="session")
def postgres_server():
    server = PostgresServer.start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'ledger.db'}"
    else:
        url = request.getfixturevalue("postgres_server").create_database()
    store = Store(url)
    store.initialise()
    yield store
    store.dispose()


@pytest.fixture
def sqlite_store(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'ledger.db'}")
    store.initialise()
    yield store
    store.dispose()


@pytest.fixture(scope="session")
def policy():
    return load_policy()


@pytest.fixture
def january(store, policy, tmp_path):
    """The hand-worked scenario with every night of January 2026 posted."""
    from datetime import date

    from tests.support.scenario import write_scenario

    write_scenario(tmp_path / "landing")
    post_days(store, policy, tmp_path, date(2026, 1, 1), date(2026, 1, 31))
    return store
