"""exported journal ids

Revision ID: f3a9c2d71e58
Revises: b7e5d1c94a20
Create Date: 2026-11-29 14:35:00.000000

What changed in ledger/schema/, and why (issue 20): an export's external ids were numbered
1, 2, 3... across the period on every export, so a journal added after a reopen shifted
every later journal's id and the ERP overwrote or double-posted journals.
`exported_journal_ids` (ledger/schema/exports.py) keeps each id issued: namespace (the
id's prefix) and journal key -> number, append-only, so an id is never reissued.

What the upgrade does to existing rows: nothing; the table starts empty, and the next
export of a period issues its ids (numbered in date and key order, as before).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'f3a9c2d71e58'
down_revision: str | None = 'b7e5d1c94a20'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _identifier(length: int) -> sa.String:
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table('exported_journal_ids',
    sa.Column('namespace', _identifier(16), nullable=False),
    sa.Column('journal_key', _identifier(600), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('issued_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint('number > 0', name='ck_exported_journal_ids_number'),
    sa.PrimaryKeyConstraint('namespace', 'journal_key'),
    sa.UniqueConstraint('namespace', 'number', name='uq_exported_journal_ids_number')
    )


def downgrade() -> None:
    op.drop_table('exported_journal_ids')
