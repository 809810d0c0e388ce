"""Expiry: a lot's unused credits lapse and its deferred value leaves the books' liability.

A lot whose expiry in force (its own, or its last rollover's) falls in business day D or
earlier (an expiry exactly at midnight belongs to the day that ends there) and that still
has credits is expired by D's run, dated D: its remaining credits are lost and its
remaining deferred value (amount and manual journals' changes, less usage, refunds and
breakage already accrued) moves to breakage revenue, or, when the customer's country is
in the policy's unclaimed-property list, to the unclaimed-property liability
(ASC 606-10-55-49: never revenue). Promotional
lots expire with no entry. A lot that arrives already expired is expired by the run that
first sees it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ledger.accounts import ChartOfAccounts
from ledger.domain import ExpiryDestination
from ledger.journal import EntryKind, JournalBatch
from ledger.periods import BusinessDay
from rules.lot_state import credits_left_micro, deferred_value_minor
from rules.postings import journal_from_lines, line_frame


@dataclass(frozen=True)
class ExpiredLots:
    expiries: pd.DataFrame  # purchase_id, credits_micro, value_minor, destination
    journal: JournalBatch


def expire_lots(lots: pd.DataFrame, day: BusinessDay, accounts: ChartOfAccounts,
                escheat_countries: frozenset[str] = frozenset(),
                notes: pd.Series | None = None) -> ExpiredLots:
    """lots: open lots with their state after today's burn and breakage; notes: text to
    add to an entry's source, by purchase id (the proportional rate in force)."""
    due = lots["expires_at"].notna() & (lots["expires_at"] <= day.ends_at_utc)
    due &= credits_left_micro(lots) > 0
    expiring = lots[due].sort_values("purchase_id")
    escheat = expiring["country"].isin(escheat_countries).to_numpy()
    value = deferred_value_minor(expiring)
    expiries = pd.DataFrame({
        "purchase_id": expiring["purchase_id"].to_numpy(),
        "credits_micro": credits_left_micro(expiring).to_numpy(),
        "value_minor": value.to_numpy(),
        "destination": np.where(escheat, ExpiryDestination.ESCHEAT.value,
                                ExpiryDestination.BREAKAGE.value),
    })
    journals = []
    for kind, account, chosen in ((EntryKind.BREAKAGE, accounts.breakage_revenue, ~escheat),
                                  (EntryKind.ESCHEAT, accounts.unclaimed_property, escheat)):
        lots_of_kind = expiring[chosen]
        entry_id = f"{kind}/" + lots_of_kind["purchase_id"]
        common = {"entry_id": entry_id, "customer_id": lots_of_kind["customer_id"],
                  "currency": lots_of_kind["currency"], "purchase_id": lots_of_kind["purchase_id"]}
        lines = pd.concat([
            line_frame(account=accounts.deferred_revenue, amount_minor=value[chosen], **common),
            line_frame(account=account, amount_minor=-value[chosen], **common),
        ], ignore_index=True).sort_values("entry_id", kind="stable")
        source = lots_of_kind["purchase_id"]
        if notes is not None:
            note = source.map(notes)
            source = source.where(note.isna(), source + " " + note.astype(object).astype(str))
        source_ref = pd.Series(source.to_numpy(), index=entry_id.to_numpy())
        journals.append(journal_from_lines(lines, kind, day, source_ref))
    return ExpiredLots(expiries, JournalBatch.concat(journals))
