"""Write the books a ledger holds as JSON: trial balances, lot balances and the chain head.

Run under the code of the version that made the ledger (scripts/make-v010-fixtures.sh runs
it with PYTHONPATH at the v0.1.0 worktree) to record what that version reported; the
migration tests compare an upgraded copy of the ledger with this record.

    python scripts/record_books.py DATABASE_URL OUT.json
"""

from __future__ import annotations

import json
import sys
from datetime import datetime

from sqlalchemy import text

import ledger.store
from ledger.chain import verify_chain
from ledger.store import Store
from reports.statements import trial_balance
from reports.subledger import lot_balances
from rules.policy import load_policy


def recorded_books(url: str) -> dict:
    """Every period's trial balance (transaction and functional currency), every lot's
    balance and the recomputed chain head, as the running code reports them."""
    store = Store(url)
    functional_currency = load_policy().functional_currency
    with store.engine.connect() as connection:
        periods = [row[0] for row in connection.execute(
            text("SELECT DISTINCT period FROM journal_entries ORDER BY period"))]
        chain = verify_chain(connection)
    if not chain.holds:
        raise SystemExit(f"the chain does not hold: {chain.first_mismatch}")
    books = {
        "trial_balances": {period: trial_balance(store, period) for period in periods},
        "functional_trial_balances": {period: trial_balance(store, period, functional_currency)
                                      for period in periods},
        "lot_balances": [{**lot, "expires_at": canonical_instant(lot["expires_at"])}
                         for lot in lot_balances(store)],
        "chain_head": {"sequence": chain.head.sequence, "chain_hash": chain.head.chain_hash,
                       "entries_checked": chain.entries_checked},
    }
    store.dispose()
    return books


def canonical_instant(shown: str) -> str:
    """A lot's expiry as 'YYYY-MM-DD HH:MM:SS', or '' for none.

    v0.1.0 shows the driver's own value: '2026-01-16 23:31:46.000000' on SQLite,
    '2026-01-16 23:31:46' on PostgreSQL, and 'NaT' there for no expiry; the instant is
    what is recorded, not how one store prints it."""
    if shown in ("", "NaT", "None"):
        return ""
    return datetime.fromisoformat(shown).isoformat(sep=" ", timespec="seconds")


if __name__ == "__main__":
    database_url, out_file = sys.argv[1:3]
    with open(out_file, "w", encoding="utf-8") as out:
        json.dump({"recorded_by": ledger.store.__file__, **recorded_books(database_url)}, out,
                  indent=1, sort_keys=True)
        out.write("\n")
