"""burn slices record the rate card version

Revision ID: 2c90177c2674
Revises: 8d2da6d1432b
Create Date: 2026-11-29 16:50:00.000000

What changed in ledger/schema/, and why (issue 23): a usage source may report raw
quantities that the policy's [rate_card] prices in credits (rules/rate_card.py). Which
rates priced a burn is part of how its revenue was reached, so every burn slice records
the card's version in `burn_slices.rate_card_version` (nullable, 64 characters, as the
policy's version).

What the upgrade does to existing rows: nothing. Their usage carried its credits (there
was no rate card), which is what null says.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '2c90177c2674'
down_revision: str | None = '8d2da6d1432b'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('burn_slices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('rate_card_version', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('burn_slices', schema=None) as batch_op:
        batch_op.drop_column('rate_card_version')
