"""The benchmark suite: `python -m bench [--name NAME] [options]` (or `make bench`).

Every figure is the median of several runs, each in its own process (which reports its
own peak memory, `bench.tasks.peak_memory_bytes`), and sits next to a floor measured in
the same run on the same file: for Parquet, the time pandas (with pyarrow) takes to read
that file and sum credits by customer and meter; for CSV, pyarrow's own read_csv and
group-by. Results go to bench/results/NAME.json and print as a table. The run also checks
the books after a nightly (`check`): speed is never bought with correctness.

`--preset quick` (`make bench-quick`) runs the same figures at a tenth of the scale, once
each, in about five minutes, for every change that touches a hot path.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import psycopg
from rich.console import Console
from rich.table import Table

from bench.generate import write_bench_days
from bench.month import write_month
from intake.usage_buckets import DEFAULT_CHUNK_ROWS

REPOSITORY = Path(__file__).resolve().parents[1]
RESULTS = REPOSITORY / "bench" / "results"
GIB = 1 << 30
CREDITBOOKS = str(Path(sys.executable).with_name("creditbooks"))
# What `bench.tasks.books` says about the books. Its result also carries how the task was
# measured (its process's peak memory), which differs between any two processes: the
# books are compared on these fields only.
BOOK_FIELDS = ("balances", "lots", "chain_head")
NIGHTLY_RATIO_LIMIT = 10
NIGHTLY_MEMORY_LIMIT_GIB = 4
CLOSE_TARGET_CUSTOMERS = 100_000
CLOSE_LIMIT_SECONDS = 30
CLOSE_MEMORY_LIMIT_GIB = 3
# Defaults a preset changes; an option given on the command line still wins.
PRESETS = {
    "quick": {"name": "quick", "scales": "1000000", "customers": 10_000, "repeats": 1,
              "month_customers": 10_000, "month_events_per_day": 20_000, "huge_events": 0,
              "skip_postgresql": True, "skip_beancount": True, "wall_target_seconds": 300},
}


def run_task(task: str, **arguments) -> dict:
    """One task in a fresh process; its result, with the peak memory the process reports."""
    finished = subprocess.run([sys.executable, "-m", "bench.tasks", task, json.dumps(arguments)],
                              cwd=REPOSITORY, stdout=subprocess.PIPE, text=True)
    if finished.returncode != 0:
        raise RuntimeError(f"bench task {task} failed (exit {finished.returncode})")
    return json.loads(finished.stdout)


def measure(task: str, repeats: int, prepare=None, **arguments) -> dict:
    """The median time of `repeats` runs (each after `prepare()`), the largest peak memory."""
    runs = []
    for _ in range(repeats):
        if prepare:
            prepare()
        runs.append(run_task(task, **arguments))
    return {**runs[-1], "seconds": statistics.median(run["seconds"] for run in runs),
            "runs_seconds": [round(run["seconds"], 3) for run in runs],
            "cpu_seconds": statistics.median(run["cpu_seconds"] for run in runs),
            "peak_memory_bytes": max(run["peak_memory_bytes"] for run in runs)}


def _sqlite(path: Path) -> str:
    return f"sqlite:///{path}"


class Workspace:
    """A ledger with the lots day posted, copied fresh before each measured nightly."""

    def __init__(self, root: Path, days, database_url: str | None = None) -> None:
        self.root, self.days = root, days
        self.template = root / "template"
        self.template.mkdir()
        self.template_url = database_url or _sqlite(self.template / "ledger.db")
        subprocess.run([CREDITBOOKS, "--db", self.template_url, "init"],
                       cwd=REPOSITORY, check=True, capture_output=True)
        self.lots_night = run_task("nightly", database_url=self.template_url,
                                   landing=str(days.landing),
                                   archive=str(self.template / "archive"),
                                   business_date=days.purchases_day.isoformat())
        self.work = root / "work"

    def fresh(self) -> None:
        shutil.rmtree(self.work, ignore_errors=True)
        shutil.copytree(self.template, self.work)

    def nightly(self, repeats: int, check: bool = True, **chunking) -> dict:
        """The usage night on a fresh copy; `chunk_rows=` overrides the nightly's default."""
        return measure("nightly", repeats, self.fresh, database_url=_sqlite(
            self.work / "ledger.db"), landing=str(self.days.landing),
            archive=str(self.work / "archive"), business_date=self.days.usage_day.isoformat(),
            check=check, **chunking)


def machine() -> dict:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text()
                  .splitlines() if line.startswith("model name")), platform.processor())
    memory_kib = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text()
                          .splitlines() if line.startswith("MemTotal")))
    return {"cpus": os.cpu_count(), "cpu_model": model, "memory_gib": round(memory_kib / 2**20, 1),
            "python": platform.python_version(), "platform": platform.platform()}


def books_differences(first: dict, second: dict) -> list[str]:
    """The parts of two ledgers' books (`bench.tasks.books` results) that differ.

    Whole results must not be compared: each carries its process's peak memory, so two
    ledgers with the same books compared unequal (the chunked night said "NO").
    """
    return [field for field in BOOK_FIELDS if first[field] != second[field]]


def figure(name: str, seconds: float, *, floor: float | None = None, peak: int | None = None,
           cpu: float | None = None, target: str = "", met: bool | None = None,
           **details) -> dict:
    return {"figure": name, "seconds": round(seconds, 3),
            "cpu_seconds": None if cpu is None else round(cpu, 3),
            "floor_seconds": None if floor is None else round(floor, 3),
            "ratio_to_floor": None if floor is None else round(seconds / floor, 2),
            "peak_memory_gib": None if peak is None else round(peak / GIB, 2),
            "target": target, "met": met, **details}


def nightly_series(root: Path, scales: list[int], customers: int, repeats: int, seed: int,
                   figures: list[dict]) -> dict:
    """Nightly at each scale on Parquet (the last scale also on CSV); floors beside them."""
    timings = {}
    for events in scales:
        for file_format in (("parquet", "csv") if events == scales[-1] else ("parquet",)):
            case = root / f"{file_format}-{events}"
            days = write_bench_days(case, customers, events, seed, file_format)
            floor_task = "floor_parquet" if file_format == "parquet" else "floor_csv"
            floor = measure(floor_task, repeats, usage_file=str(days.usage_file))
            workspace = Workspace(case, days)
            night = workspace.nightly(repeats)
            largest = events == scales[-1]
            ratio = night["seconds"] / floor["seconds"]
            memory_ok = night["peak_memory_bytes"] <= NIGHTLY_MEMORY_LIMIT_GIB * GIB
            figures.append(figure(
                f"nightly {events:,} events, {customers:,} customers, {file_format}",
                night["seconds"], floor=floor["seconds"], peak=night["peak_memory_bytes"],
                cpu=night["cpu_seconds"],
                target=f"<= {NIGHTLY_RATIO_LIMIT}x floor, <= {NIGHTLY_MEMORY_LIMIT_GIB} GiB"
                if largest else "scaling point",
                met=(ratio <= NIGHTLY_RATIO_LIMIT and memory_ok) if largest else None,
                floor_cpu_seconds=round(floor["cpu_seconds"], 3),
                cpu_ratio_to_floor=round(night["cpu_seconds"] / floor["cpu_seconds"], 2),
                runs_seconds=night["runs_seconds"], rows_read=night["rows_read"],
                accepted=night["accepted"], duplicates=night["duplicates"],
                rejected=night["rejected"], journal_lines=night["journal_lines"],
                check_passed=night["check_passed"], lots_night_seconds=round(
                    workspace.lots_night["seconds"], 3)))
            if file_format == "parquet":
                timings[events] = night["seconds"]
            if largest and file_format == "parquet":
                timings["largest_case"] = (case, days)
                timings["largest_workspace"] = workspace
                timings["largest_night"] = night
    return timings


def scaling(timings: dict, figures: list[dict]) -> None:
    points = sorted((events, seconds) for events, seconds in timings.items()
                    if isinstance(events, int))
    if len(points) < 2:
        return
    millions = np.array([events / 1e6 for events, _ in points])
    seconds = np.array([value for _, value in points])
    slope, intercept = np.polyfit(millions, seconds, 1)
    predicted = slope * millions + intercept
    total = float(((seconds - seconds.mean()) ** 2).sum()) or 1.0
    r_squared = 1 - float(((seconds - predicted) ** 2).sum()) / total
    figures.append(figure("nightly cost per million events (fitted slope)", float(slope),
                          target="linear growth", met=r_squared >= 0.98,
                          intercept_seconds=round(float(intercept), 3),
                          r_squared=round(r_squared, 4),
                          points=[[int(e), round(float(s), 3)] for e, s in points]))


def postgresql(timings: dict, repeats: int, figures: list[dict]) -> None:
    sys.path.insert(0, str(REPOSITORY))
    from tests.support.postgres_server import PostgresServer

    case, days = timings["largest_case"]
    server = PostgresServer.start()
    try:
        template_url = server.create_database()
        pg_root = case / "postgresql"
        pg_root.mkdir(exist_ok=True)
        workspace = Workspace(pg_root, days, database_url=template_url)
        template_name = template_url.rsplit("/", 1)[1]
        runs = []
        for number in range(repeats):
            name = f"bench_{number}"
            with psycopg.connect(f"host=127.0.0.1 port={server.port} user=postgres "
                                 "dbname=postgres", autocommit=True) as admin:
                admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_name}"')
            archive = pg_root / f"archive-{number}"
            shutil.copytree(workspace.template / "archive", archive)
            runs.append(run_task("nightly", database_url=server.url(name),
                                 landing=str(days.landing), archive=str(archive),
                                 business_date=days.usage_day.isoformat(), check=True))
        seconds = statistics.median(run["seconds"] for run in runs)
        sqlite_seconds = timings[days.events]
        figures.append(figure(f"nightly {days.events:,} events on PostgreSQL", seconds,
                              peak=max(run["peak_memory_bytes"] for run in runs),
                              target="<= 1.5x SQLite", met=seconds <= 1.5 * sqlite_seconds,
                              sqlite_seconds=round(sqlite_seconds, 3),
                              ratio_to_sqlite=round(seconds / sqlite_seconds, 2),
                              check_passed=all(run["check_passed"] for run in runs)))
        for store, url in (("PostgreSQL", server.url(f"bench_{repeats - 1}")),
                           ("SQLite", _sqlite(case / "work" / "ledger.db"))):
            lines = run_task("post_lines", database_url=url, entries=200_000)
            figures.append(figure(f"journal lines written per second, {store}",
                                  lines["seconds"], target=">= 100,000 lines/s"
                                  if store == "PostgreSQL" else "peer figure",
                                  met=lines["lines_per_second"] >= 100_000
                                  if store == "PostgreSQL" else None,
                                  journal_lines=lines["journal_lines"],
                                  lines_per_second=round(lines["lines_per_second"])))
    finally:
        server.stop()


def month_end(root: Path, customers: int, events_per_day: int, seed: int,
              figures: list[dict], beancount: bool = True) -> None:
    case = root / "month"
    days = write_month(case, customers, events_per_day, seed)
    url = _sqlite(case / "ledger.db")
    subprocess.run([CREDITBOOKS, "--db", url, "init"],
                   cwd=REPOSITORY, check=True, capture_output=True)
    started = time.perf_counter()
    subprocess.run([CREDITBOOKS, "--db", url, "nightly",
                    "--from", days[0].isoformat(), "--to", days[-1].isoformat(),
                    "--landing", str(case / "landing"), "--archive", str(case / "archive"),
                    "--format", "json"], cwd=REPOSITORY, check=True, capture_output=True)
    month_nights = time.perf_counter() - started
    closed = run_task("close", database_url=url, period="2026-03", out=str(case / "close"),
                      archive=str(case / "archive"))
    at_target_scale = customers >= CLOSE_TARGET_CUSTOMERS
    figures.append(figure(f"month-end close, {customers:,} active customers",
                          closed["seconds"], peak=closed["peak_memory_bytes"],
                          cpu=closed["cpu_seconds"],
                          target=f"<= {CLOSE_LIMIT_SECONDS} s, <= {CLOSE_MEMORY_LIMIT_GIB} GiB"
                          + ("" if at_target_scale
                             else f" at {CLOSE_TARGET_CUSTOMERS:,} customers"),
                          met=closed["seconds"] <= CLOSE_LIMIT_SECONDS
                          and closed["peak_memory_bytes"] <= CLOSE_MEMORY_LIMIT_GIB * GIB
                          if at_target_scale else None,
                          status=closed["status"], month_nights_seconds=round(month_nights, 1),
                          events=events_per_day * len(days)))
    if not beancount:
        return
    exported = run_task("export_beancount", database_url=url, period="2026-03",
                        out=str(case / "month.beancount"))
    loaded = run_task("beancount_load", ledger_file=str(case / "month.beancount"))
    figures.append(figure("beancount export of the month", exported["seconds"],
                          peak=exported["peak_memory_bytes"],
                          target="loads in beancount's loader", met=loaded["errors"] == 0,
                          bytes=exported["bytes"], loader_seconds=round(loaded["seconds"], 3),
                          loader_directives=loaded["directives"],
                          loader_errors=loaded["errors"]))


def chunked_same_books(timings: dict, figures: list[dict]) -> None:
    """The largest Parquet night held whole, then in four chunks: the books must be the same.

    A night of at most `DEFAULT_CHUNK_ROWS` rows was already held whole by the series,
    and its ledger is still in the workspace: it is not run again.
    """
    case, days = timings["largest_case"]
    workspace = timings["largest_workspace"]
    whole_night = timings["largest_night"]
    if whole_night["rows_read"] > DEFAULT_CHUNK_ROWS:
        whole_night = workspace.nightly(1, chunk_rows=None)
    whole = run_task("books", database_url=_sqlite(workspace.work / "ledger.db"))
    rows = max(1, days.events // 4)
    night = workspace.nightly(1, chunk_rows=rows)
    chunked = run_task("books", database_url=_sqlite(workspace.work / "ledger.db"))
    differing = books_differences(whole, chunked)
    figures.append(figure(f"nightly {days.events:,} events in chunks of {rows:,} rows",
                          night["seconds"], peak=night["peak_memory_bytes"],
                          cpu=night["cpu_seconds"], target="same books as the whole-file night",
                          met=not differing,
                          differing=differing,
                          whole_file_seconds=round(whole_night["seconds"], 3),
                          whole_file_peak_memory_gib=round(
                              whole_night["peak_memory_bytes"] / GIB, 2),
                          chain_head=chunked["chain_head"],
                          whole_file_chain_head=whole["chain_head"],
                          check_passed=night["check_passed"]))


def huge_day(root: Path, customers: int, events: int, chunk_rows: int, seed: int,
             figures: list[dict]) -> None:
    """A day too large to hold, in chunks: peak memory against the 6 GiB target."""
    case = root / f"huge-{events}"
    days = write_bench_days(case, customers, events, seed, "parquet")
    floor = measure("floor_parquet", 1, usage_file=str(days.usage_file))
    workspace = Workspace(case, days)
    night = workspace.nightly(1, chunk_rows=chunk_rows)
    figures.append(figure(f"a day of {events:,} events in chunks of {chunk_rows:,} rows",
                          night["seconds"], floor=floor["seconds"],
                          peak=night["peak_memory_bytes"], target="<= 6 GiB",
                          met=night["peak_memory_bytes"] <= 6 * GIB,
                          floor_peak_memory_gib=round(floor["peak_memory_bytes"] / GIB, 2),
                          rows_read=night["rows_read"], accepted=night["accepted"],
                          duplicates=night["duplicates"], rejected=night["rejected"],
                          journal_lines=night["journal_lines"],
                          check_passed=night["check_passed"]))
    shutil.rmtree(case, ignore_errors=True)


def print_table(results: dict) -> None:
    table = Table(title=f"creditbooks benchmark {results['name']}")
    for column in ("figure", "seconds", "cpu s", "floor s", "x floor", "peak GiB", "target",
                   "met"):
        table.add_column(column, justify="left" if column in ("figure", "target") else "right")
    for row in results["figures"]:
        table.add_row(row["figure"], "-" if row["seconds"] is None else f"{row['seconds']:.3f}",
                      "" if row.get("cpu_seconds") is None else f"{row['cpu_seconds']:.1f}",
                      "" if row["floor_seconds"] is None else f"{row['floor_seconds']:.3f}",
                      "" if row["ratio_to_floor"] is None else f"{row['ratio_to_floor']:.1f}",
                      "" if row["peak_memory_gib"] is None else f"{row['peak_memory_gib']:.2f}",
                      row["target"], {True: "yes", False: "NO", None: ""}[row["met"]])
    Console(width=160).print(table)


def parse_options(argv: list[str] | None) -> argparse.Namespace:
    """The command line; `--preset` changes the defaults, options given still win."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(PRESETS),
                        help="quick: every figure at a tenth of the scale, once each")
    parser.add_argument("--name", default="default")
    parser.add_argument("--scales", default="1000000,3000000,10000000",
                        help="usage events per nightly, comma-separated (the last is the target)")
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--month-customers", type=int, default=100_000)
    parser.add_argument("--month-events-per-day", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=20260301)
    parser.add_argument("--huge-events", type=int, default=100_000_000,
                        help="events of the chunked day too large to hold (0: skip it)")
    parser.add_argument("--chunk-rows", type=int, default=DEFAULT_CHUNK_ROWS,
                        help="rows the chunked day reads at a time")
    parser.add_argument("--skip-series", action="store_true",
                        help="skip the nightly series (and the figures drawn from it)")
    parser.add_argument("--skip-postgresql", action="store_true")
    parser.add_argument("--skip-month", action="store_true")
    parser.add_argument("--skip-beancount", action="store_true",
                        help="skip the beancount export of the month (and its loader)")
    parser.add_argument("--wall-target-seconds", type=float, default=None,
                        help="add the run's own wall time as a figure, held to this target")
    parser.add_argument("--work", type=Path, default=None, help="scratch directory (kept)")
    preset = parser.parse_known_args(argv)[0].preset
    if preset:
        parser.set_defaults(**PRESETS[preset])
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    options = parse_options(argv)
    # A close names the person who closed; the bench's tasks and commands inherit this one.
    os.environ.setdefault("CREDITBOOKS_ACTOR", "benchmark")
    scales = [int(value) for value in options.scales.split(",")]
    root = options.work or Path(tempfile.mkdtemp(prefix="creditbooks-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    figures: list[dict] = []

    def save() -> dict:
        """Write what is measured so far: a long run stopped midway keeps its figures."""
        results = {"name": options.name, "recorded_at": datetime.now(UTC).isoformat(),
                   "machine": machine(), "inputs": {
                       key: str(value) if isinstance(value, Path) else value
                       for key, value in vars(options).items()},
                   "wall_seconds": round(time.perf_counter() - started, 1), "figures": figures}
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / f"{options.name}.json").write_text(json.dumps(results, indent=2) + "\n")
        return results

    if not options.skip_series:
        timings = nightly_series(root, scales, options.customers, options.repeats, options.seed,
                                 figures)
        scaling(timings, figures)
        chunked_same_books(timings, figures)  # before anything else writes to that ledger
        save()
        if not options.skip_postgresql:
            postgresql(timings, max(1, options.repeats - 1), figures)
            save()
    if options.huge_events:
        huge_day(root, options.customers, options.huge_events, options.chunk_rows, options.seed,
                 figures)
        save()
    if not options.skip_month:
        month_end(root, options.month_customers, options.month_events_per_day, options.seed,
                  figures, beancount=not options.skip_beancount)
    if options.wall_target_seconds:
        wall_seconds = time.perf_counter() - started
        figures.append(figure("the whole benchmark run (wall time)", wall_seconds,
                              target=f"<= {options.wall_target_seconds:.0f} s",
                              met=wall_seconds <= options.wall_target_seconds))
    results = save()
    print_table(results)
    if options.work is None:
        shutil.rmtree(root, ignore_errors=True)
    return results


if __name__ == "__main__":
    main()
