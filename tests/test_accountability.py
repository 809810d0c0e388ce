"""Accountability (issue 21): a person on every action, segregation of duties, policy texts kept.

January of the hand-worked scenario (tests/support/scenario.py) is posted once into a
template ledger; each test that closes works on a copy. tests/conftest.py makes the tests
act as "tester"; the tests of the refusals unset $CREDITBOOKS_ACTOR.
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path
from types import SimpleNamespace

import pendulum
import pytest
from sqlalchemy import text

from creditbooks.actors import MissingActorError, airflow_actor, resolve_actor
from creditbooks.close import CloseRefusedError, close_period, reopen_period
from creditbooks.night.run import run_night
from ledger.domain import batch_id_for
from ledger.evidence import verify_evidence
from ledger.record_chain import batch_contents
from ledger.store import Store
from reports.outputs.verify_package import verify_package
from rules.policy import DEFAULT_POLICY_FILE, PolicyError, load_policy, policy_version_of_text
from tests.support.cli import creditbooks
from tests.support.nights import post_days
from tests.support.scenario import write_scenario

pytestmark = pytest.mark.slow  # posts a month and closes it

CONTROLS = '\n[controls]\nclosers = ["cfo", "controller"]\napprovers = ["cfo"]\n'


@pytest.fixture(scope="module")
def january_template(tmp_path_factory):
    """A ledger with every night of January 2026 posted (SQLite), its landing and archive."""
    root = tmp_path_factory.mktemp("accountability-january")
    write_scenario(root / "landing")
    store = Store(f"sqlite:///{root / 'ledger.db'}")
    store.initialise()
    post_days(store, load_policy(), root, date(2026, 1, 1), date(2026, 1, 31))
    store.dispose()
    return root


@pytest.fixture
def books(january_template, tmp_path):
    """A copy of the January ledger: (store, its root directory)."""
    root = tmp_path / "books"
    shutil.copytree(january_template, root)
    store = Store(f"sqlite:///{root / 'ledger.db'}")
    yield store, root
    store.dispose()


def controlled_policy(root: Path):
    """The shipped policy with [controls]: cfo and controller close, cfo approves."""
    path = root / "policy.toml"
    path.write_text(DEFAULT_POLICY_FILE.read_text(encoding="utf-8") + CONTROLS, encoding="utf-8")
    return load_policy(path)


def close_january(store, root, policy, **options):
    return close_period(store, policy, "2026-01", root / "close", root / "archive", **options)


def events(store) -> list[list]:
    return store.read_frame("SELECT action, version, actor, approved_by FROM period_events "
                            "ORDER BY id").values.tolist()


def record_chain_check(connection):
    return next(check for check in verify_evidence(connection)
                if check.control.startswith("record chain"))


def test_a_close_and_a_reopen_without_an_actor_are_refused_in_one_line(books, monkeypatch):
    store, root = books
    policy = load_policy()
    monkeypatch.delenv("CREDITBOOKS_ACTOR")
    monkeypatch.setenv("USER", "root")  # the operating-system user is no signature
    with pytest.raises(MissingActorError, match=r"^closing 2026-01 needs a person: give --actor "
                       r"NAME or set \$CREDITBOOKS_ACTOR$"):
        close_january(store, root, policy)
    refused = creditbooks("--db", store.url, "close", "--period", "2026-01", cwd=root,
                          check=False)
    assert refused.returncode == 1
    assert refused.stderr == ("creditbooks: error: closing 2026-01 needs a person: give --actor "
                              "NAME or set $CREDITBOOKS_ACTOR\n")
    assert events(store) == [] and not (root / "close").exists()

    assert close_january(store, root, policy, actor="controller").status == "closed"
    with pytest.raises(MissingActorError, match=r"^reopening 2026-01 needs a person"):
        reopen_period(store, "2026-01", "late refund", policy=policy, approved_by="cfo")
    assert events(store) == [["close", 1, "controller", None]]
    closed_by = creditbooks("--db", store.url, "reopen", "--period", "2026-01", "--reason",
                            "late refund", "--approved-by", "cfo", "--actor", "controller",
                            cwd=root)
    assert "2026-01 reopened" in closed_by.stdout
    assert events(store)[-1] == ["reopen", 1, "controller", "cfo"]


def test_a_reopen_needs_an_approver_who_is_not_the_requester(books):
    store, root = books
    policy = controlled_policy(root)
    close_january(store, root, policy, actor="controller")
    with pytest.raises(CloseRefusedError, match="^reopening 2026-01 needs --approved-by NAME: an "
                       "approver other than controller$"):
        reopen_period(store, "2026-01", "late refund", actor="controller", policy=policy)
    with pytest.raises(CloseRefusedError, match="^reopening 2026-01: controller cannot approve "
                       "their own reopen; --approved-by must name another person$"):
        reopen_period(store, "2026-01", "late refund", actor="controller", policy=policy,
                      approved_by="controller")
    with pytest.raises(CloseRefusedError, match=r"^reopening 2026-01: clerk is not an approver "
                       r"in the policy's \[controls\] approvers \(cfo\)$"):
        reopen_period(store, "2026-01", "late refund", actor="controller", policy=policy,
                      approved_by="clerk")
    assert events(store) == [["close", 1, "controller", None]]
    reopen_period(store, "2026-01", "late refund", actor="controller", policy=policy,
                  approved_by="cfo")
    assert events(store)[-1] == ["reopen", 1, "controller", "cfo"]
    with store.engine.connect() as connection:
        assert all(check.passed for check in verify_evidence(connection))


def test_the_record_chain_seals_the_reopens_approver(books):
    store, root = books
    policy = load_policy()
    close_january(store, root, policy, actor="controller")
    reopen_period(store, "2026-01", "late refund", actor="controller", policy=policy,
                  approved_by="cfo")
    with store.engine.begin() as connection:  # the forger drops SQLite's append-only trigger
        connection.execute(text("DROP TRIGGER period_events_no_update"))
        connection.execute(text("UPDATE period_events SET approved_by = 'controller' "
                                "WHERE action = 'reopen'"))
    with store.engine.connect() as connection:
        records = record_chain_check(connection)
    assert not records.passed
    assert "period event id 2" in records.detail and "was altered" in records.detail


def test_a_closer_not_among_the_policys_closers_is_refused(books):
    store, root = books
    policy = controlled_policy(root)
    with pytest.raises(CloseRefusedError, match=r"^clerk may not close 2026-01: the policy's "
                       r"\[controls\] closers are cfo, controller$"):
        close_january(store, root, policy, actor="clerk")
    assert events(store) == [] and not (root / "close").exists()
    assert close_january(store, root, policy, actor="cfo").status == "closed"
    assert events(store) == [["close", 1, "cfo", None]]


def test_each_nights_batch_records_its_actor_and_the_chain_covers_it(tmp_path, monkeypatch):
    write_scenario(tmp_path / "landing")
    store = Store(f"sqlite:///{tmp_path / 'ledger.db'}")
    store.initialise()
    policy = load_policy()
    run_night(store, policy, tmp_path / "landing", tmp_path / "archive", date(2026, 1, 28),
              actor="ops.jane")
    run_night(store, policy, tmp_path / "landing", tmp_path / "archive", date(2026, 1, 29))
    monkeypatch.delenv("CREDITBOOKS_ACTOR")
    run_night(store, policy, tmp_path / "landing", tmp_path / "archive", date(2026, 1, 30))
    creditbooks("--db", store.url, "nightly", "--date", "2026-01-31", "--actor", "ops.raj",
                cwd=tmp_path)
    actors = store.read_frame("SELECT business_date, actor FROM batches ORDER BY business_date")
    assert actors["actor"].tolist() == ["ops.jane", "tester", f"os:{getpass.getuser()}",
                                        "ops.raj"]
    with pytest.raises(MissingActorError, match="not a person's name"):
        resolve_actor("os:root", "the nightly run")

    # The batch's seal covers its actor: changing who ran the night is seen.
    with store.engine.begin() as connection:
        before = batch_contents(connection)
        connection.execute(text("UPDATE batches SET actor = 'someone.else' "
                                "WHERE business_date = '2026-01-28'"))
        after = batch_contents(connection)
    altered = batch_id_for(date(2026, 1, 28))
    assert {key for key in before if before[key] != after[key]} == {altered}
    with store.engine.connect() as connection:
        records = record_chain_check(connection)
    assert not records.passed and f"batch {altered} (record seal" in records.detail
    store.dispose()


def test_the_airflow_actor_is_the_runs_triggering_user_else_the_dags_owner():
    dag = SimpleNamespace(owner="finance-ops")
    assert airflow_actor({"dag_run": SimpleNamespace(triggering_user_name="jane"),
                          "dag": dag}) == "jane"
    assert airflow_actor({"dag_run": SimpleNamespace(triggering_user_name=None),
                          "dag": dag}) == "dag-owner:finance-ops"


@pytest.fixture(scope="module")
def airflow_dags():
    airflow = str(Path(sys.executable).with_name("airflow"))
    subprocess.run([airflow, "db", "migrate"], check=True, capture_output=True, env=os.environ)
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    assert bag.import_errors == {}
    return bag


def test_an_airflow_nights_batch_records_the_runs_user(airflow_dags, monkeypatch, tmp_path):
    monkeypatch.delenv("CREDITBOOKS_ACTOR")
    store = Store(f"sqlite:///{tmp_path / 'ledger.db'}")
    store.initialise()
    write_scenario(tmp_path / "landing")
    (tmp_path / "landing" / "2026-01-30" / "_SUCCESS").touch()
    for name, value in {"CREDITBOOKS_DB": store.url, "CREDITBOOKS_LANDING": tmp_path / "landing",
                        "CREDITBOOKS_ARCHIVE": tmp_path / "archive",
                        "CREDITBOOKS_LANDING_TIMEOUT_SECONDS": "1"}.items():
        monkeypatch.setenv(name, str(value))
    logical = pendulum.datetime(2026, 1, 30, tz="UTC") + timedelta(days=1)
    run = airflow_dags.get_dag("credit_ledger_nightly").test(logical_date=logical,
                                                             run_conf={"shards": 1})
    assert run.state == "success"
    # Airflow's dag.test() triggers its run as the user "dag_test".
    assert store.read_frame("SELECT actor FROM batches")["actor"].tolist() == ["dag_test"]
    store.dispose()


def test_a_past_policy_versions_text_is_shown_after_the_policy_file_changed(tmp_path):
    write_scenario(tmp_path / "landing")
    database = f"sqlite:///{tmp_path / 'ledger.db'}"
    creditbooks("--db", database, "init", cwd=tmp_path)
    path = tmp_path / "policy.toml"
    first_text = DEFAULT_POLICY_FILE.read_text(encoding="utf-8")
    path.write_text(first_text, encoding="utf-8")
    first = load_policy(path).version
    creditbooks("--db", database, "--policy", str(path), "nightly", "--date", "2026-01-30",
                cwd=tmp_path)
    assert "late_window_days = 31" in first_text
    path.write_text(first_text.replace("late_window_days = 31", "late_window_days = 45"),
                    encoding="utf-8")
    second = load_policy(path).version
    assert second != first
    creditbooks("--db", database, "--policy", str(path), "nightly", "--date", "2026-01-31",
                "--actor", "ops.raj", cwd=tmp_path)

    shown = creditbooks("--db", database, "policy", "show", "--version", first, cwd=tmp_path)
    header, _, body = shown.stdout.partition("\n")
    assert header.startswith(f"# policy version {first}, first used for night 2026-01-30 by "
                             "tester at 20")
    assert body == first_text and policy_version_of_text(body) == first
    latest = creditbooks("--db", database, "policy", "show", cwd=tmp_path).stdout
    assert latest.startswith(f"# policy version {second}, first used for night 2026-01-31 by "
                             "ops.raj")
    assert "late_window_days = 45" in latest and "late_window_days = 31" not in latest

    diff = creditbooks("--db", database, "policy", "diff", first, second, cwd=tmp_path).stdout
    assert diff.startswith(f"--- policy {first}\n+++ policy {second}\n")
    changed = [line for line in diff.splitlines()
               if line[:1] in "+-" and not line.startswith(("---", "+++"))]
    assert changed == ["-late_window_days = 31", "+late_window_days = 45"]
    unknown = creditbooks("--db", database, "policy", "show", "--version", "0" * 16,
                          cwd=tmp_path, check=False)
    assert unknown.stderr == (f"creditbooks: error: policy version {'0' * 16} is not kept in "
                              f"this ledger (kept: {first}, {second})\n")


def test_the_packages_policy_text_hashes_to_its_manifests_version(books):
    store, root = books
    policy = controlled_policy(root)
    package = close_january(store, root, policy, actor="cfo").package
    manifest = json.loads((package / "manifest.json").read_text())
    kept = (package / "policy.toml").read_text(encoding="utf-8")
    assert manifest["policy_file"] == "policy.toml" and "policy.toml" in manifest["files"]
    assert kept == policy.text and 'closers = ["cfo", "controller"]' in kept
    assert policy_version_of_text(kept) == manifest["policy_version"] == policy.version
    assert verify_package(package) == []
    kept_rows = store.read_frame("SELECT version, first_used_by, first_used_for "
                                 "FROM policy_versions ORDER BY first_used_at")
    assert kept_rows.values.tolist()[-1] == [policy.version, "cfo", "close 2026-01"]

    # Another policy's text in its place, its manifest hash made to match: still caught.
    import hashlib

    forged = kept.replace('approvers = ["cfo"]', 'approvers = []')
    (package / "policy.toml").write_text(forged, encoding="utf-8")
    manifest["files"]["policy.toml"] = hashlib.sha256(forged.encode()).hexdigest()
    (package / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    assert verify_package(package) == [
        f"policy.toml: is policy version {policy_version_of_text(forged)} but manifest.json "
        f"says policy_version {policy.version}"]


def test_controls_that_are_not_lists_of_names_are_refused_naming_the_key(tmp_path):
    path = tmp_path / "policy.toml"
    path.write_text('[controls]\nclosers = "cfo"\n', encoding="utf-8")
    with pytest.raises(PolicyError) as refused:
        load_policy(path)
    assert str(refused.value) == (f'{path}: [controls] closers must be a list of names such as '
                                  '["jane.cfo"], not "cfo"')
    path.write_text('[controls]\napprovers = ["cfo", ""]\n', encoding="utf-8")
    with pytest.raises(PolicyError, match=r"\[controls\] approvers must be a list of names"):
        load_policy(path)
    path.write_text('[controls]\napprovers = ["cfo"]\n', encoding="utf-8")
    assert (load_policy(path).may_approve("cfo"), load_policy(path).may_approve("clerk"),
            load_policy(path).may_close("clerk")) == (True, False, True)
