"""One measured task per process: `python -m bench.tasks TASK JSON-ARGUMENTS`.

Each task times only its own work (imports and set-up excluded) and prints one JSON
object with its peak memory (`peak_memory_bytes`), so a figure never carries memory
left over from another task or from the suite itself.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from datetime import date
from pathlib import Path

import pandas as pd

from ledger.periods import Period

# The processor time of the one piece of work this process times (`_timed`): on a busy
# machine wall time waits for other processes, processor time mostly does not.
CPU_SECONDS: dict[str, float] = {}


def _processor_seconds() -> float:
    """User and system time of this process, its threads and its finished children."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(
        resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _timed(work) -> tuple[float, object]:
    started, processor_started = time.perf_counter(), _processor_seconds()
    result = work()
    CPU_SECONDS["work"] = _processor_seconds() - processor_started
    return time.perf_counter() - started, result


def floor_parquet(usage_file: str) -> dict:
    """The floor: pandas (pyarrow) reads the file and sums credits by customer and meter."""
    def work():
        frame = pd.read_parquet(usage_file, columns=["customer_id", "meter", "credits"],
                                dtype_backend="pyarrow")
        return frame.groupby(["customer_id", "meter"])["credits"].sum()
    seconds, sums = _timed(work)
    return {"seconds": seconds, "groups": len(sums)}


def floor_csv(usage_file: str) -> dict:
    """The CSV floor: pyarrow's own read_csv and group-by (credits summed as pyarrow infers them)."""
    import pyarrow.csv as pacsv

    def work():
        table = pacsv.read_csv(usage_file, convert_options=pacsv.ConvertOptions(
            include_columns=["customer_id", "meter", "credits"]))
        return table.group_by(["customer_id", "meter"]).aggregate([("credits", "sum")])
    seconds, sums = _timed(work)
    return {"seconds": seconds, "groups": sums.num_rows}


def nightly(database_url: str, landing: str, archive: str, business_date: str,
            check: bool = False, chunk_rows: int | None | str = "default") -> dict:
    """One night (`chunk_rows`: the nightly's own default, a number, or None: whole file)."""
    from creditbooks.night.run import run_night
    from intake.usage_buckets import DEFAULT_CHUNK_ROWS
    from ledger.store import Store
    from reports.controls import run_controls
    from rules.policy import load_policy

    chunk_rows = DEFAULT_CHUNK_ROWS if chunk_rows == "default" else chunk_rows

    store, policy = Store(database_url), load_policy()
    seconds, outcome = _timed(lambda: run_night(store, policy, Path(landing), Path(archive),
                                                date.fromisoformat(business_date),
                                                chunk_rows=chunk_rows))
    lines = int(store.read_frame(
        "SELECT COUNT(*) AS n FROM journal_lines l JOIN journal_entries e "
        "ON e.entry_id = l.entry_id WHERE e.batch_id = :batch_id",
        batch_id=outcome.batch_id)["n"][0])
    result = {"seconds": seconds, "status": outcome.status, "entries": outcome.entry_count,
              "journal_lines": lines, **outcome.as_row()}
    if check:
        failed = [r.detail for r in run_controls(store, policy.accounts.deferred_revenue)
                  if not r.passed]
        result["check_passed"], result["check_failures"] = not failed, failed
    return result


def books(database_url: str) -> dict:
    """What the books say, to compare two runs: balances, lots and the chain head."""
    from ledger.chain import chain_head
    from ledger.store import Store

    store = Store(database_url)
    balances = store.read_frame("SELECT account, currency, SUM(amount_minor) AS total "
                                "FROM journal_lines GROUP BY account, currency "
                                "ORDER BY account, currency")
    lots = store.read_frame("SELECT SUM(credits_used_micro) AS used, "
                            "SUM(usage_value_minor) AS value FROM lot_balances")
    with store.engine.connect() as connection:
        head = chain_head(connection)
    return {"balances": [[r.account, r.currency, int(r.total)]
                         for r in balances.itertuples(index=False)],
            "lots": [int(lots["used"][0]), int(lots["value"][0])],
            "chain_head": head.chain_hash}


def post_lines(database_url: str, entries: int) -> dict:
    """Journal lines per second through `post_journal` (three lines an entry)."""
    import numpy as np

    from ledger.domain import batch_id_for
    from ledger.journal import JournalBatch
    from ledger.store import Store, post_journal

    store = Store(database_url)
    ids = pd.Series([f"bench/{n}" for n in range(entries)])
    entry_frame = pd.DataFrame({"entry_id": ids, "kind": "usage",
                                "business_date": date(2026, 3, 2), "period": "2026-03",
                                "customer_id": "C", "source_ref": ids})
    amounts = np.tile(np.array([200, -150, -50], dtype=np.int64), entries)
    lines = pd.DataFrame({"entry_id": np.repeat(ids.to_numpy(), 3),
                          "line_number": np.tile(np.array([1, 2, 3]), entries),
                          "account": np.tile(np.array(["Liabilities:DeferredRevenue:Credits",
                                                       "Income:Revenue:Usage",
                                                       "Income:Revenue:Usage"]), entries),
                          "currency": "USD", "amount_minor": amounts,
                          "functional_minor": amounts, "meter": None, "purchase_id": None})

    def work():
        with store.transaction() as connection:
            post_journal(connection, JournalBatch(entry_frame, lines),
                         {"batch_id": batch_id_for(date(2026, 3, 2)), "policy_version": "bench",
                          "recorded_at": pd.Timestamp("2026-03-03").to_pydatetime(),
                          "period": "2026-03"})
    seconds, _ = _timed(work)
    return {"seconds": seconds, "journal_lines": len(lines),
            "lines_per_second": len(lines) / seconds}


def close(database_url: str, period: Period, out: str, archive: str) -> dict:
    from creditbooks.close import close_period
    from ledger.store import Store
    from rules.policy import load_policy

    store, policy = Store(database_url), load_policy()
    seconds, outcome = _timed(lambda: close_period(store, policy, period, Path(out),
                                                   Path(archive), accept_exceptions=True,
                                                   reason="benchmark", actor="bench"))
    return {"seconds": seconds, "status": outcome.status,
            "failed_reconciliations": list(outcome.failed_reconciliations)}


def export_beancount(database_url: str, period: Period, out: str) -> dict:
    from ledger.store import Store
    from reports.outputs.beancount_export import write_beancount

    store = Store(database_url)
    seconds, _ = _timed(lambda: write_beancount(store, period, Path(out)))
    return {"seconds": seconds, "bytes": Path(out).stat().st_size}


def beancount_load(ledger_file: str) -> dict:
    """The peer figure: beancount's own loader on our export."""
    from beancount import loader

    seconds, (entries, errors, _) = _timed(lambda: loader.load_file(ledger_file))
    return {"seconds": seconds, "directives": len(entries), "errors": len(errors)}


TASKS = {task.__name__: task for task in (floor_parquet, floor_csv, nightly, books, post_lines,
                                          close, export_beancount, beancount_load)}

def peak_memory_bytes() -> int:
    """This process's peak resident memory, or its children's if larger.

    VmHWM counts from this process's exec. The kernel's figure for a finished child
    (`wait4`'s ru_maxrss) would not do: it starts from the peak of the process that
    spawned the child, so every task would carry the suite's own peak (3.16 GiB once the
    suite had generated the 100M-event day).
    """
    status = Path("/proc/self/status").read_text().splitlines()
    own_kib = int(next(line.split()[1] for line in status if line.startswith("VmHWM:")))
    return max(own_kib, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) * 1024


if __name__ == "__main__":
    arguments = json.loads(sys.argv[2])
    if "period" in arguments:  # JSON carries its name: made a Period where it enters
        arguments["period"] = Period(arguments["period"])
    result = TASKS[sys.argv[1]](**arguments)
    print(json.dumps({**result, "peak_memory_bytes": peak_memory_bytes(),
                      "cpu_seconds": CPU_SECONDS.get("work")}, default=str))
