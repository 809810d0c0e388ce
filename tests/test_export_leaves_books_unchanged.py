"""Issue 20 follow-up: an ERP export keeps the ids it issued (exported_journal_ids) but
changes nothing in the books: the same trial balance, the same sealed chain heads, and
a second export of the same period writes byte-identical files."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.chain import chain_head, verify_chain
from ledger.record_chain import record_chain_head
from reports.outputs.exports import export_period, mapping_path
from reports.statements import trial_balance
from tests.support.close import close

# Xero and QuickBooks journals post in the base currency: those go out in USD (--functional).
TARGETS = (("netsuite", None), ("sap", None), ("csv", None), ("xero", "USD"),
           ("quickbooks", "USD"))


def books_state(store) -> tuple:
    """What the books say: the period's trial balance (transaction and functional) and
    the heads of the journal's seal chain and of the record chain."""
    with store.engine.connect() as connection:
        heads = (chain_head(connection), record_chain_head(connection))
    return (trial_balance(store, "2026-01"), trial_balance(store, "2026-01", "USD"), heads)


def issued_ids(store) -> list[tuple]:
    return store.read_frame("SELECT namespace, journal_key, number FROM exported_journal_ids "
                            "ORDER BY namespace, number").values.tolist()


def export_all(store, policy, directory: Path) -> dict[str, bytes]:
    """Every target's files of January, by file name."""
    for target, functional_currency in TARGETS:
        export_period(store, "2026-01", target, directory / f"{target}.csv", policy.exports,
                      functional_currency=functional_currency,
                      ledger_currency=policy.functional_currency)
        assert mapping_path(directory / f"{target}.csv").exists()
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir())}


@pytest.mark.slow  # over a second here: not in make test-fast
def test_exporting_twice_writes_the_same_bytes_and_leaves_the_books_unchanged(
        january, policy, tmp_path):
    close(january, policy, tmp_path, "2026-01")
    before = books_state(january)
    assert issued_ids(january) == []

    first = export_all(january, policy, tmp_path / "first")
    issued = issued_ids(january)
    assert len(issued) > 3  # the export did write: the ids it issued are kept
    assert books_state(january) == before

    second = export_all(january, policy, tmp_path / "second")
    assert second == first and len(first) >= 2 * len(TARGETS)
    assert issued_ids(january) == issued  # the same journals keep the same ids, none added
    assert books_state(january) == before
    with january.engine.connect() as connection:
        assert verify_chain(connection).holds
