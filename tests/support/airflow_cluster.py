"""A real Airflow 3 on this machine: scheduler, DAG processor and API server, LocalExecutor,
the ledger and Airflow's metadata both on a throwaway PostgreSQL server.

What it is for: proving scale-out (issue 26). The scheduler's catch-up makes one nightly run
per business day between CREDITBOOKS_START_DATE and CREDITBOOKS_END_DATE; LocalExecutor runs
up to `parallelism` task instances at once, each in its own process, which reach Airflow
through the API server's Task Execution API; the burn stage is mapped over
CREDITBOOKS_SHARDS customer shards. Whether the shards ran at the same time is read from
the metadata database's task_instance table (their start and end times), and the books the
runs posted are compared with the same nights posted by `creditbooks nightly` on SQLite.

Used by tests/test_airflow_scale_out.py and, as a program, by `make airflow-postgres`:

    python -m tests.support.airflow_cluster --out DIR --from 2026-01-01 --to 2026-01-02 --shards 4
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pandas as pd
import psycopg

from ledger.chain import chain_head
from ledger.store import Store
from tests.support.postgres_server import PostgresServer, free_port
from tests.support.scenario import trial_balance_of

REPOSITORY = Path(__file__).resolve().parents[2]
PROGRAMS = Path(sys.executable).parent  # airflow and creditbooks of this checkout's venv
NIGHTLY = "credit_ledger_nightly"
BURN = "burn"
SHUTDOWN_SECONDS = 30  # the API server takes ~20 s to stop on a busy machine


@dataclass
class Layout:
    """Where one cluster keeps its files, and the nights and shards it runs."""

    root: Path
    landing: Path
    policy_file: Path
    first_day: date
    last_day: date
    shards: int
    parallelism: int = 4

    @property
    def airflow_home(self) -> Path:
        return self.root / "airflow-home"

    @property
    def logs(self) -> Path:
        return self.root / "logs"


def cluster_environment(layout: Layout, ledger_url: str, metadata_url: str, api_port: int) -> dict:
    """Airflow's settings for LocalExecutor on PostgreSQL, and the ledger's for the tasks."""
    api = f"http://127.0.0.1:{api_port}"
    return {
        **os.environ,
        "PATH": f"{PROGRAMS}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "PYTHONUNBUFFERED": "1",
        "AIRFLOW_HOME": str(layout.airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPOSITORY / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": str(layout.parallelism),
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(layout.parallelism),
        # LocalExecutor needs a metadata database several processes write at once.
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url,
        # Airflow would derive asyncpg (not installed); psycopg 3 is async as well.
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": metadata_url,
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API__BASE_URL": api,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api}/execution/",
        # Every component signs or checks the tasks' tokens with the same secret.
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
        "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
        "CREDITBOOKS_DB": ledger_url,
        "CREDITBOOKS_POLICY": str(layout.policy_file),
        "CREDITBOOKS_LANDING": str(layout.landing),
        "CREDITBOOKS_ARCHIVE": str(layout.root / "archive"),
        "CREDITBOOKS_CLOSE_DIR": str(layout.root / "close"),
        "CREDITBOOKS_START_DATE": layout.first_day.isoformat(),
        "CREDITBOOKS_END_DATE": layout.last_day.isoformat(),
        "CREDITBOOKS_SHARDS": str(layout.shards),
    }


@dataclass
class AirflowCluster:
    """The three long-running Airflow 3 processes, each in its own process group."""

    layout: Layout
    environment: dict
    api_port: int
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def start(self, ready_timeout_seconds: float = 180) -> None:
        self.layout.logs.mkdir(parents=True, exist_ok=True)
        self._run("db", "migrate")
        self._spawn("api-server")
        self._spawn("dag-processor")
        # A task started before the API server answers fails on its first call to it.
        self._wait_until_healthy(ready_timeout_seconds)
        self._spawn("scheduler")

    def _run(self, *arguments: str) -> None:
        log = self.layout.logs / f"airflow-{'-'.join(arguments)}.log"
        with log.open("w") as output:
            completed = subprocess.run([str(PROGRAMS / "airflow"), *arguments], env=self.environment,
                                       stdout=output, stderr=subprocess.STDOUT)
        if completed.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(arguments)} failed (exit "
                               f"{completed.returncode}); see {log}")

    def _spawn(self, component: str) -> None:
        log = (self.layout.logs / f"{component}.log").open("w")
        self.processes[component] = subprocess.Popen(
            [str(PROGRAMS / "airflow"), component], env=self.environment, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True)

    def _wait_until_healthy(self, timeout_seconds: float) -> None:
        deadline = time.monotonic() + timeout_seconds
        url = f"http://127.0.0.1:{self.api_port}/execution/health"
        while time.monotonic() < deadline:
            for component, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"airflow {component} exited with {process.returncode}; "
                                       f"see {self.layout.logs / component}.log")
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(2)
        raise RuntimeError(f"the API server did not answer {url} within {timeout_seconds:g}s; "
                           f"see {self.layout.logs / 'api-server.log'}")

    def stop(self) -> None:
        """SIGTERM each component's process group (task processes included), then SIGKILL."""
        for process in self.processes.values():
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + SHUTDOWN_SECONDS
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            _signal_group(process, signal.SIGKILL)
            process.wait()
        self.processes.clear()


def _signal_group(process: subprocess.Popen, number: int) -> None:
    try:
        os.killpg(process.pid, number)
    except ProcessLookupError:
        pass


def conninfo(server: PostgresServer, database: str) -> str:
    return f"host=127.0.0.1 port={server.port} user=postgres dbname={database}"


def read_metadata(server: PostgresServer, database: str, query: str, **parameters) -> pd.DataFrame:
    with psycopg.connect(conninfo(server, database)) as connection:
        cursor = connection.execute(query, parameters)
        return pd.DataFrame(cursor.fetchall(), columns=[column.name for column in cursor.description])


def wait_for_nightly_runs(server: PostgresServer, database: str, expected_runs: int,
                          timeout_seconds: float, logs: Path) -> pd.DataFrame:
    """The nightly runs once all `expected_runs` have finished; a failed run stops the wait
    naming its failed tasks."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        runs = read_metadata(server, database, "SELECT run_id, state FROM dag_run WHERE dag_id ="
                             " %(dag_id)s ORDER BY logical_date", dag_id=NIGHTLY)
        if (runs["state"] == "failed").any():
            failed = read_metadata(server, database, "SELECT run_id, task_id, map_index FROM "
                                   "task_instance WHERE dag_id = %(dag_id)s AND state = 'failed'",
                                   dag_id=NIGHTLY)
            raise RuntimeError(f"nightly run failed: tasks {failed.to_dict('records')}; task logs "
                               f"under {logs}")
        if len(runs) == expected_runs and (runs["state"] == "success").all():
            return runs
        if time.monotonic() > deadline:
            raise TimeoutError(f"after {timeout_seconds:g}s the nightly runs are "
                               f"{runs.to_dict('records')}; see {logs}")
        time.sleep(3)


def burn_intervals(server: PostgresServer, database: str) -> pd.DataFrame:
    """Each burn shard's task instance: run, shard (map index), state, start, end, process."""
    return read_metadata(server, database, """
        SELECT run_id, map_index AS shard, state, start_date, end_date, hostname, pid
        FROM task_instance WHERE dag_id = %(dag_id)s AND task_id = %(task_id)s
        ORDER BY run_id, map_index""", dag_id=NIGHTLY, task_id=BURN)


def overlapping_pairs(intervals: pd.DataFrame) -> pd.DataFrame:
    """Every pair of shards of one run that ran at the same time (max(start) < min(end)),
    with how long they overlapped, in seconds."""
    pairs = intervals.merge(intervals, on="run_id", suffixes=("_first", "_second"))
    pairs = pairs[pairs["shard_first"] < pairs["shard_second"]]
    latest_start = pairs[["start_date_first", "start_date_second"]].max(axis=1)
    earliest_end = pairs[["end_date_first", "end_date_second"]].min(axis=1)
    pairs = pairs.assign(overlap_seconds=(earliest_end - latest_start).dt.total_seconds())
    return pairs.loc[pairs["overlap_seconds"] > 0, ["run_id", "shard_first", "shard_second",
                                                     "overlap_seconds"]].reset_index(drop=True)


def command_line_books(layout: Layout, database_file: Path) -> Store:
    """The same nights posted by `creditbooks nightly` (one process) on SQLite."""
    url = f"sqlite:///{database_file}"
    environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(layout.root)}
    for arguments in (["init"], ["nightly", "--from", layout.first_day.isoformat(), "--to",
                                 layout.last_day.isoformat(), "--landing", str(layout.landing),
                                 "--archive", str(layout.root / "command-line-archive")]):
        subprocess.run([str(PROGRAMS / "creditbooks"), "--db", url, "--policy",
                        str(layout.policy_file), *arguments], check=True, env=environment,
                       cwd=layout.root, capture_output=True, text=True)
    return Store(url)


def books(store: Store, periods: list[str]) -> dict:
    """What the comparison looks at: trial balance per period (per account and currency),
    the journal entry count and the chain head."""
    with store.engine.connect() as connection:
        head = chain_head(connection)
    entries = int(store.read_frame("SELECT COUNT(*) AS entries FROM journal_entries")["entries"][0])
    return {"trial_balances": {period: trial_balance_of(store, period) for period in periods},
            "journal_entries": entries, "chain_head": (head.sequence, head.chain_hash)}


def periods_between(first_day: date, last_day: date) -> list[str]:
    return sorted({day.strftime("%Y-%m") for day in pd.date_range(first_day, last_day)})


@dataclass
class ScaleOutResult:
    runs: pd.DataFrame
    intervals: pd.DataFrame
    overlaps: pd.DataFrame
    airflow_books: dict
    command_line_books: dict


def prove_scale_out(server: PostgresServer, layout: Layout, run_timeout_seconds: float,
                    report=print) -> ScaleOutResult:
    """Run the nights under the cluster and on the command line; what each posted."""
    ledger_url, metadata_database = server.create_database(), server.create_database()
    Store(ledger_url).initialise()
    metadata_name = metadata_database.rsplit("/", 1)[1]
    cluster = AirflowCluster(layout, cluster_environment(layout, ledger_url, metadata_database,
                                                         api_port := free_port()), api_port)
    expected_runs = (layout.last_day - layout.first_day).days + 1
    try:
        report(f"airflow: LocalExecutor, parallelism {layout.parallelism}, {expected_runs} nights "
               f"x {layout.shards} burn shards; logs in {layout.logs}")
        cluster.start()
        report(f"airflow: API server up on http://127.0.0.1:{api_port}; scheduler started")
        runs = wait_for_nightly_runs(server, metadata_name, expected_runs, run_timeout_seconds,
                                     layout.airflow_home / "logs")
        intervals = burn_intervals(server, metadata_name)
    finally:
        cluster.stop()
    periods = periods_between(layout.first_day, layout.last_day)
    command_line = command_line_books(layout, layout.root / "command-line.db")
    return ScaleOutResult(runs, intervals, overlapping_pairs(intervals),
                          books(Store(ledger_url), periods), books(command_line, periods))


def describe(result: ScaleOutResult, report=print) -> bool:
    """Print each run's burn shards, their overlaps and the two ledgers' books; True when
    some shards overlapped and the books are the same."""
    for run_id, shards in result.intervals.groupby("run_id", sort=True):
        report(f"\n{run_id}: {len(shards)} burn shards")
        for shard in shards.itertuples(index=False):
            seconds = (shard.end_date - shard.start_date).total_seconds()
            report(f"  shard {shard.shard}: {shard.state:<8} {shard.start_date:%H:%M:%S.%f} -> "
                   f"{shard.end_date:%H:%M:%S.%f} UTC ({seconds:.1f}s, pid {shard.pid})")
        together = shards["start_date"].max() < shards["end_date"].min()
        pairs = result.overlaps[result.overlaps["run_id"] == run_id]
        report(f"  overlapping pairs: {len(pairs)} of {len(shards) * (len(shards) - 1) // 2}"
               + (f", longest {pairs['overlap_seconds'].max():.1f}s" if len(pairs) else "")
               + ("; all shards running at once from the last start to the first end"
                  if together else ""))
    same = result.airflow_books == result.command_line_books
    for name, value in result.airflow_books.items():
        expected = result.command_line_books[name]
        if name == "trial_balances":
            for period, balances in value.items():
                report(f"trial balance {period}: {len(balances)} account/currency rows, "
                       + ("the same as the command line's" if balances == expected[period]
                          else f"DIFFERENT: airflow {balances} command line {expected[period]}"))
        else:
            report(f"{name}: airflow {value}, command line {expected}"
                   + (" (the same)" if value == expected else " DIFFERENT"))
    return len(result.overlaps) > 0 and same


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPOSITORY / "creditbooks-airflow" / "scale-out")
    parser.add_argument("--from", dest="first_day", type=date.fromisoformat, default=date(2026, 1, 1))
    parser.add_argument("--to", dest="last_day", type=date.fromisoformat, default=date(2026, 1, 3))
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--parallelism", type=int, default=4)
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--timeout-seconds", type=float, default=900)
    return parser.parse_args()


def _unwind(*_) -> None:
    """SIGTERM (the shell script's trap) unwinds like Ctrl-C, so every `finally` stops its
    part; a second one is ignored rather than cutting the clean-up short."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sys.exit(143)


def main() -> int:
    from creditbooks.demo import generate_landing

    arguments = _arguments()
    signal.signal(signal.SIGTERM, _unwind)
    shutil.rmtree(arguments.out, ignore_errors=True)
    layout = Layout(arguments.out, arguments.out / "landing", arguments.out / "policy.toml",
                    arguments.first_day, arguments.last_day, arguments.shards, arguments.parallelism)
    layout.root.mkdir(parents=True)
    # The policy as it is now, for both ledgers: its version is sealed into every entry.
    shutil.copy(REPOSITORY / "rules" / "policy.toml", layout.policy_file)
    generate_landing(layout.landing, arguments.customers, seed=7)
    server = PostgresServer.start()
    try:
        result = prove_scale_out(server, layout, arguments.timeout_seconds)
    finally:
        server.stop()
    return 0 if describe(result) else 1


if __name__ == "__main__":
    sys.exit(main())
