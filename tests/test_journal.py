"""The pre-write check of a journal batch: every reason it may not be written, by hand and
against a plain-Python restatement over random batches."""

from __future__ import annotations

from collections import Counter, defaultdict

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import BooksError
from ledger.journal import JournalBatch, UnbalancedJournalError, journal_errors, require_valid


def _messages(batch: JournalBatch) -> list[str]:
    return [error.message for error in journal_errors(batch)]


def _batch(entry_ids: list[str], lines: list[tuple[str, str, int, int]]) -> JournalBatch:
    entries = pd.DataFrame({"entry_id": entry_ids, "kind": "usage"})
    frame = pd.DataFrame(lines, columns=["entry_id", "currency", "amount_minor",
                                         "functional_minor"])
    frame = frame.astype({"amount_minor": "int64", "functional_minor": "int64"})
    frame.insert(1, "line_number", frame.groupby("entry_id").cumcount() + 1)
    return JournalBatch(entries, frame)


def test_a_balanced_batch_has_no_errors():
    batch = _batch(["usage/A", "fx/B"], [
        ("usage/A", "EUR", 500, 540), ("usage/A", "EUR", -500, -540),
        # A remeasurement line moves only the functional amount.
        ("fx/B", "EUR", 0, 12), ("fx/B", "USD", 0, -12)])
    assert journal_errors(batch) == []
    require_valid(batch)


def test_each_reason_is_named_with_its_entries():
    batch = _batch(["a", "a", "b", "c", "d", "e"], [
        ("a", "USD", 100, 100), ("a", "USD", -100, -100),
        ("b", "USD", 100, 100), ("b", "EUR", -100, -100),  # nets to zero only in functional
        ("c", "USD", 7, 7),  # one line
        ("d", "USD", 0, 0), ("d", "USD", 3, 3), ("d", "USD", -2, -2),
        ("ghost", "USD", 1, 1), ("ghost", "USD", -1, -1)])  # "e" has no lines at all
    assert _messages(batch) == [
        "entry ids repeated within the batch: ['a']",
        "lines refer to entries not in the batch: ['ghost']",
        "zero-amount lines in entries: ['d']",
        "entries with fewer than two lines: ['c', 'e']",
        "entry b does not balance in EUR: off by -100 minor",
        "entry b does not balance in USD: off by 100 minor",
        "entry c does not balance in USD: off by 7 minor",
        "entry d does not balance in USD: off by 1 minor",
        "entry c does not balance in the functional currency: off by 7 minor",
        "entry d does not balance in the functional currency: off by 1 minor",
    ]
    # As data: the batch as its caller names it, and the (first) entry each reason concerns.
    errors = journal_errors(batch, source="batch nightly-2026-01-05")
    assert [error.entry for error in errors] == ["a", "ghost", "d", "c", "b", "b", "c", "d", "c", "d"]
    assert errors[4] == BooksError("batch nightly-2026-01-05",
                                   "entry b does not balance in EUR: off by -100 minor", "b")
    assert str(errors[4]) == ("batch nightly-2026-01-05: entry b does not balance in EUR: "
                              "off by -100 minor")
    with pytest.raises(UnbalancedJournalError) as refused:
        require_valid(batch, source="batch nightly-2026-01-05")
    assert str(refused.value).startswith(
        "batch nightly-2026-01-05: entry ids repeated within the batch: ['a']; lines refer to ")
    assert str(refused.value).endswith(
        "; entry d does not balance in the functional currency: off by 1 minor")
    assert refused.value.errors == tuple(errors)


def test_many_unbalanced_entries_are_counted_after_the_first_five():
    ids = [f"usage/{n:02d}" for n in range(8)]
    batch = _batch(ids, [line for entry_id in ids
                         for line in ((entry_id, "USD", 10, 0), (entry_id, "USD", -9, 0))])
    errors = _messages(batch)
    assert errors[0] == "entry usage/00 does not balance in USD: off by 1 minor"
    assert errors[4] == "entry usage/04 does not balance in USD: off by 1 minor"
    assert errors[5] == "... and 3 more unbalanced entry-currency pairs"
    assert len(errors) == 6
    assert journal_errors(batch)[5].entry is None  # the count names no entry


def _restated(batch: JournalBatch) -> list[str]:
    """The same rules, one Python value at a time."""
    entry_ids = list(batch.entries["entry_id"])
    lines = list(batch.lines[["entry_id", "currency", "amount_minor", "functional_minor"]]
                 .itertuples(index=False, name=None))
    known, line_counts = set(entry_ids), Counter(line[0] for line in lines)
    by_currency, functional = defaultdict(int), defaultdict(int)
    for entry_id, currency, amount, functional_amount in lines:
        by_currency[entry_id, currency] += amount
        functional[entry_id] += functional_amount
    errors = []
    reasons = [
        ("entry ids repeated within the batch", [i for i, n in Counter(entry_ids).items() if n > 1]),
        ("lines refer to entries not in the batch", [i for i in line_counts if i not in known]),
        ("zero-amount lines in entries", [line[0] for line in lines if line[2] == line[3] == 0]),
        ("entries with fewer than two lines", [i for i in known if line_counts[i] < 2]),
    ]
    errors += [f"{reason}: {sorted(set(ids))[:5]}" for reason, ids in reasons if ids]
    unbalanced = sorted((key, total) for key, total in by_currency.items() if total)
    errors += [f"entry {entry_id} does not balance in {currency}: off by {total} minor"
               for (entry_id, currency), total in unbalanced[:5]]
    if len(unbalanced) > 5:
        errors.append(f"... and {len(unbalanced) - 5} more unbalanced entry-currency pairs")
    errors += [f"entry {entry_id} does not balance in the functional currency: off by {total} "
               "minor" for entry_id, total in sorted(functional.items()) if total][:5]
    return errors


_ENTRY_IDS = st.sampled_from([f"usage/{name}" for name in "ABCDEFG"])
_LINES = st.lists(st.tuples(_ENTRY_IDS, st.sampled_from(["USD", "EUR", "JPY"]),
                            st.integers(-3, 3), st.integers(-3, 3)), max_size=40)


@pytest.mark.slow  # over a second here: not in make test-fast
@settings(max_examples=300, deadline=None)
@given(entry_ids=st.lists(_ENTRY_IDS, max_size=8), lines=_LINES)
def test_the_check_says_what_a_value_at_a_time_restatement_says(entry_ids, lines):
    assert _messages(_batch(entry_ids, lines)) == _restated(_batch(entry_ids, lines))
