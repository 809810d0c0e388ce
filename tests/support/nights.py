"""Running nights in tests: a range of days, and a stage replaced for one test."""

from __future__ import annotations

from datetime import timedelta
from types import MappingProxyType

import creditbooks.night.stages
from creditbooks.night.run import run_night
from ledger.domain import Stage


def post_days(store, policy, root, first, last):
    """Run every night from first to last (dates) from root/landing into root/archive."""
    day = first
    while day <= last:
        run_night(store, policy, root / "landing", root / "archive", day)
        day += timedelta(days=1)


def replace_stage(monkeypatch, stage: Stage, runner) -> None:
    """Make `stage` run `runner` (connection, night[, shard, shard_count]) for this test."""
    runners = dict(creditbooks.night.stages.STAGE_RUNNERS)
    runners[stage] = runner
    monkeypatch.setattr(creditbooks.night.stages, "STAGE_RUNNERS", MappingProxyType(runners))
