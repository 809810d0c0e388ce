"""Manual journals in tests: a journal file written from CSV rows, and lot P-W, which a
journal writes 100.00 down after its first night (worked in tests/test_manual_journals.py)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from creditbooks.journals import approve, import_journals
from tests.support.landing import write_document
from tests.support.nights import post_days
from tests.support.refunds import refund
from tests.support.scenario import purchase, usage

HEADER = "journal_ref,date,account,currency,debit,credit,memo,customer_id,purchase_id,reverse_on"
DEFERRED = "Liabilities:DeferredRevenue:Credits"
# MJ-W: 100.00 of P-W's deferred revenue written off (a price concession repaid outside
# the books), dated its first night.
WRITE_DOWN_P_W = [f"MJ-W,2026-03-01,{DEFERRED},USD,100.00,,price concession,W,P-W,",
                  "MJ-W,2026-03-01,Assets:Cash:Clearing,USD,,100.00,price concession,W,,"]


def journal_file(directory: Path, rows: list[str], name: str = "journals.csv") -> Path:
    path = directory / name
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    return path


def write_written_down_lot(landing: Path) -> None:
    """P-W (customer W): 57 credits for 570.00, bought 2026-03-01 09:00, expiring at the
    midnight that ends March 3. March 1: 20 credits used (200.00). March 2: 3 credits
    refunded at 09:00, 10 used at 10:00. March 3: 7 used; 17 expire that night."""
    write_document(landing, "2026-03-01", "purchases", [purchase(
        "P-W", "W", "57", "570.00", purchased_at="2026-03-01T09:00:00Z",
        expires_at="2026-03-04T00:00:00Z")])
    write_document(landing, "2026-03-01", "usage", [usage("W1", "W", "2026-03-01T10:00:00Z",
                                                          "api", "20")])
    write_document(landing, "2026-03-02", "refunds", [refund("RF-W", "P-W",
                                                             "2026-03-02T09:00:00Z", "3")])
    write_document(landing, "2026-03-02", "usage", [usage("W2", "W", "2026-03-02T10:00:00Z",
                                                          "api", "10")])
    write_document(landing, "2026-03-03", "usage", [usage("W3", "W", "2026-03-03T10:00:00Z",
                                                          "api", "7")])


def written_down_lot(store, policy, root: Path, last_night: date) -> None:
    """P-W's first night posted, MJ-W prepared by alice and approved by bob, then its nights
    up to `last_night` (March 1 to 3) posted from root/landing."""
    write_written_down_lot(root / "landing")
    post_days(store, policy, root, date(2026, 3, 1), date(2026, 3, 1))
    import_journals(store, policy, journal_file(root, WRITE_DOWN_P_W), "alice")
    approve(store, policy, "MJ-W", "bob")
    post_days(store, policy, root, date(2026, 3, 2), last_night)
