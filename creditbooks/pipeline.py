"""What the Airflow tasks call: one function per task, each idempotent and self-contained.

Every function takes plain values (a business date as `YYYY-MM-DD`, a shard number),
opens the ledger from `Settings`, and runs one stage in one transaction, so a task can
be retried or re-run at any time. Settings come from the environment
(`CREDITBOOKS_DB`, `CREDITBOOKS_LANDING`, ...) or, inside Airflow, from Airflow
Variables of the same name in lower case (`creditbooks_landing`, ...); never from
Airflow's own metadata database. The ledger's URL, which holds a password, comes from
`$CREDITBOOKS_DB` or the Airflow connection `creditbooks_db` (Airflow's secrets
backends and log masking apply to it), and is never printed.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import make_url

from creditbooks.actors import resolve_actor
from creditbooks.close import close_period, require_complete
from creditbooks.night.ingest import ingest, read_landing_day
from creditbooks.night.posting import open_night
from creditbooks.night.run import write_publish_anchor
from creditbooks.night.stages import run_stage
from intake.object_storage import object_storage_url, path_exists
from intake.usage_buckets import DEFAULT_CHUNK_ROWS
from ledger.domain import Stage
from ledger.locks import locked_periods
from ledger.periods import Period, parse_business_date
from ledger.store import Store, read_frame
from reports.outputs.beancount_export import write_beancount
from reports.outputs.exports import export_period
from reports.reconciliations import reconcile_period
from rules.policy import Policy, load_policy


class LandingNotReadyError(RuntimeError):
    """The landing day did not become ready in time; nothing was posted."""


class MonthEndError(RuntimeError):
    """The month cannot be closed; the message says what is missing or does not tie."""


def _setting(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    if value is not None:
        return value
    try:
        from airflow.sdk import Variable  # only inside Airflow; tests and the CLI use the env
    except ImportError:
        return default
    try:
        return Variable.get(name.lower(), default=default)
    except Exception:  # no Airflow API to ask (outside a task): fall back to the default
        return default


DATABASE_CONNECTION_ID = "creditbooks_db"
_SQLALCHEMY_DRIVERS = {"postgres": "postgresql+psycopg", "postgresql": "postgresql+psycopg"}


def _database_url() -> str | None:
    """$CREDITBOOKS_DB, else the Airflow connection, else the (older) Airflow Variable."""
    if os.environ.get("CREDITBOOKS_DB"):
        return os.environ["CREDITBOOKS_DB"]
    try:
        from airflow.sdk import Connection
    except ImportError:
        return None
    try:
        connection = Connection.get(DATABASE_CONNECTION_ID)
    except Exception:  # no such connection (AirflowNotFoundException and kin)
        return _setting("CREDITBOOKS_DB")
    url = make_url(connection.get_uri())
    return url.set(drivername=_SQLALCHEMY_DRIVERS.get(url.drivername, url.drivername)
                   ).render_as_string(hide_password=False)


@dataclass(frozen=True)
class Settings:
    database_url: str | None = field(repr=False)  # holds the password: never in a log line
    landing_root: Path
    archive_root: Path
    close_root: Path
    policy_file: Path | None
    landing_marker: str
    export_formats: tuple[str, ...]
    usage_chunk_rows: int = DEFAULT_CHUNK_ROWS  # a larger usage file is read in chunks

    @staticmethod
    def resolve() -> Settings:
        policy_file = _setting("CREDITBOOKS_POLICY")
        return Settings(
            database_url=_database_url(),
            landing_root=Path(_setting("CREDITBOOKS_LANDING", "landing")),
            archive_root=Path(_setting("CREDITBOOKS_ARCHIVE", "archive")),
            close_root=Path(_setting("CREDITBOOKS_CLOSE_DIR", "close")),
            policy_file=Path(policy_file) if policy_file else None,
            landing_marker=_setting("CREDITBOOKS_LANDING_MARKER", "_SUCCESS"),
            export_formats=tuple(name.strip() for name in _setting(
                "CREDITBOOKS_EXPORT_FORMATS", "csv,beancount").split(",") if name.strip()),
            usage_chunk_rows=int(_setting("CREDITBOOKS_USAGE_CHUNK_ROWS",
                                          str(DEFAULT_CHUNK_ROWS))),
        )

    def store(self) -> Store:
        store = Store(self.database_url)
        store.require_initialised()
        return store

    def policy(self) -> Policy:
        return load_policy(self.policy_file)


def wait_for_landing(business_date: str, timeout_seconds: float, poke_seconds: float = 30) -> str:
    """Block until LANDING/D/ (and its marker file, if one is configured) exists, on local
    disk or object storage (`s3://bucket/landing`: looked for afresh at each poke)."""
    settings = Settings.resolve()
    directory = settings.landing_root / parse_business_date(business_date).isoformat()
    awaited = directory / settings.landing_marker if settings.landing_marker else directory
    awaited = object_storage_url(awaited) or awaited  # shown as the URL it is
    deadline = time.monotonic() + timeout_seconds
    while not path_exists(awaited):
        if time.monotonic() >= deadline:
            raise LandingNotReadyError(
                f"landing day {business_date} not ready after {timeout_seconds:g}s: "
                f"{awaited} is missing; nothing was posted")
        time.sleep(min(poke_seconds, max(0.0, deadline - time.monotonic())))
    return str(awaited)


def check_reporting_timezone(dag_timezone: str) -> None:
    policy = Settings.resolve().policy()
    if policy.reporting_timezone != dag_timezone:
        raise ValueError(f"the DAG schedules days in {dag_timezone} but the policy's reporting "
                         f"timezone is {policy.reporting_timezone}; set "
                         "CREDITBOOKS_REPORTING_TIMEZONE to match")


def _night(settings: Settings, business_date: str):
    return open_night(settings.policy(), settings.archive_root, parse_business_date(business_date))


def ingest_day(business_date: str, strict: bool = False, actor: str | None = None) -> dict:
    """actor: the Airflow run's person (`creditbooks.actors.airflow_actor`), recorded on
    the batch."""
    settings = Settings.resolve()
    actor = resolve_actor(actor, "the nightly run", os_fallback=True)
    store, night = settings.store(), _night(settings, business_date)
    landing = read_landing_day(settings.landing_root, night.day.business_date,
                               settings.usage_chunk_rows, night.policy.usage_source,
                               purchase_source=night.policy.purchase_source)
    with store.transaction() as connection:
        ingest(connection, landing, night.day, night.policy, night.archive_root, night.batch_id,
               strict, night.recorded_at, actor)
        files = read_frame(connection, "SELECT document, rows_read, rows_accepted, rows_duplicate,"
                           " rows_rejected FROM batch_files WHERE batch_id = :batch_id "
                           "ORDER BY document", batch_id=night.batch_id)
    return {row.document: {"read": int(row.rows_read), "accepted": int(row.rows_accepted),
                           "duplicates": int(row.rows_duplicate), "rejected": int(row.rows_rejected)}
            for row in files.itertuples(index=False)}


def run_stage_day(business_date: str, stage: str, shard: int = 0, shard_count: int = 1) -> None:
    """One stage after ingest (ledger.domain.Stage), for one shard if it is sharded."""
    settings = Settings.resolve()
    store, night = settings.store(), _night(settings, business_date)
    with store.transaction() as connection:
        run_stage(connection, night, Stage(stage), shard, shard_count)


def publish_day(business_date: str) -> str:
    settings = Settings.resolve()
    store, night = settings.store(), _night(settings, business_date)
    with store.transaction() as connection:
        status = run_stage(connection, night, Stage.PUBLISH)
    write_publish_anchor(store, night.day.business_date, settings.archive_root)  # after the commit
    return status


def periods_ending_on(business_dates: list[str]) -> list[Period]:
    """The periods (YYYY-MM) whose last day is one of the given business dates, in order."""
    days = [parse_business_date(text) for text in business_dates]
    return sorted({Period.of(day) for day in days if day == Period.of(day).last_day})


def check_month_complete(period: Period) -> list[str]:
    """Every day of the period has a published batch; returns the quiet (empty) days."""
    return list(require_complete(Settings.resolve().store(), period))


def month_end_reconciliations(period: Period) -> list[dict]:
    settings = Settings.resolve()
    accounts = settings.policy().accounts
    results = reconcile_period(settings.store(), period, accounts.deferred_revenue,
                               accounts.cash_clearing, accounts.sales_tax)
    failed = [result for result in results if not result.passed]
    if failed:
        raise MonthEndError(f"{period} reconciliations failed, not locked: " + "; ".join(
            f"{result.name}: {'; '.join(result.items[:3])}" for result in failed))
    return [row for result in results for row in result.rows()]


def month_end_close(period: Period, actor: str | None = None) -> dict:
    """Reports, package and lock (closing a closed period changes nothing). actor: the
    Airflow run's person (`creditbooks.actors.airflow_actor`)."""
    settings = Settings.resolve()
    outcome = close_period(settings.store(), settings.policy(), period, settings.close_root,
                           settings.archive_root, actor=actor)
    return {"period": outcome.period, "status": outcome.status, "version": outcome.version,
            "package": str(outcome.package) if outcome.package else ""}


def month_end_exports(period: Period) -> list[str]:
    """Export the closed period in each configured format into CLOSE_DIR/YYYY-MM/exports/."""
    settings = Settings.resolve()
    store, policy = settings.store(), settings.policy()
    with store.engine.connect() as connection:
        if period not in locked_periods(connection):
            raise MonthEndError(f"{period} is not closed; exports are made after the lock")
    directory = settings.close_root / period / "exports"
    written = []
    for target in settings.export_formats:
        if target == "beancount":
            written.append(write_beancount(store, period, directory / f"{period}.beancount"))
        else:
            # Xero manual journals carry no currency: its export is in the functional one.
            written += export_period(store, period, target, directory / f"{period}-{target}.csv",
                                     policy.exports, functional_currency=(
                                         policy.functional_currency if target == "xero" else None),
                                     ledger_currency=policy.functional_currency)
    return [str(path) for path in written]
