"""The month-end close as the tests run it: packages under ROOT/close, archive ROOT/archive."""

from __future__ import annotations

from pathlib import Path

from creditbooks.close import close_period
from ledger.periods import Period
from tests.support.nights import post_days


def close(store, policy, root, period, **options):
    return close_period(store, policy, period, root / "close", root / "archive", actor="tester",
                        **options)


def close_months(root: Path, policy, *periods: str) -> Path:
    """Post every night of each period (in order) from ROOT/landing into a new ledger
    ROOT/ledger.db and close it; the last period's package."""
    from ledger.store import Store

    store = Store(f"sqlite:///{root / 'ledger.db'}")
    store.initialise()
    for period in map(Period, periods):
        post_days(store, policy, root, period.first_day, period.last_day)
        package = close(store, policy, root, period).package
    store.dispose()
    return package
