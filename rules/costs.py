"""Costs of serving as journal entries, when the policy posts them (off by default).

A cost line: Dr cost of revenue (with its meter) / Cr accrued costs, dated the business
day it arrived. Whether posted or not, cost lines feed the unit economics.
"""

from __future__ import annotations

import pandas as pd

from ledger.accounts import ChartOfAccounts
from ledger.journal import EntryKind, JournalBatch
from ledger.periods import BusinessDay
from rules.postings import journal_from_lines, line_frame


def cost_journal(costs: pd.DataFrame, day: BusinessDay, accounts: ChartOfAccounts) -> JournalBatch:
    """costs: cost_id, meter, currency, amount_minor, vendor."""
    costs = costs.sort_values("cost_id")
    entry_id = "cost/" + costs["cost_id"]
    common = {"entry_id": entry_id, "customer_id": "", "currency": costs["currency"]}
    lines = pd.concat([
        line_frame(account=accounts.cost_of_revenue, amount_minor=costs["amount_minor"],
                   meter=costs["meter"], **common),
        line_frame(account=accounts.accrued_costs, amount_minor=-costs["amount_minor"], **common),
    ], ignore_index=True).sort_values("entry_id", kind="stable")
    source_ref = pd.Series((costs["vendor"] + "/" + costs["cost_id"]).to_numpy(),
                           index=entry_id.to_numpy())
    return journal_from_lines(lines, EntryKind.COST, day, source_ref)
