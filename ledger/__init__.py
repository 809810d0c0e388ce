"""The books: money, accounts, journal batches, periods, the domain values named once
(`domain.py`), the schema and its migrations, the store, the hash chains and what the
ledger has seen. The bottom of the house: it imports nothing above it (README, Layout)."""
