"""Purchases become lots in the credit subledger and entries in the journal.

A paid purchase: Dr cash clearing (amount + tax) / Cr deferred revenue (amount) /
Cr sales tax (tax). Tax is a liability, never revenue. A promotional lot has no
consideration: it posts nothing but exists in the subledger, where it still absorbs usage.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ledger.accounts import ChartOfAccounts
from ledger.journal import EntryKind, JournalBatch
from ledger.periods import BusinessDay
from rules.postings import journal_from_lines, line_frame

LOT_COLUMNS = [
    "purchase_id", "customer_id", "purchased_at", "expires_at", "credits_micro", "amount_minor",
    "tax_minor", "currency", "kind", "product", "priority", "country", "rate_to_functional",
    "payload_hash",
]


@dataclass(frozen=True)
class PostedPurchases:
    lots: pd.DataFrame
    journal: JournalBatch


def post_purchases(
    purchases: pd.DataFrame, day: BusinessDay, accounts: ChartOfAccounts
) -> PostedPurchases:
    lots = purchases[LOT_COLUMNS].sort_values("purchase_id").reset_index(drop=True)
    entry_id = "purchase/" + lots["purchase_id"]
    common = {"entry_id": entry_id, "customer_id": lots["customer_id"],
              "currency": lots["currency"], "purchase_id": lots["purchase_id"]}
    lines = pd.concat([
        line_frame(account=accounts.cash_clearing,
                   amount_minor=lots["amount_minor"] + lots["tax_minor"], **common),
        line_frame(account=accounts.deferred_revenue, amount_minor=-lots["amount_minor"], **common),
        line_frame(account=accounts.sales_tax, amount_minor=-lots["tax_minor"], **common),
    ], ignore_index=True).sort_values("entry_id", kind="stable")
    source_ref = pd.Series(lots["purchase_id"].to_numpy(), index=entry_id.to_numpy())
    return PostedPurchases(lots, journal_from_lines(lines, EntryKind.PURCHASE, day, source_ref))
