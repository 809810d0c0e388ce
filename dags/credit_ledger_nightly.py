"""Nightly posting: one run per business day of the reporting timezone, backfilled in order.

Wait for landing, then one task per stage of the night's plan (`ledger.domain.night_tasks`,
in the order of `Stage`): a sharded stage mapped over customer shards, publish an Asset
the month-end DAG follows. Each task is a
thin, idempotent call into creditbooks.pipeline; the business date comes from the run's
data interval (a real one-day interval in the reporting timezone), never from "now".
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import Metadata, Param, dag, task
from airflow.timetables.interval import CronDataIntervalTimetable

from creditbooks.airflow_assets import NIGHTLY_PUBLISHED
from ledger.domain import MAX_SHARDS, Stage, night_tasks

REPORTING_TIMEZONE = os.environ.get("CREDITBOOKS_REPORTING_TIMEZONE", "UTC")
START_DATE = os.environ.get("CREDITBOOKS_START_DATE", "2026-01-01")
END_DATE = os.environ.get("CREDITBOOKS_END_DATE")
DEFAULT_SHARDS = int(os.environ.get("CREDITBOOKS_SHARDS", "2"))
LANDING_TIMEOUT_SECONDS = float(os.environ.get("CREDITBOOKS_LANDING_TIMEOUT_SECONDS", "21600"))


def _business_date(data_interval_start) -> str:
    return data_interval_start.in_timezone(REPORTING_TIMEZONE).date().isoformat()


@dag(
    dag_id="credit_ledger_nightly",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone=REPORTING_TIMEZONE),
    start_date=pendulum.parse(START_DATE, tz=REPORTING_TIMEZONE),
    end_date=pendulum.parse(END_DATE, tz=REPORTING_TIMEZONE) if END_DATE else None,
    catchup=True,
    max_active_runs=1,
    default_args={"retries": 0},
    params={
        "shards": Param(DEFAULT_SHARDS, type="integer", minimum=1, maximum=MAX_SHARDS,
                        description="customer shards the burn step is spread over"),
        "strict": Param(False, type="boolean", description="refuse the batch on any bad row"),
    },
    tags=["creditbooks"],
)
def credit_ledger_nightly():
    @task
    def wait_for_landing(data_interval_start=None) -> str:
        from creditbooks.pipeline import check_reporting_timezone, wait_for_landing

        check_reporting_timezone(REPORTING_TIMEZONE)
        business_date = _business_date(data_interval_start)
        wait_for_landing(business_date, LANDING_TIMEOUT_SECONDS)
        return business_date

    @task(task_id=Stage.INGEST.value, multiple_outputs=False)
    def ingest(business_date: str, params=None) -> dict:
        from airflow.sdk import get_current_context

        from creditbooks.actors import airflow_actor
        from creditbooks.pipeline import ingest_day

        # The batch records who ran it: the run's triggering user, else the DAG's owner.
        return ingest_day(business_date, strict=bool(params["strict"]),
                          actor=airflow_actor(get_current_context()))

    @task
    def run_stage(business_date: str, stage: str) -> None:
        from creditbooks.pipeline import run_stage_day

        run_stage_day(business_date, stage)

    @task
    def plan_shards(business_date: str, stage: str, params=None) -> list[dict]:
        return [{"business_date": business_date, "stage": stage, "shard": planned.shard,
                 "shard_count": planned.shard_count}
                for planned in night_tasks(int(params["shards"])) if planned.stage == stage]

    @task
    def run_shard(work: dict) -> None:
        from creditbooks.pipeline import run_stage_day

        run_stage_day(work["business_date"], work["stage"], work["shard"], work["shard_count"])

    @task(task_id=Stage.PUBLISH.value, outlets=[NIGHTLY_PUBLISHED])
    def publish(business_date: str):
        from creditbooks.pipeline import publish_day

        status = publish_day(business_date)
        yield Metadata(NIGHTLY_PUBLISHED, {"business_date": business_date, "status": status})

    # The task chain is the night's plan (ledger/domain.py), written nowhere else; the
    # shards are planned at run time, so the plan is walked here with one a stage.
    business_date = wait_for_landing()
    previous = None
    for stage in (planned.stage for planned in night_tasks()):
        if stage is Stage.INGEST:
            done = ingest(business_date)
        elif stage is Stage.PUBLISH:
            done = publish(business_date)
        elif stage.is_sharded:
            planned = plan_shards.override(task_id=f"plan_{stage}_shards")(business_date,
                                                                           stage.value)
            previous >> planned
            done = run_shard.override(task_id=stage.value).expand(work=planned)
        else:
            done = run_stage.override(task_id=stage.value)(business_date, stage.value)
        if previous is not None:
            previous >> done
        previous = done


credit_ledger_nightly()
