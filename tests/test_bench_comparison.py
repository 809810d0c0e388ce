"""The benchmark's "same books" comparison: it compares the books, not how they were measured.

Issue 22: the figure "nightly 1,000,000 events in chunks of 250,000 rows: same books as
the whole-file night" said NO while the command line posted identical books. The engine
was right; the bench compared the whole result of its `books` task, which also carries
the peak memory of the process that read the books, and two processes never peak at
the same byte. These tests build real ledgers with the bench's own machinery (a small
bench day, its workspace, its tasks in their own processes) and compare them.
"""

from __future__ import annotations

import shutil

import pytest

from bench.generate import write_bench_days
from bench.run import Workspace, _sqlite, books_differences, chunked_same_books, run_task

pytestmark = pytest.mark.slow  # real processes: the bench's tasks each run in their own

CUSTOMERS, EVENTS, SEED = 200, 4_000, 20260301


@pytest.fixture(scope="module")
def bench_ledgers(tmp_path_factory):
    """The bench day posted whole and in chunks of 1,000 rows, and the lots day alone."""
    root = tmp_path_factory.mktemp("bench-comparison")
    days = write_bench_days(root, CUSTOMERS, EVENTS, SEED, "parquet")
    workspace = Workspace(root, days)
    workspace.nightly(1, check=False, chunk_rows=None)
    shutil.copytree(workspace.work, root / "whole")
    workspace.nightly(1, check=False, chunk_rows=1_000)
    return {"workspace": workspace, "days": days,
            "whole": run_task("books", database_url=_sqlite(root / "whole" / "ledger.db")),
            "chunked": run_task("books", database_url=_sqlite(workspace.work / "ledger.db")),
            "lots_only": run_task("books",
                                  database_url=_sqlite(workspace.template / "ledger.db"))}


def test_the_same_books_compare_equal_whatever_each_process_peaked_at(bench_ledgers):
    whole, chunked = bench_ledgers["whole"], bench_ledgers["chunked"]
    assert whole["chain_head"] == chunked["chain_head"]
    assert len(whole["chain_head"]) == 64 and whole["chain_head"] != "0" * 64
    revenue = [total for account, _, total in whole["balances"]
               if account.startswith("Income:Revenue")]
    assert revenue and all(total < 0 for total in revenue)  # usage recognised: credits
    assert whole["lots"][0] > 0
    # Each result carries its process's peak memory: the old comparison (`==` on the
    # whole results) said NO as soon as the two processes peaked differently.
    assert whole["peak_memory_bytes"] > 0 and chunked["peak_memory_bytes"] > 0
    moved = {**chunked, "peak_memory_bytes": whole["peak_memory_bytes"] + 4096,
             "seconds": 1.0}
    assert moved != whole
    assert books_differences(whole, moved) == []
    assert books_differences(whole, chunked) == []


def test_books_that_differ_are_named(bench_ledgers):
    whole, lots_only = bench_ledgers["whole"], bench_ledgers["lots_only"]
    assert books_differences(whole, lots_only) == ["balances", "lots", "chain_head"]
    used, value = whole["lots"]
    assert books_differences(whole, {**whole, "lots": [used + 1, value]}) == ["lots"]
    assert books_differences(whole, {**whole, "chain_head": "f" * 64}) == ["chain_head"]


def test_the_chunked_figure_says_same_books(bench_ledgers):
    """The figure itself, as the bench draws it after its series: met, nothing differing."""
    workspace, days = bench_ledgers["workspace"], bench_ledgers["days"]
    series_night = workspace.nightly(1)  # the series' night: the file held whole, checked
    assert series_night["check_passed"] and series_night["rows_read"] >= EVENTS
    figures: list[dict] = []
    chunked_same_books({"largest_case": (workspace.root, days), "largest_workspace": workspace,
                        "largest_night": series_night}, figures)
    [chunked] = figures
    assert chunked["figure"] == f"nightly {EVENTS:,} events in chunks of {EVENTS // 4:,} rows"
    assert (chunked["met"], chunked["differing"]) == (True, [])
    assert chunked["chain_head"] == chunked["whole_file_chain_head"] \
        == bench_ledgers["whole"]["chain_head"]
    assert chunked["check_passed"] is True
