"""Rollovers and voids, as recorded, dated events (USD).

03-01  P-R cust R 10 credits 10.00, expires 03-03 00:00 (end of 03-02)
       P-G cust R 5 promotional credits, never expire
       P-X cust X 10 credits 10.00, expires 03-02 00:00 (end of 03-01): breakage 10.00
       P-Q cust Q and P-Z cust Z: 1 credit 1.00 each, never expire
       U1 R 2 credits: P-R burns first (soonest expiry): 2.00
03-02  A1 roll P-R over to 04-01          accepted
       A2 roll P-X over                   refused: it expired on 03-01
       A3 void P-G                        accepted: its 5 credits are withdrawn
       A4 void P-Q                        refused: a paid lot is refunded, not voided
       A5 roll P-Z over                   refused: it never expires
       A6 roll P-R over again             refused: one adjustment per lot per day
       U2 R 3 credits: P-G is void, so P-R gives them: 3.00
       P-R would have expired tonight; rolled over, it stays open.
03-03  A1 again (a duplicate); U3 R 1 credit from P-R: 1.00
"""

from __future__ import annotations

from datetime import date

import pandas as pd

from reports.controls import run_controls
from reports.subledger import exceptions, lot_state_frame
from tests.support.landing import write_document
from tests.support.nights import post_days
from tests.support.scenario import purchase, trial_balance_of, usage


def adjustment(adjustment_id, purchase_id, action, new_expires_at="", at="2026-03-02T09:00:00Z"):
    return {"adjustment_id": adjustment_id, "purchase_id": purchase_id, "adjusted_at": at,
            "action": action, "new_expires_at": new_expires_at, "reason": "support ticket 42"}


def test_rollovers_extend_expiry_and_voids_withdraw_grants(store, policy, tmp_path):
    landing = tmp_path / "landing"
    bought = "2026-03-01T09:00:00Z"
    write_document(landing, "2026-03-01", "purchases", [
        purchase("P-R", "R", "10", "10.00", purchased_at=bought, expires_at="2026-03-03T00:00:00Z"),
        purchase("P-G", "R", "5", "0", kind="promotional", purchased_at=bought),
        purchase("P-X", "X", "10", "10.00", purchased_at=bought, expires_at="2026-03-02T00:00:00Z"),
        purchase("P-Q", "Q", "1", "1.00", purchased_at=bought),
        purchase("P-Z", "Z", "1", "1.00", purchased_at=bought)])
    write_document(landing, "2026-03-01", "usage", [
        usage("U1", "R", "2026-03-01T10:00:00Z", "api", "2")])
    rollover_a1 = adjustment("A1", "P-R", "rollover", "2026-04-01T00:00:00Z")
    write_document(landing, "2026-03-02", "adjustments", [
        rollover_a1,
        adjustment("A2", "P-X", "rollover", "2026-04-01T00:00:00Z"),
        adjustment("A3", "P-G", "void"),
        adjustment("A4", "P-Q", "void"),
        adjustment("A5", "P-Z", "rollover", "2026-04-01T00:00:00Z"),
        adjustment("A6", "P-R", "rollover", "2026-05-01T00:00:00Z", at="2026-03-02T10:00:00Z")])
    write_document(landing, "2026-03-02", "usage", [
        usage("U2", "R", "2026-03-02T10:00:00Z", "api", "3")])
    write_document(landing, "2026-03-03", "adjustments", [rollover_a1])
    write_document(landing, "2026-03-03", "usage", [
        usage("U3", "R", "2026-03-03T10:00:00Z", "api", "1")])
    post_days(store, policy, tmp_path, date(2026, 3, 1), date(2026, 3, 3))

    rejected = [(row["business_date"], row["source"], row["reason"])
                for row in exceptions(store) if row["kind"] == "rejected"]
    assert rejected == [
        ("2026-03-02", "adjustments.csv row 2", "purchase_id: the lot has expired; its breakage "
         "is booked, so it can no longer be adjusted"),
        ("2026-03-02", "adjustments.csv row 4", "action: only promotional grants can be voided; "
         "a paid lot's unused credits are refunded"),
        ("2026-03-02", "adjustments.csv row 5",
         "action: the lot never expires; there is no expiry to roll over"),
        ("2026-03-02", "adjustments.csv row 6",
         "purchase_id: has another adjustment this day; send one per lot per day"),
    ]
    files = store.read_frame("""
        SELECT rows_read, rows_accepted, rows_duplicate, rows_rejected FROM batch_files
        WHERE document = 'adjustments' ORDER BY batch_id""")
    assert files.values.tolist() == [[6, 2, 0, 4], [1, 0, 1, 0]]
    recorded = store.read_frame("""
        SELECT adjustment_id, action, previous_expires_at, new_expires_at, credits_voided_micro,
               business_date FROM lot_adjustments ORDER BY adjustment_id""")
    for column in ("previous_expires_at", "new_expires_at"):
        recorded[column] = pd.to_datetime(recorded[column]).dt.strftime("%Y-%m-%d").fillna("")
    assert recorded.astype(str).values.tolist() == [
        ["A1", "rollover", "2026-03-03", "2026-04-01", "0", "2026-03-02"],
        ["A3", "void", "", "", "5000000", "2026-03-02"],
    ]
    books = trial_balance_of(store, "2026-03")
    assert books[("Income:Revenue:Usage", "USD")][3] == "-6.00"
    assert books[("Income:Revenue:Breakage", "USD")][3] == "-10.00"
    lots = lot_state_frame(store).set_index("purchase_id")
    assert lots.loc["P-R", "credits_remaining_micro"] == 4_000_000
    assert pd.Timestamp(lots.loc["P-R", "expires_at"]) == pd.Timestamp("2026-04-01")
    assert pd.Timestamp(lots.loc["P-R", "original_expires_at"]) == pd.Timestamp("2026-03-03")
    assert lots.loc["P-G", ["credits_used_micro", "credits_voided_micro",
                            "credits_remaining_micro"]].tolist() == [0, 5_000_000, 0]
    balances = store.read_frame("SELECT purchase_id, is_open FROM lot_balances "
                                "WHERE purchase_id IN ('P-G', 'P-R') ORDER BY purchase_id")
    assert balances.astype({"is_open": bool}).values.tolist() == [["P-G", False], ["P-R", True]]
    assert all(result.passed for result in run_controls(store, policy.accounts.deferred_revenue))
