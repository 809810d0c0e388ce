"""Expiry under the remote method: unused deferred value becomes breakage revenue.

A lot whose `expires_at` falls in business day D or earlier (an expiry exactly at
midnight belongs to the day that ends there) and is still open is expired by D's run,
dated D: its remaining credits are lost and its remaining deferred value (amount minus
usage value to date) moves to breakage revenue. Promotional lots expire with no entry.
A lot that arrives already expired is expired by the run that first sees it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ledger.accounts import ChartOfAccounts
from ledger.journal import EntryKind, JournalBatch
from ledger.periods import BusinessDay
from rules.postings import journal_from_lines, line_frame


@dataclass(frozen=True)
class ExpiredLots:
    expiries: pd.DataFrame  # purchase_id, credits_micro, value_minor
    journal: JournalBatch


def expire_lots(lots: pd.DataFrame, day: BusinessDay, accounts: ChartOfAccounts) -> ExpiredLots:
    """lots: open lots with their state after today's burn."""
    remaining_credits = lots["credits_micro"] - lots["credits_used_micro"]
    due = lots["expires_at"].notna() & (lots["expires_at"] <= day.ends_at_utc)
    due &= remaining_credits > 0
    expiring = lots[due].sort_values("purchase_id")
    expiries = pd.DataFrame({
        "purchase_id": expiring["purchase_id"].to_numpy(),
        "credits_micro": (expiring["credits_micro"] - expiring["credits_used_micro"]).to_numpy(),
        "value_minor": (expiring["amount_minor"] - expiring["usage_value_minor"]).to_numpy(),
    })
    entry_id = "breakage/" + expiring["purchase_id"]
    common = {"entry_id": entry_id, "customer_id": expiring["customer_id"],
              "currency": expiring["currency"], "purchase_id": expiring["purchase_id"]}
    value = expiring["amount_minor"] - expiring["usage_value_minor"]
    lines = pd.concat([
        line_frame(account=accounts.deferred_revenue, amount_minor=value, **common),
        line_frame(account=accounts.breakage_revenue, amount_minor=-value, **common),
    ], ignore_index=True).sort_values("entry_id", kind="stable")
    source_ref = pd.Series(expiring["purchase_id"].to_numpy(), index=entry_id.to_numpy())
    return ExpiredLots(expiries, journal_from_lines(lines, EntryKind.BREAKAGE, day, source_ref))
