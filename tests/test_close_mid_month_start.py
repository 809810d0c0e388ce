"""A ledger whose first night is mid-month closes that month: its days are counted from the
first published night (issue 19 review), and a night before the first is refused in a
sentence that says so."""

from __future__ import annotations

from datetime import date

import pytest

from creditbooks.close import CloseRefusedError
from creditbooks.night.ingest import NightOrderError
from creditbooks.night.run import run_night
from reports.completeness import completeness_rows, day_statuses
from tests.support.close import close
from tests.support.nights import post_days

pytestmark = pytest.mark.slow  # posts and closes most of a month


def test_a_ledger_started_on_the_fifth_closes_its_first_month(sqlite_store, policy, tmp_path):
    (tmp_path / "landing").mkdir()
    post_days(sqlite_store, policy, tmp_path, date(2026, 1, 5), date(2026, 1, 30))
    statuses = day_statuses(sqlite_store, "2026-01")
    assert list(statuses)[0] == "2026-01-05" and len(statuses) == 27
    assert completeness_rows(sqlite_store, "2026-01")[-1] == {
        "business_date": "2026-01-31", "status": "missing: no published batch"}
    with pytest.raises(CloseRefusedError) as refusal:  # the 31st, not the 1st to the 4th
        close(sqlite_store, policy, tmp_path, "2026-01")
    assert str(refusal.value) == ("period 2026-01 is not complete: no published nightly batch "
                                  "for 2026-01-31")
    post_days(sqlite_store, policy, tmp_path, date(2026, 1, 31), date(2026, 1, 31))
    outcome = close(sqlite_store, policy, tmp_path, "2026-01")
    assert (outcome.status, outcome.version) == ("closed", 1)


def test_a_night_before_the_first_is_refused_in_a_sentence(sqlite_store, policy, tmp_path):
    landing, archive = tmp_path / "landing", tmp_path / "archive"
    landing.mkdir()
    post_days(sqlite_store, policy, tmp_path, date(2026, 1, 5), date(2026, 1, 5))
    with pytest.raises(NightOrderError) as refusal:
        run_night(sqlite_store, policy, landing, archive, date(2026, 1, 1))
    assert str(refusal.value) == (
        "business date 2026-01-01 is before the ledger's first night 2026-01-05: nights post "
        "in order from the first, never before it (a period's close counts its days from the "
        "first night)")
    # A period wholly before the first night is not made complete by it.
    assert list(day_statuses(sqlite_store, "2025-12"))[0] == "2025-12-01"
