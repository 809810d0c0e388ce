"""The refund scenario (worked by hand in tests/test_refunds.py): refunds of a paid lot with
tax, of a promotional lot, of an unknown lot, more than is left, and a re-sent refund."""

from __future__ import annotations

from tests.support.landing import write_document
from tests.support.scenario import purchase, usage


def refund(refund_id, purchase_id, refunded_at, credits, amount=""):
    return {"refund_id": refund_id, "purchase_id": purchase_id, "refunded_at": refunded_at,
            "credits": credits, "amount": amount}


def write_refund_scenario(landing):
    write_document(landing, "2026-03-01", "purchases", [
        purchase("P-R", "R", "3", "10.00", tax_amount="0.80", purchased_at="2026-03-01T09:00:00Z",
                 expires_at="2026-06-01T00:00:00Z"),
        purchase("P-Q", "Q", "4", "1.00", purchased_at="2026-03-01T09:00:00Z"),
        purchase("P-F", "R", "2", "0", kind="promotional", purchased_at="2026-03-01T09:00:00Z"),
    ])
    write_document(landing, "2026-03-01", "usage", [
        usage("U1", "R", "2026-03-01T10:00:00Z", "api", "1"),
    ])
    write_document(landing, "2026-03-02", "refunds", [
        refund("RF1", "P-R", "2026-03-02T09:00:00Z", "1", "3.61"),
        refund("RF2", "P-R", "2026-03-02T10:00:00Z", "2"),
        refund("RF3", "P-NOPE", "2026-03-02T10:00:00Z", "1"),
        refund("RF4", "P-F", "2026-03-02T10:00:00Z", "1"),
        refund("RF5", "P-Q", "2026-03-02T10:00:00Z", "1", "0.30"),
    ])
    write_document(landing, "2026-03-02", "usage", [
        usage("U2", "R", "2026-03-02T11:00:00Z", "api", "1"),
        usage("U3", "R", "2026-03-02T12:00:00Z", "api", "1"),
    ])
    write_document(landing, "2026-03-03", "refunds", [
        refund("RF1", "P-R", "2026-03-02T09:00:00Z", "1", "3.61"),
        refund("RF6", "P-R", "2026-03-03T09:00:00Z", "1"),
        refund("RF7", "P-Q", "2026-03-03T08:00:00Z", "4"),
    ])
    write_document(landing, "2026-03-03", "usage", [
        usage("U4", "Q", "2026-03-03T10:00:00Z", "api", "1"),
    ])
