"""Refunds of unused credits, worked by hand (USD; 1 credit of P-R is worth 10.00 / 3).

2026-03-01  P-R  cust R  3 credits 10.00 + tax 0.80, expires 2026-06-01
            P-Q  cust Q  4 credits  1.00,              never expires
            P-F  cust R  2 promotional credits
            U1   R 1 credit       P-R used 1: value round(1000 x 1/3) = 333 -> 3.33
2026-03-02  RF1  P-R 1 credit, amount 3.61: value round(1000 x 2/3) - 333 = 667 - 333 = 334,
                 tax round(80 x 1/3) = 27 -> 3.34 + 0.27 = 3.61 back to cash
            RF2  P-R 2 credits: only 1 left after RF1 -> rejected
            RF3  unknown purchase -> rejected;  RF4  promotional P-F -> rejected
            RF5  P-Q 1 credit stating 0.30; the books say 0.25 -> rejected
            U2   R 1 credit: P-F is cheaper and burns first (promotional, no value)
            U3   R 1 credit: P-R used 2, (used + refunded) = 3: 1000 - (333 + 334) = 333 -> 3.33
                 P-R is finished: usage 6.66 + refunds 3.34 = 10.00
2026-03-03  RF1 again (duplicate), RF6 P-R 1 credit (none left) -> rejected
            RF7  P-Q all 4 credits at 08:00: value 1.00; U4 Q 1 credit at 10:00 finds none left
                 -> uncovered, not revenue

Cash 10.80 + 1.00 - 3.61 - 1.00 = 7.19; tax -0.80 + 0.27 = -0.53; usage revenue -6.66;
deferred 0. March rollforward: purchases 11.00, usage 6.66, refunds 4.34, closing 0.00.
"""

from __future__ import annotations

from datetime import date

import pytest

from reports.controls import run_controls
from reports.statements import rollforward
from reports.subledger import exceptions
from tests.support.nights import post_days
from tests.support.refunds import write_refund_scenario
from tests.support.scenario import trial_balance_of


@pytest.mark.slow  # over a second here: not in make test-fast
def test_refunds_return_exact_value_and_tax_and_refuse_what_the_books_cannot_allow(store, policy,
                                                                                     tmp_path):
    write_refund_scenario(tmp_path / "landing")
    post_days(store, policy, tmp_path, date(2026, 3, 1), date(2026, 3, 3))

    assert trial_balance_of(store, "2026-03") == {
        ("Assets:Cash:Clearing", "USD"): ("0.00", "11.80", "-4.61", "7.19"),
        ("Income:Revenue:Usage", "USD"): ("0.00", "0.00", "-6.66", "-6.66"),
        ("Liabilities:DeferredRevenue:Credits", "USD"): ("0.00", "11.00", "-11.00", "0.00"),
        ("Liabilities:Tax:Sales", "USD"): ("0.00", "0.27", "-0.80", "-0.53"),
    }
    refunds = store.read_frame(
        "SELECT refund_id, credits_micro, value_minor, tax_minor FROM refunds ORDER BY refund_id")
    assert refunds.values.tolist() == [["RF1", 1_000_000, 334, 27], ["RF7", 4_000_000, 100, 0]]
    [usd] = rollforward(store, "2026-03", policy.accounts.deferred_revenue)
    assert usd.as_strings() == {"currency": "USD", "opening": "0.00", "purchases": "11.00",
                                "usage_revenue": "6.66", "breakage": "0.00", "refunds": "4.34",
                                "escheat": "0.00", "manual_journals": "0.00", "closing": "0.00"}
    assert usd.difference_minor == 0

    rejected = [(row["business_date"], row["source"], row["reason"])
                for row in exceptions(store) if row["kind"] == "rejected"]
    assert rejected == [
        ("2026-03-02", "refunds.csv row 2",
         "credits: asks for 2 credits but lot P-R has 1 left"),
        ("2026-03-02", "refunds.csv row 3", "purchase_id: is not a known purchase"),
        ("2026-03-02", "refunds.csv row 4",
         "purchase_id: is a promotional lot: free credits have no consideration to refund"),
        ("2026-03-02", "refunds.csv row 5",
         "amount: does not match the refund the books compute: 0.25 "
         "(deferred value 0.25 + tax 0.00)"),
        ("2026-03-03", "refunds.csv row 2", "credits: asks for 1 credits but lot P-R has 0 left"),
    ]
    files = store.read_frame("""
        SELECT business_date, rows_read, rows_accepted, rows_duplicate, rows_rejected
        FROM batch_files f JOIN batches b ON b.batch_id = f.batch_id
        WHERE document = 'refunds' ORDER BY business_date""")
    assert files[["rows_read", "rows_accepted", "rows_duplicate", "rows_rejected"]].values.tolist() \
        == [[5, 1, 0, 4], [3, 1, 1, 1]]
    uncovered = store.read_frame("SELECT customer_id, credits_micro FROM uncovered_usage")
    assert uncovered.values.tolist() == [["Q", 1_000_000]]
    lots = store.read_frame("""
        SELECT purchase_id, is_open, credits_used_micro, usage_value_minor, credits_refunded_micro,
               refunded_value_minor, refunded_tax_minor FROM lot_balances ORDER BY purchase_id""")
    assert lots.astype({"is_open": bool}).values.tolist() == [
        ["P-F", True, 1_000_000, 0, 0, 0, 0],
        ["P-Q", False, 0, 0, 4_000_000, 100, 0],
        ["P-R", False, 2_000_000, 666, 1_000_000, 334, 27],
    ]
    assert all(result.passed for result in run_controls(store, policy.accounts.deferred_revenue))


def test_a_refund_posts_one_entry_back_against_cash(sqlite_store, policy, tmp_path):
    write_refund_scenario(tmp_path / "landing")
    post_days(sqlite_store, policy, tmp_path, date(2026, 3, 1), date(2026, 3, 2))
    lines = sqlite_store.read_frame("""
        SELECT e.kind, e.source_ref, l.account, l.amount_minor, l.purchase_id
        FROM journal_lines l JOIN journal_entries e ON e.entry_id = l.entry_id
        WHERE e.entry_id = 'refund/RF1' ORDER BY l.line_number""")
    assert lines.values.tolist() == [
        ["refund", "RF1", "Liabilities:DeferredRevenue:Credits", 334, "P-R"],
        ["refund", "RF1", "Liabilities:Tax:Sales", 27, "P-R"],
        ["refund", "RF1", "Assets:Cash:Clearing", -361, "P-R"],
    ]
