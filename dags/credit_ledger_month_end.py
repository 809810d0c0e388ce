"""Month-end close: after the last night of a month publishes, close that month.

Triggered by the nightly DAG's Asset. It goes on only for months whose last day is among
the nights that triggered it (or for a `period` given by hand), then: every day of the
period has a published batch -> the reconciliations tie -> the close (reports, package
under CLOSE_DIR/YYYY-MM/vN/, period lock) -> exports (CREDITBOOKS_EXPORT_FORMATS, default
csv and beancount, into CLOSE_DIR/YYYY-MM/exports/). Each task is a thin call into
creditbooks.pipeline; closing a closed period changes nothing.

A period enters as text (the `period` param typed by hand, or a name XCom hands back to
each mapped task) and is made a `ledger.periods.Period` before the pipeline sees it, so a
malformed one stops the run at the task it reaches, naming it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pendulum
from airflow.sdk import Param, dag, task

from creditbooks.airflow_assets import NIGHTLY_PUBLISHED

if TYPE_CHECKING:  # imported by the tasks that run, not when the scheduler parses this file
    from ledger.periods import Period


@dag(
    dag_id="credit_ledger_month_end",
    schedule=[NIGHTLY_PUBLISHED],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 0},
    params={"period": Param("", type="string", description="YYYY-MM to close by hand; empty: "
                            "the month of the night that triggered this run")},
    tags=["creditbooks"],
)
def credit_ledger_month_end():
    @task.short_circuit
    def periods_to_close(params=None, triggering_asset_events=None) -> list[Period]:
        from creditbooks.pipeline import periods_ending_on
        from ledger.periods import Period

        if params.get("period"):
            return [Period(params["period"])]
        # Several nights may publish before this DAG runs: close every month that ended.
        published = [event.extra["business_date"]
                     for events in (triggering_asset_events or {}).values() for event in events
                     if "business_date" in (event.extra or {})]
        return periods_ending_on(published)

    @task
    def completeness(period: str) -> list[str]:
        from creditbooks.pipeline import check_month_complete
        from ledger.periods import Period

        return check_month_complete(Period(period))

    @task
    def reconciliations(period: str) -> list[dict]:
        from creditbooks.pipeline import month_end_reconciliations
        from ledger.periods import Period

        return month_end_reconciliations(Period(period))

    @task(multiple_outputs=False)
    def close_and_lock(period: str) -> dict:
        from airflow.sdk import get_current_context

        from creditbooks.actors import airflow_actor
        from creditbooks.pipeline import month_end_close
        from ledger.periods import Period

        # The lock records who closed: the run's triggering user, else the DAG's owner.
        return month_end_close(Period(period), actor=airflow_actor(get_current_context()))

    @task
    def exports(period: str) -> list[str]:
        from creditbooks.pipeline import month_end_exports
        from ledger.periods import Period

        return month_end_exports(Period(period))

    periods = periods_to_close()
    completeness.expand(period=periods) >> reconciliations.expand(period=periods) >> \
        close_and_lock.expand(period=periods) >> exports.expand(period=periods)


credit_ledger_month_end()
