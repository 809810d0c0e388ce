"""Nightly posting: one run per business day of the reporting timezone, backfilled in order.

wait for landing -> ingest -> post purchases -> burn (mapped over customer shards) ->
expire -> daily controls -> publish (an Asset the month-end DAG follows). Each task is a
thin, idempotent call into creditbooks.pipeline; the business date comes from the run's
data interval (a real one-day interval in the reporting timezone), never from "now".
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import Asset, Metadata, Param, dag, task
from airflow.timetables.interval import CronDataIntervalTimetable

REPORTING_TIMEZONE = os.environ.get("CREDITBOOKS_REPORTING_TIMEZONE", "UTC")
START_DATE = os.environ.get("CREDITBOOKS_START_DATE", "2026-01-01")
END_DATE = os.environ.get("CREDITBOOKS_END_DATE")
DEFAULT_SHARDS = int(os.environ.get("CREDITBOOKS_SHARDS", "2"))
LANDING_TIMEOUT_SECONDS = float(os.environ.get("CREDITBOOKS_LANDING_TIMEOUT_SECONDS", "21600"))
NIGHTLY_PUBLISHED = Asset("creditbooks://ledger/nightly-published")


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
        "shards": Param(DEFAULT_SHARDS, type="integer", minimum=1, maximum=256,
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

    @task(multiple_outputs=False)
    def ingest(business_date: str, params=None) -> dict:
        from creditbooks.pipeline import ingest_day

        return ingest_day(business_date, strict=bool(params["strict"]))

    @task
    def post_purchases(business_date: str) -> str:
        from creditbooks.pipeline import post_purchases_day

        post_purchases_day(business_date)
        return business_date

    @task
    def plan_shards(business_date: str, params=None) -> list[dict]:
        shard_count = int(params["shards"])
        return [{"business_date": business_date, "shard": shard, "shard_count": shard_count}
                for shard in range(shard_count)]

    @task
    def burn(work: dict) -> None:
        from creditbooks.pipeline import burn_shard

        burn_shard(work["business_date"], work["shard"], work["shard_count"])

    @task
    def expire(business_date: str) -> None:
        from creditbooks.pipeline import expire_day

        expire_day(business_date)

    @task
    def daily_controls(business_date: str) -> None:
        from creditbooks.pipeline import daily_controls

        daily_controls(business_date)

    @task(outlets=[NIGHTLY_PUBLISHED])
    def publish(business_date: str):
        from creditbooks.pipeline import publish_day

        status = publish_day(business_date)
        yield Metadata(NIGHTLY_PUBLISHED, {"business_date": business_date, "status": status})

    business_date = wait_for_landing()
    purchases_posted = post_purchases(business_date)
    ingest(business_date) >> purchases_posted
    burned = burn.expand(work=plan_shards(purchases_posted))
    burned >> expire(business_date) >> daily_controls(business_date) >> publish(business_date)


credit_ledger_nightly()
