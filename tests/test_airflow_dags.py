"""The DAGs under real Airflow: they import, they are wired as designed, and the ledger
they post equals the command line's, for one shard and for several."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pendulum
import pytest
from beancount import loader

from creditbooks.night import ingest
from creditbooks.night.run import run_night
from intake.usage_buckets import take_in_streamed_usage
from ledger.chain import chain_head
from ledger.locks import locked_periods
from ledger.store import Store
from tests.support.scenario import trial_balance_of, write_scenario

ENTRIES = """SELECT e.entry_id, e.kind, e.business_date, e.period, e.customer_id, e.source_ref,
                    e.batch_id, e.policy_version, l.line_number, l.account, l.currency,
                    l.amount_minor, l.meter, l.purchase_id
             FROM journal_entries e JOIN journal_lines l ON l.entry_id = e.entry_id
             ORDER BY e.entry_id, l.line_number"""
SCENARIO_NIGHTS = [date(2026, 1, 30), date(2026, 1, 31), date(2026, 2, 1)]


@pytest.fixture(scope="session")
def airflow_metadata_db():
    airflow = str(Path(sys.executable).with_name("airflow"))
    subprocess.run([airflow, "db", "migrate"], check=True, capture_output=True, env=os.environ)


@pytest.fixture
def dags(airflow_metadata_db, monkeypatch, tmp_path):
    monkeypatch.setenv("CREDITBOOKS_LANDING_TIMEOUT_SECONDS", "1")
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    assert bag.import_errors == {}
    return bag


def use_ledger(monkeypatch, root: Path) -> Store:
    root.mkdir(parents=True, exist_ok=True)
    store = Store(f"sqlite:///{root / 'ledger.db'}")
    store.initialise()
    for name, value in {"CREDITBOOKS_DB": store.url, "CREDITBOOKS_LANDING": root / "landing",
                        "CREDITBOOKS_ARCHIVE": root / "archive",
                        "CREDITBOOKS_CLOSE_DIR": root / "close"}.items():
        monkeypatch.setenv(name, str(value))
    return store


def land_scenario(root: Path) -> None:
    write_scenario(root / "landing")
    for day in range(1, 32):
        directory = root / "landing" / date(2026, 1, day).isoformat()
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "_SUCCESS").touch()
    (root / "landing" / "2026-02-01" / "_SUCCESS").touch()


def run_nightly(bag, business_date: date, shards: int):
    # A manual run's data interval is the day that ends at its logical date.
    logical = pendulum.datetime(business_date.year, business_date.month, business_date.day,
                                tz="UTC") + timedelta(days=1)
    return bag.get_dag("credit_ledger_nightly").test(logical_date=logical,
                                                     run_conf={"shards": shards})


@pytest.mark.slow  # over a second here: not in make test-fast
def test_dags_have_the_designed_tasks_and_dependencies(dags):
    nightly = dags.get_dag("credit_ledger_nightly")
    assert {task.task_id: sorted(task.downstream_task_ids) for task in nightly.tasks} == {
        "wait_for_landing": ["controls", "expire", "ingest", "plan_burn_shards", "publish",
                             "purchases"],
        "ingest": ["purchases"],
        "purchases": ["burn", "plan_burn_shards"],
        "plan_burn_shards": ["burn"],
        "burn": ["expire"],
        "expire": ["controls"],
        "controls": ["publish"],
        "publish": [],
    }
    assert nightly.catchup is True and nightly.max_active_runs == 1
    interval = nightly.timetable.infer_manual_data_interval(
        run_after=pendulum.datetime(2026, 1, 6, tz="UTC"))
    assert (interval.start, interval.end) == (pendulum.datetime(2026, 1, 5, tz="UTC"),
                                              pendulum.datetime(2026, 1, 6, tz="UTC"))
    month_end = dags.get_dag("credit_ledger_month_end")
    assert {task.task_id: sorted(task.downstream_task_ids) for task in month_end.tasks} == {
        "periods_to_close": ["close_and_lock", "completeness", "exports", "reconciliations"],
        "completeness": ["reconciliations"], "reconciliations": ["close_and_lock"],
        "close_and_lock": ["exports"], "exports": []}


@pytest.mark.slow  # real Airflow runs the DAG
@pytest.mark.parametrize("shards", [1, 3])
def test_airflow_posts_exactly_what_the_command_line_posts(dags, monkeypatch, tmp_path, policy,
                                                           shards):
    expected = Store(f"sqlite:///{tmp_path / 'cli.db'}")
    expected.initialise()
    land_scenario(tmp_path)
    for night in SCENARIO_NIGHTS:
        run_night(expected, policy, tmp_path / "landing", tmp_path / "cli-archive", night)
    store = use_ledger(monkeypatch, tmp_path / "airflow")
    (tmp_path / "airflow" / "landing").symlink_to(tmp_path / "landing")
    streamed = []
    if shards > 1:  # and the usage files taken in two rows at a time
        monkeypatch.setenv("CREDITBOOKS_USAGE_CHUNK_ROWS", "2")
        monkeypatch.setattr(ingest, "take_in_streamed_usage", lambda streamed_file, *rest: (
            streamed.append(streamed_file.file_name) or take_in_streamed_usage(streamed_file, *rest)))
    for night in SCENARIO_NIGHTS:
        assert run_nightly(dags, night, shards).state == "success"
    # The first night's two usage rows fit in a chunk; the next nights' three and five do not.
    assert streamed == (["usage.csv"] * 2 if shards > 1 else [])
    assert store.read_frame(ENTRIES).equals(expected.read_frame(ENTRIES))
    assert trial_balance_of(store, "2026-02") == trial_balance_of(expected, "2026-02")
    with store.engine.connect() as airflow, expected.engine.connect() as command_line:
        assert chain_head(airflow) == chain_head(command_line)

    before = store.read_frame(ENTRIES)
    assert run_nightly(dags, SCENARIO_NIGHTS[1], shards).state == "success"  # a re-run
    assert store.read_frame(ENTRIES).equals(before)


@pytest.mark.slow  # real Airflow runs the DAG
def test_a_missing_landing_day_fails_clearly_and_posts_nothing(dags, monkeypatch, tmp_path, capfd):
    store = use_ledger(monkeypatch, tmp_path)
    (tmp_path / "landing" / "2026-01-05").mkdir(parents=True)  # no _SUCCESS marker yet
    run = run_nightly(dags, date(2026, 1, 5), 1)
    assert run.state == "failed"
    failed = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert failed["wait_for_landing"] == "failed"
    output = "".join(capfd.readouterr())
    assert (f"LandingNotReadyError: landing day 2026-01-05 not ready after 1s: "
            f"{tmp_path}/landing/2026-01-05/_SUCCESS is missing; nothing was posted") in output
    assert store.read_frame("SELECT COUNT(*) AS n FROM batches")["n"][0] == 0


@pytest.mark.slow  # real Airflow runs the DAG
def test_month_end_closes_a_complete_month_and_refuses_an_incomplete_one(dags, monkeypatch,
                                                                         tmp_path, policy):
    store = use_ledger(monkeypatch, tmp_path)
    land_scenario(tmp_path)
    for day in range(1, 30):  # quiet days, posted from the command line
        run_night(store, policy, tmp_path / "landing", tmp_path / "archive", date(2026, 1, day))
    for night in SCENARIO_NIGHTS:
        assert run_nightly(dags, night, 2).state == "success"
    month_end = dags.get_dag("credit_ledger_month_end")
    assert month_end.test(run_conf={"period": "2026-01"}).state == "success"
    package = tmp_path / "close" / "2026-01" / "v1"
    rollforward_rows = (package / "rollforward.csv").read_text().splitlines()
    assert "USD,0.00,26.00,0.67,5.00,0.00,0.00,0.00,20.33" in rollforward_rows
    assert (package / "manifest.json").exists()
    with store.engine.connect() as connection:
        assert "2026-01" in locked_periods(connection)
    exported = tmp_path / "close" / "2026-01" / "exports"
    assert sorted(path.name for path in exported.iterdir()) == [
        "2026-01-csv.csv", "2026-01-csv.journals.csv", "2026-01.beancount"]
    assert loader.load_file(str(exported / "2026-01.beancount"))[1] == []
    incomplete = month_end.test(run_conf={"period": "2026-02"})
    assert incomplete.state == "failed"
    assert not (tmp_path / "close" / "2026-02").exists()


@pytest.mark.slow  # real Airflow runs the DAG
def test_month_end_without_a_month_ending_night_skips_everything(dags, monkeypatch, tmp_path):
    use_ledger(monkeypatch, tmp_path)
    run = dags.get_dag("credit_ledger_month_end").test()
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states["periods_to_close"] == "success"
    assert {states[task] for task in ("completeness", "reconciliations", "close_and_lock",
                                      "exports")} == {"skipped"}


def test_periods_ending_on_picks_months_whose_last_day_published():
    from creditbooks.pipeline import periods_ending_on

    assert periods_ending_on(["2026-01-30", "2026-01-31", "2026-02-01"]) == ["2026-01"]
    assert periods_ending_on(["2028-02-29", "2026-02-28", "2026-12-31"]) == [
        "2026-02", "2026-12", "2028-02"]
    assert periods_ending_on([]) == []
