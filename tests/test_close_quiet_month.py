"""A month in which no money moved still closes, and its package still verifies."""

from __future__ import annotations

import csv
from datetime import date

import pytest

from reports.outputs.verify_package import verify_package
from tests.support.close import close
from tests.support.nights import post_days

pytestmark = pytest.mark.slow  # posts and closes a whole month


def test_a_month_of_empty_nights_closes_with_its_reconciliations_empty(sqlite_store, policy,
                                                                       tmp_path):
    (tmp_path / "landing").mkdir()
    post_days(sqlite_store, policy, tmp_path, date(2026, 1, 1), date(2026, 1, 31))
    outcome = close(sqlite_store, policy, tmp_path, "2026-01")
    assert (outcome.status, outcome.version) == ("closed", 1)
    with (outcome.package / "reconciliations.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    nothing_to_compare = [row for row in rows if row["scope"] == ""]
    assert nothing_to_compare and all(
        (row["left_amount"], row["right_amount"], row["difference"], row["passed"])
        == ("", "", "", "True") for row in nothing_to_compare)
    assert list(verify_package(outcome.package)) == []
