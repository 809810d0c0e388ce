"""The start of a night: refunds and adjustments change lots before the day's usage burns.

Both were judged against the lots at ingest (rules/refunds.py, rules/adjustments.py) and
archived; here they are recorded, the lots' running totals move, and refunds post.
"""

from __future__ import annotations

import pandas as pd
from sqlalchemy import Connection

from creditbooks.night.lots import lots_by_id
from creditbooks.night.posting import Night, archived_rows, post
from intake.validation import fingerprint_to_hex
from ledger import schema
from ledger.domain import AdjustmentAction
from ledger.store import insert_frame, replace_lot_balances
from rules.fx import positions
from rules.lot_state import credits_left_micro
from rules.refunds import refund_journal, refunded_totals


def apply_refunds(connection: Connection, night: Night) -> None:
    """The day's accepted refunds leave their lots before the day's usage burns."""
    refunds = archived_rows(connection, night, "refunds")
    if refunds.empty:
        return
    refunds = refunds.astype({"credits_micro": "int64", "value_minor": "int64",
                              "tax_minor": "int64"}).assign(
        refunded_at=lambda frame: pd.to_datetime(frame["refunded_at"], utc=True),
        payload_hash=lambda frame: frame["payload_hash"].map(fingerprint_to_hex))
    insert_frame(connection, schema.RefundRecord, refunds.assign(**night.on_day))
    totals = refunded_totals(refunds).set_index("purchase_id")
    before = lots_by_id(connection, refunds["purchase_id"])
    lots = before.set_index("purchase_id").loc[totals.index]
    lots["credits_refunded_micro"] += totals["credits_micro"]
    lots["refunded_value_minor"] += totals["value_minor"]
    lots["refunded_tax_minor"] += totals["tax_minor"]
    lots["is_open"] = credits_left_micro(lots) > 0
    replace_lot_balances(connection, lots.reset_index()[[
        "purchase_id", "credits_refunded_micro", "refunded_value_minor", "refunded_tax_minor",
        "is_open"]].assign(last_batch_id=night.batch_id))
    post(connection, night, refund_journal(refunds, night.day, night.policy.accounts),
          positions(before))


def apply_adjustments(connection: Connection, night: Night) -> None:
    """Rollovers move a lot's expiry; voids withdraw what is left of a promotional grant."""
    adjustments = archived_rows(connection, night, "adjustments")
    if adjustments.empty:
        return
    adjustments = adjustments.astype({"credits_voided_micro": "int64"}).assign(
        payload_hash=adjustments["payload_hash"].map(fingerprint_to_hex))
    insert_frame(connection, schema.LotAdjustment, adjustments.assign(**night.on_day))
    lots = lots_by_id(connection, adjustments["purchase_id"]).set_index("purchase_id")
    changes = adjustments.set_index("purchase_id")  # one adjustment per lot per day
    lots = lots.loc[changes.index]
    rolled = changes["action"] == AdjustmentAction.ROLLOVER
    lots.loc[rolled, "expires_at"] = pd.to_datetime(changes.loc[rolled, "new_expires_at"],
                                                    utc=True)
    lots["credits_voided_micro"] += changes["credits_voided_micro"]
    lots["is_open"] = credits_left_micro(lots) > 0
    replace_lot_balances(connection, lots.reset_index()[[
        "purchase_id", "expires_at", "credits_voided_micro", "is_open"]].assign(
        last_batch_id=night.batch_id))
