"""Stages run one by one (as Airflow runs them): shards, idempotence, invisibility until published."""

from __future__ import annotations

from datetime import date

import pytest

from creditbooks.night.ingest import ingest, read_landing_day
from creditbooks.night.posting import open_night
from creditbooks.night.stages import StageOrderError, burn_stage, post_purchases_stage, run_stage
from ledger.chain import chain_head
from ledger.domain import Stage, night_tasks
from reports.statements import trial_balance
from tests.support.scenario import NIGHTS, trial_balance_of, write_scenario

ENTRY_QUERY = """SELECT e.entry_id, e.kind, e.business_date, e.customer_id, l.line_number, l.account,
                        l.currency, l.amount_minor, l.meter, l.purchase_id
                 FROM journal_entries e JOIN journal_lines l ON l.entry_id = e.entry_id
                 ORDER BY e.entry_id, l.line_number"""


def run_stages(store, policy, tmp_path, business_date: date, shard_count: int,
               until: Stage = Stage.PUBLISH):
    """Each task of the night's plan in a transaction of its own, as Airflow's tasks do, up
    to the stage `until`; a sharded stage's shards last first (they finish in any order)."""
    landing = read_landing_day(tmp_path / "landing", business_date)
    night = open_night(policy, tmp_path / "archive", business_date)
    order = list(Stage)
    tasks = sorted((task for task in night_tasks(shard_count)
                    if order.index(task.stage) <= order.index(until)),
                   key=lambda task: (order.index(task.stage), -task.shard))
    for task in tasks:
        with store.transaction() as connection:  # one task, one transaction
            if task.stage is Stage.INGEST:
                ingest(connection, landing, night.day, policy, night.archive_root,
                       night.batch_id, False, night.recorded_at)
            else:
                run_stage(connection, night, task.stage, task.shard, task.shard_count)


def test_the_stage_order_is_the_one_the_night_and_the_database_know():
    assert [stage.value for stage in Stage] == [
        "ingest", "purchases", "burn", "expire", "controls", "publish"]
    assert [stage.previous() for stage in Stage] == [None, *list(Stage)[:-1]]
    assert [stage for stage in Stage if stage.is_sharded] == [Stage.BURN]


@pytest.mark.slow  # over a second here: not in make test-fast
@pytest.mark.parametrize("shard_count", [2, 5])
def test_any_number_of_shards_posts_exactly_the_entries_of_one(store, policy, tmp_path, shard_count,
                                                                request):
    write_scenario(tmp_path / "landing")
    for night in NIGHTS:
        run_stages(store, policy, tmp_path, night, 1)
    single = store.read_frame(ENTRY_QUERY)
    single_balances = store.read_frame("SELECT * FROM lot_balances ORDER BY purchase_id")
    sharded_url = (request.getfixturevalue("postgres_server").create_database()
                   if store.is_postgresql else f"sqlite:///{tmp_path / 'sharded.db'}")
    sharded_store = type(store)(sharded_url)
    sharded_store.initialise()
    (tmp_path / "sharded").mkdir()
    (tmp_path / "sharded" / "landing").symlink_to(tmp_path / "landing")
    for night in NIGHTS:
        run_stages(sharded_store, policy, tmp_path / "sharded", night, shard_count)
    assert sharded_store.read_frame(ENTRY_QUERY).equals(single)
    assert sharded_store.read_frame("SELECT * FROM lot_balances ORDER BY purchase_id").drop(
        columns="last_batch_id").equals(single_balances.drop(columns="last_batch_id"))
    assert trial_balance_of(sharded_store, "2026-02") == trial_balance_of(store, "2026-02")
    with store.engine.connect() as single, sharded_store.engine.connect() as sharded:
        assert chain_head(sharded) == chain_head(single)


def test_a_night_is_invisible_in_statements_until_published_and_stages_repeat_harmlessly(
        sqlite_store, policy, tmp_path):
    write_scenario(tmp_path / "landing")
    run_stages(sqlite_store, policy, tmp_path, NIGHTS[0], 1)
    published = trial_balance(sqlite_store, "2026-01")
    run_stages(sqlite_store, policy, tmp_path, NIGHTS[1], 2, until=Stage.EXPIRE)
    assert sqlite_store.read_frame("SELECT COUNT(*) AS n FROM journal_entries "
                                   "WHERE batch_id = 'nightly-2026-01-31'")["n"][0] > 0
    assert trial_balance(sqlite_store, "2026-01") == published
    run_stages(sqlite_store, policy, tmp_path, NIGHTS[1], 2)  # every stage again, then the rest
    assert trial_balance_of(sqlite_store, "2026-01")[("Income:Revenue:Breakage", "USD")][3] == "-5.00"
    with pytest.raises(StageOrderError, match="burned with 2 shards"):
        with sqlite_store.transaction() as connection:
            burn_stage(connection, open_night(policy, tmp_path / "archive", NIGHTS[1]), 0, 3)


def test_a_stage_refuses_to_run_before_the_stage_it_needs(sqlite_store, policy, tmp_path):
    write_scenario(tmp_path / "landing")
    night = open_night(policy, tmp_path / "archive", NIGHTS[0])
    with pytest.raises(StageOrderError, match="needs the ingest stage"):
        with sqlite_store.transaction() as connection:
            post_purchases_stage(connection, night)
