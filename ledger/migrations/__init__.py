"""The ledger's schema migrations (Alembic): one file in versions/ per schema change.

`env.py` runs them against the ledger database, which also holds Alembic's version table
(`ledger.schema_version.VERSION_TABLE`). `creditbooks upgrade` (ledger/upgrade.py) is how
a ledger is upgraded; the root `alembic.ini` is for writing a new migration. README,
"Upgrading", says how.
"""
