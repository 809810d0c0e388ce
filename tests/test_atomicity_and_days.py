"""A crash mid-batch leaves nothing half-posted; business days follow the reporting timezone."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from creditbooks.night.run import run_night
from creditbooks.night.stages import publish_stage
from ledger.domain import Stage
from ledger.periods import business_day
from ledger.schema import ALL_TABLES
from tests.support.nights import replace_stage
from tests.support.scenario import NIGHTS, trial_balance_of, write_scenario


def row_counts(store):
    return {table.__tablename__: int(store.read_frame(
        f"SELECT COUNT(*) AS n FROM {table.__tablename__}")["n"][0])
            for table in ALL_TABLES}


@pytest.mark.slow  # over a second here: not in make test-fast
def test_a_crash_after_rows_are_written_rolls_the_whole_batch_back(store, policy, tmp_path,
                                                                    monkeypatch):
    write_scenario(tmp_path / "landing")
    landing, archive = tmp_path / "landing", tmp_path / "archive"
    run_night(store, policy, landing, archive, NIGHTS[0])
    before = row_counts(store)

    def publish_then_crash(connection, night):
        publish_stage(connection, night)  # every stage has written its rows...
        raise RuntimeError("simulated crash before commit")  # ...and the process dies

    replace_stage(monkeypatch, Stage.PUBLISH, publish_then_crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_night(store, policy, landing, archive, NIGHTS[1])
    assert row_counts(store) == before

    monkeypatch.undo()
    for night in NIGHTS[1:]:
        assert run_night(store, policy, landing, archive, night).status == "posted"
    assert trial_balance_of(store, "2026-02")[("Liabilities:DeferredRevenue:Credits", "USD")] == (
        "-20.33", "4.33", "0.00", "-16.00")


def test_business_days_follow_the_reporting_timezone_across_daylight_saving():
    spring_forward = business_day(date(2026, 3, 8), "America/New_York")
    assert spring_forward.starts_at_utc == pd.Timestamp("2026-03-08T05:00:00Z")
    assert spring_forward.ends_at_utc == pd.Timestamp("2026-03-09T04:00:00Z")
    assert spring_forward.ends_at_utc - spring_forward.starts_at_utc == pd.Timedelta(hours=23)
    fall_back = business_day(date(2026, 11, 1), "America/New_York")
    assert fall_back.ends_at_utc - fall_back.starts_at_utc == pd.Timedelta(hours=25)
    assert business_day(date(2026, 1, 31), "Asia/Tokyo").period == "2026-01"
