"""Scale-out under a real Airflow 3 (issue 26): the scheduler with LocalExecutor
(parallelism 4), Airflow's metadata and the ledger on PostgreSQL, catches up two nights of
the nightly DAG; the burn shards of each night run at the same time (their task instances'
start and end times, from the metadata database), and the ledger they post has the
command line's books on the same landing files.

The same steps as `make airflow-postgres` (tests/support/airflow_cluster.py).
"""

from __future__ import annotations

import shutil
from datetime import date
from itertools import combinations

import pytest

from creditbooks.demo import generate_landing
from tests.support.airflow_cluster import REPOSITORY, Layout, describe, prove_scale_out

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

FIRST_NIGHT, LAST_NIGHT = date(2026, 1, 1), date(2026, 1, 2)
# Three, not two: the scheduler has been seen to start a night's last shard a few seconds
# after the others, so two of three start together however fast the machine is.
SHARDS = 3
# A run's id carries its logical date, the end of the business day's data interval.
RUN_IDS = ["scheduled__2026-01-02T00:00:00+00:00", "scheduled__2026-01-03T00:00:00+00:00"]


@pytest.mark.timeout(480)  # Airflow's start-up, two nights of 9 tasks each, on 2 shared cores
def test_local_executor_burns_shards_at_once_and_posts_the_command_lines_books(postgres_server,
                                                                                tmp_path):
    layout = Layout(tmp_path, tmp_path / "landing", tmp_path / "policy.toml", FIRST_NIGHT,
                    LAST_NIGHT, SHARDS, parallelism=4)
    shutil.copy(REPOSITORY / "rules" / "policy.toml", layout.policy_file)
    generate_landing(layout.landing, customers=300, seed=7)  # as `make airflow-postgres`

    result = prove_scale_out(postgres_server, layout, run_timeout_seconds=360)
    describe(result)  # shown when the test fails: each shard's start, end and process

    assert result.runs.to_dict("records") == [{"run_id": run_id, "state": "success"}
                                              for run_id in RUN_IDS]
    shards = result.intervals
    assert sorted(zip(shards["run_id"], shards["shard"], shards["state"], strict=True)) == [
        (run_id, shard, "success") for run_id in RUN_IDS for shard in range(SHARDS)]
    for run_id in RUN_IDS:
        run = shards[shards["run_id"] == run_id].to_dict("records")
        overlapping = [(first["shard"], second["shard"]) for first, second in combinations(run, 2)
                       if max(first["start_date"], second["start_date"])
                       < min(first["end_date"], second["end_date"])]
        assert overlapping, f"{run_id}: no two burn shards ran at the same time: {run}"
        assert len({shard["pid"] for shard in run}) == SHARDS  # each in its own process
    assert sorted(set(result.overlaps["run_id"])) == RUN_IDS

    airflow, command_line = result.airflow_books, result.command_line_books
    assert airflow["journal_entries"] > 0 and airflow["trial_balances"]["2026-01"]
    assert airflow["chain_head"][0] == airflow["journal_entries"]
    assert airflow["trial_balances"] == command_line["trial_balances"]
    assert airflow["journal_entries"] == command_line["journal_entries"]
    assert airflow["chain_head"] == command_line["chain_head"]
