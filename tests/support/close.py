"""The month-end close as the tests run it: packages under ROOT/close, archive ROOT/archive."""

from __future__ import annotations

from creditbooks.close import close_period


def close(store, policy, root, period, **options):
    return close_period(store, policy, period, root / "close", root / "archive", actor="tester",
                        **options)
