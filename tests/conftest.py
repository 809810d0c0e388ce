"""Shared fixtures: a store on SQLite and on a real PostgreSQL, policies, landing days."""

from __future__ import annotations

import pytest

from ledger.store import Store
from rules.policy import load_policy
from tests.postgres_server import PostgresServer


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
