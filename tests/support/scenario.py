"""The hand-worked scenario: three nights whose every figure is worked out by hand.

Purchases on 2026-01-30 (USD unless said):
  P-A  cust A  3 credits   1.00 + tax 0.08  expires 2026-02-01 12:00 (mid-day)
  P-B  cust A  10 credits  20.00            never expires
  P-G  cust A  2 credits   promotional      never expires
  P-M  cust C  5 credits   5.00             expires 2026-02-01 00:00 (midnight: day Jan 31)
  P-J  cust B  100 credits 1000 JPY         never expires
A's burn order: P-A (expires soonest), P-G (never, cheapest), P-B.

Jan 30  U1 A 1 api         P-A used 1   value round(100*1/3)=33    -> 0.33
        U2 B 33.333333 api P-J used 33.333333 value round(333.33333)=333 JPY
Jan 31  U3 A 1 gpu         P-A used 2   value round(66.67)=67      -> +0.34
        U4 B 0.5 api, late (occurred Jan 29)  P-J used 33.833333 -> 338 JPY (+5)
        U7 D 7 api         no lots: uncovered 7 credits
        expiry: P-M (midnight ending Jan 31): breakage 5.00
Feb 1   U5 A 0.5 api 08:00 P-A used 2.5 value round(83.33)=83     -> +0.16
        U6 A 4 gpu 13:00   P-A expired at 12:00; P-G gives 2 (no value), P-B 2 -> 4.00
        expiry: P-A, 0.5 credits left, breakage 1.00 - 0.83 = 0.17
        plus a resent U3 (duplicate), U2 with other credits (conflict), a bad row.

January (USD): purchases 26.00, usage 0.67, breakage 5.00, closing deferred 20.33.
February (USD): opening 20.33, usage 4.16, breakage 0.17, closing 16.00 (= P-B 8 credits).
JPY January: purchases 1000, usage 338, closing 662.
"""

from __future__ import annotations

from datetime import date

from creditbooks.night.run import run_night
from reports.statements import trial_balance
from tests.support.landing import write_document

PURCHASE = {"tax_amount": "", "expires_at": "", "kind": "paid", "product": "pack", "priority": "0"}


def purchase(purchase_id, customer, credits, amount, currency="USD", **extra):
    return {**PURCHASE, "purchase_id": purchase_id, "customer_id": customer,
            "purchased_at": "2026-01-30T09:00:00Z", "credits": credits, "amount": amount,
            "currency": currency, **extra}


def usage(event_id, customer, occurred_at, meter, credits):
    return {"event_id": event_id, "customer_id": customer, "occurred_at": occurred_at,
            "meter": meter, "credits": credits}


def write_scenario(landing, file_format="csv"):
    write_document(landing, "2026-01-30", "purchases", [
        purchase("P-A", "A", "3", "1.00", tax_amount="0.08", expires_at="2026-02-01T12:00:00Z"),
        purchase("P-B", "A", "10", "20.00"),
        purchase("P-G", "A", "2", "0", kind="promotional", product="promo"),
        purchase("P-M", "C", "5", "5.00", purchased_at="2026-01-30T00:00:00Z",
                 expires_at="2026-02-01T00:00:00Z"),
        purchase("P-J", "B", "100", "1000", currency="JPY"),
    ], file_format)
    # The JPY lot's rate, and the same at month ends: its cash is remeasured to no change.
    for day in ("2026-01-30", "2026-01-31", "2026-02-28", "2026-03-31"):
        write_document(landing, day, "fx_rates", [
            {"date": day, "currency": "JPY", "rate_to_functional": "0.0067"}], file_format)
    write_document(landing, "2026-01-30", "usage", [
        usage("U1", "A", "2026-01-30T10:00:00Z", "api", "1"),
        usage("U2", "B", "2026-01-30T10:00:00Z", "api", "33.333333"),
    ], file_format)
    write_document(landing, "2026-01-31", "usage", [
        usage("U3", "A", "2026-01-31T12:00:00Z", "gpu", "1"),
        usage("U4", "B", "2026-01-29T23:00:00Z", "api", "0.5"),
        usage("U7", "D", "2026-01-31T08:00:00+02:00", "api", "7"),
    ], file_format)
    write_document(landing, "2026-02-01", "usage", [
        usage("U5", "A", "2026-02-01T08:00:00Z", "api", "0.50"),
        usage("U6", "A", "2026-02-01T13:00:00Z", "gpu", "4"),
        usage("U3", "A", "2026-01-31T12:00:00Z", "gpu", "1.0"),
        usage("U2", "B", "2026-01-30T10:00:00Z", "api", "3"),
        usage("U8", "B", "2026-02-01T10:00:00Z", "api", "-1"),
    ], file_format)


NIGHTS = [date(2026, 1, 30), date(2026, 1, 31), date(2026, 2, 1)]


def scenario_books_on_the_command_line(root, first: str, last: str):
    """The scenario landed under ROOT, `creditbooks init` run there and then `creditbooks
    nightly` from first to last (YYYY-MM-DD); ROOT."""
    from tests.support.cli import creditbooks

    write_scenario(root / "landing")
    creditbooks("init", cwd=root)
    creditbooks("nightly", "--from", first, "--to", last, cwd=root)
    return root


def run_nights(store, policy, tmp_path, nights=NIGHTS, **options):
    return [run_night(store, policy, tmp_path / "landing", tmp_path / "archive", night, **options)
            for night in nights]


def trial_balance_of(store, period):
    """The period's trial balance as {(account, currency): (opening, debit, credit, closing)}."""
    return {(row["account"], row["currency"]): (row["opening"], row["debit"], row["credit"],
                                                row["closing"])
            for row in trial_balance(store, period)}
