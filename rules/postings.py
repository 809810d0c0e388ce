"""Shared shape of the entries the rules produce: frames of entries and numbered lines."""

from __future__ import annotations

import pandas as pd

from ledger.journal import LINE_COLUMNS, JournalBatch, number_lines
from ledger.periods import BusinessDay


def journal_from_lines(
    lines: pd.DataFrame, kind: str, day: BusinessDay, source_ref_of: pd.Series
) -> JournalBatch:
    """Entries for the lines' entry ids; zero lines dropped, lines numbered in order.

    `lines` carries entry_id, customer_id, account, currency, amount_minor, meter,
    purchase_id; `source_ref_of` maps entry_id to the source document reference.
    """
    if "functional_minor" not in lines:
        # In the functional currency the two amounts agree; rules/fx.py translates the rest.
        lines = lines.assign(functional_minor=lines["amount_minor"])
    lines = lines[(lines["amount_minor"] != 0) | (lines["functional_minor"] != 0)]
    if lines.empty:
        return JournalBatch.empty()
    entries = (
        lines.groupby("entry_id", sort=True, as_index=False)["customer_id"].first()
        .assign(kind=kind, business_date=day.business_date, period=day.period)
    )
    entries["source_ref"] = entries["entry_id"].map(source_ref_of)
    numbered = number_lines(lines.reset_index(drop=True))
    for optional in ("meter", "purchase_id"):
        numbered[optional] = numbered[optional].astype(object).where(
            numbered[optional].notna(), None
        )
    return JournalBatch(
        entries[["entry_id", "kind", "business_date", "period", "customer_id", "source_ref"]],
        numbered[list(LINE_COLUMNS)].astype({"amount_minor": "int64",
                                             "functional_minor": "int64"}),
    )


def line_frame(entry_id, customer_id, account, currency, amount_minor, meter=None,
               purchase_id=None) -> pd.DataFrame:
    """Lines from aligned columns (scalars broadcast)."""
    return pd.DataFrame({
        "entry_id": entry_id,
        "customer_id": customer_id,
        "account": account,
        "currency": currency,
        "amount_minor": amount_minor,
        "meter": meter,
        "purchase_id": purchase_id,
    })
