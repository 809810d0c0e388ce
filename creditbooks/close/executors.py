"""Where the close's work runs: threads for the reports, and one reader of every journal
line (a process of its own for a large period).

The close must never wait on itself. Its rule, kept by `submit_in_order`: a task waits
only on tasks submitted before it (to the report threads), on the journal reader (whose
reads wait on nothing) and on values computed once (`ledger.once`) whose computation
waits on nothing else either.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Hashable, Iterable
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from typing import TypeVar

from ledger.anchors import known_ledger_id
from ledger.chain import ChainHead, chain_head
from ledger.digest import journal_digest
from ledger.periods import Period
from ledger.record_chain import record_chain_head
from ledger.store import store_at

REPORT_THREADS = 4
OWN_PROCESS_FROM_ENTRIES = 200_000
Key = TypeVar("Key", bound=Hashable)
Value = TypeVar("Value")


def report_threads() -> ThreadPoolExecutor:
    """The threads the reconciliations and reports run on, first in, first out. The reads
    run in the database driver, which lets go of the interpreter: on several threads they
    use every core."""
    return ThreadPoolExecutor(max_workers=REPORT_THREADS)


def submit_in_order(threads: ThreadPoolExecutor, tasks: Iterable[tuple[Key, Callable[[], Value]]],
                    ) -> dict[Key, Future[Value]]:
    """Submit `tasks` in the order given, each after every task submitted before this call.

    Why this order is the close's deadlock-freedom: the threads take tasks first in, first
    out, and a task may wait only on tasks submitted before it. So the oldest unfinished
    task has started (every earlier one has finished and freed its thread) and what it
    waits on has finished: it can finish too, and the threads always have one task that
    can, however few they are. A caller keeps the rule by submitting what is waited on
    (the reconciliations) in an earlier call than what waits (the reports)."""
    return {key: threads.submit(task) for key, task in tasks}


def journal_reader(entries: int) -> Executor:
    """Where the close reads every journal line (line totals, unbalanced entries, digest).

    For a large period, a process of its own: the digest fetches each line as a row, and
    in a thread every row waits for the interpreter the reports are using (the bench
    month of 3M entries closed in about 89 s that way, in about 65 s this way). For a
    small one, a thread: starting a process (a second or two) would cost more than it
    saves."""
    if entries < OWN_PROCESS_FROM_ENTRIES:
        return ThreadPoolExecutor(max_workers=1)
    return ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_end_with, initargs=(os.getpid(),))


def _end_with(parent: int) -> None:
    """Make this process end when the close that started it does, however that ends."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def digest_and_head(database_url: str,
                    period: Period) -> tuple[str, int, ChainHead, ChainHead, str | None]:
    """The period's journal digest and line count, both chains' heads and the ledger's id
    (run on the journal reader: it opens the books at `database_url` itself)."""
    with store_at(database_url) as store, store.engine.connect() as connection:
        digest, lines = journal_digest(connection, period)
        return (digest, lines, chain_head(connection), record_chain_head(connection),
                known_ledger_id(connection))


def stop(*executors: Executor) -> None:
    """Cancel what has not started on each executor (a refused close builds nothing more)."""
    for executor in executors:
        executor.shutdown(cancel_futures=True)
