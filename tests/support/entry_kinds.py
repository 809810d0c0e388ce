"""A two-night scenario that posts a cost, an escheat, an overage and an FX entry, each
worked by hand (functional USD), for the traces of those entries.

Policy: costs posted; unclaimed property in DE; customer A billed in arrears at USD 0.015
a credit.
03-30  P-A1 cust A (US) 2 credits 2.00; A uses 3 api: 1 uncovered, billed 1 x 0.015 =
         0.015 -> 0.02 (half even): overage/A/2026-03-30, Dr receivables 0.02 / Cr overage
       P-D cust D (DE) 2 credits 2.00, expires 2026-03-31 12:00, never used
       P-E cust E (US) 3 credits 10.00 EUR + 2.00 EUR tax at 1.10: cash 12.00 EUR = 13.20 USD
       K1 cost line, gpu, 0.30 USD, vendor cloud: cost/K1, Dr cost of revenue / Cr accrued
03-31  P-D expires with 2 credits and 2.00 left; DE: escheat/P-D moves 2.00 to the
         unclaimed-property liability
       month end: cash 12.00 EUR x 1.20 = 14.40 USD, carried at 13.20: +1.20; sales tax
         payable 2.00 EUR x 1.20 = 2.40 USD, carried at 2.20: -0.20; fx/2026-03/EUR, an
         unrealised gain of 1.00
"""

from __future__ import annotations

import tomllib
from datetime import date

from rules.policy import DEFAULT_POLICY_FILE, policy_from_document
from tests.support.landing import write_document
from tests.support.nights import post_days
from tests.support.scenario import purchase, usage

FIRST_NIGHT, LAST_NIGHT = date(2026, 3, 30), date(2026, 3, 31)


def entry_kinds_document(document: dict | None = None) -> dict:
    """The scenario's policy document (on `document`, else the default policy)."""
    document = document or tomllib.loads(DEFAULT_POLICY_FILE.read_text())
    document["costs"] = {"post": True}
    document["unclaimed_property"] = {"countries": ["DE"]}
    document["usage"] |= {"overage_customers": {"A": "arrears"},
                          "overage_price_per_credit": {"USD": "0.015"}}
    return document


def write_entry_kinds_scenario(landing) -> None:
    bought = {"purchased_at": "2026-03-30T09:00:00Z"}
    write_document(landing, "2026-03-30", "purchases", [
        purchase("P-A1", "A", "2", "2.00", country="US", **bought),
        purchase("P-D", "D", "2", "2.00", country="DE", expires_at="2026-03-31T12:00:00Z",
                 **bought),
        purchase("P-E", "E", "3", "10.00", currency="EUR", tax_amount="2.00", country="US",
                 **bought)])
    for day, rate in (("2026-03-30", "1.10"), ("2026-03-31", "1.20")):
        write_document(landing, day, "fx_rates", [
            {"date": day, "currency": "EUR", "rate_to_functional": rate}])
    write_document(landing, "2026-03-30", "usage", [
        usage("U1", "A", "2026-03-30T10:00:00Z", "api", "3")])
    write_document(landing, "2026-03-30", "costs", [
        {"cost_id": "K1", "date": "2026-03-30", "meter": "gpu", "amount": "0.30",
         "currency": "USD", "cost_type": "variable", "vendor": "cloud", "memo": "gpu hours"}])


def post_entry_kinds_scenario(store, root, document: dict | None = None):
    """Write the scenario under root/landing and post its two nights; the policy used."""
    policy = policy_from_document(entry_kinds_document(document))
    write_entry_kinds_scenario(root / "landing")
    post_days(store, policy, root, FIRST_NIGHT, LAST_NIGHT)
    return policy
