"""what a lot had consumed when a manual journal changed it

Revision ID: 5c81e0a7d3f9
Revises: 2c90177c2674
Create Date: 2026-11-29 16:50:00.000000

What changed in ledger/schema/, and why (issue 21): a manual journal's line on a lot's
deferred revenue changed the lot's balance, but the nights went on valuing the lot's burns,
refunds and expiry from its original amount, so the lot never tied out. A line that changes
its lot now records, when its journal posts, the credits the lot had given (used or
refunded) and their value (`manual_journal_lines.lot_consumed_micro`,
`lot_consumed_value_minor`); the nights value the lot from there (rules/lot_state.py).

What the upgrade does to existing rows: a line of a journal already posted gets the lot's
figures of today (the best the ledger knows: nothing posted since tells how much the lot
had consumed when it was approved); lines of drafts and lines naming no lot stay empty.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '5c81e0a7d3f9'
down_revision: str | None = '2c90177c2674'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('manual_journal_lines', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lot_consumed_micro', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('lot_consumed_value_minor', sa.BigInteger(),
                                      nullable=True))
    op.execute("""
        UPDATE manual_journal_lines SET
          lot_consumed_micro = (SELECT b.credits_used_micro + b.credits_refunded_micro
                                FROM lot_balances b
                                WHERE b.purchase_id = manual_journal_lines.purchase_id),
          lot_consumed_value_minor = (SELECT b.usage_value_minor + b.refunded_value_minor
                                      FROM lot_balances b
                                      WHERE b.purchase_id = manual_journal_lines.purchase_id)
        WHERE deferred_change_minor <> 0 AND ref IN (
          SELECT ref FROM manual_journals WHERE entry_id IS NOT NULL)""")


def downgrade() -> None:
    with op.batch_alter_table('manual_journal_lines', schema=None) as batch_op:
        batch_op.drop_column('lot_consumed_value_minor')
        batch_op.drop_column('lot_consumed_micro')
