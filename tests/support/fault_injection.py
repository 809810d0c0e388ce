"""Run the `creditbooks` command line and SIGKILL it at a chosen point (tests only).

    python -m tests.support.fault_injection POINT [creditbooks arguments...]

Each point wraps one function on the run's path; the wrapper does that function's work
(or half of it) and then kills its own process with SIGKILL, so nothing after it runs:
no `finally`, no rollback, no flush. What is left is what a power cut would leave.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable

import creditbooks.close.lifecycle
import creditbooks.night.ingest
import creditbooks.night.stages
import intake.archive
import ledger.store
import reports.outputs.package
from creditbooks.cli import main
from ledger import schema


def _die() -> None:
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def _after(module, name: str, when: Callable[..., bool] = lambda *_, **__: True) -> None:
    """Kill right after `module.name` did its work (when `when` says so)."""
    original = getattr(module, name)

    def then_die(*arguments, **keywords):
        result = original(*arguments, **keywords)
        if when(*arguments, **keywords):
            _die()
        return result

    setattr(module, name, then_die)


def _half_written_parquet(table, where, *arguments, **keywords) -> None:
    with open(where, "wb") as half:
        half.write(b"PAR1" + b"\0" * 64)  # a torn write: the header and nothing after it
    _die()


POINTS = {
    # mid-ingest: the usage partition is archived, the database rows are not yet written
    "mid-ingest": lambda: _after(intake.archive.PartitionWriter, "write",
                                 lambda _writer, document, *_: document == "usage"),
    # mid-archive-write: the process dies with a partition half on disk
    "mid-archive-write": lambda: setattr(intake.archive.pq, "write_table", _half_written_parquet),
    # mid-burn: lot balances moved, the burn's journal not yet posted
    "mid-burn": lambda: _after(creditbooks.night.stages, "replace_lot_balances"),
    # mid-posting: a journal's entries are written, its lines are not
    "mid-posting": lambda: _after(
        ledger.store, "insert_frame",
        lambda _connection, table, frame: table is schema.JournalEntryRecord and len(frame) > 0),
    # mid-publish: the night's entries are sealed onto the chain, the batch not yet marked
    "mid-publish": lambda: _after(creditbooks.night.stages, "seal_batch"),
    # mid-close-package: some package files are written, the workbook is not
    "mid-close-package": lambda: _after(reports.outputs.package, "write_csv",
                                        lambda path, *_: path.name == "trial_balance.csv"),
    # mid-close-lock: the lock event is written, its transaction not committed
    "mid-close-lock": lambda: _after(creditbooks.close.lifecycle, "record_period_event"),
}


if __name__ == "__main__":
    point = sys.argv.pop(1)
    POINTS[point]()
    main()
