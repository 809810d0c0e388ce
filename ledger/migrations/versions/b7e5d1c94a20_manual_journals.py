"""manual journals

Revision ID: b7e5d1c94a20
Revises: ec7ce2442a36
Create Date: 2026-11-29 14:05:00.000000

What changed in ledger/schema/, and why (issue 21, manual journals): accountants post
their own entries (corrections, accruals, reclasses). `manual_journals` keeps each one from
draft to approval (by a second person), rejection or reversal, with who and when and the
file it came from; `manual_journal_lines` keeps its lines as imported, with what a line on
deferred revenue does to its lot. An approved journal posts as a journal entry of the new
kind `manual`, so `journal_entries`' CHECK on `kind` takes that value.

What the upgrade does to existing rows: nothing; no manual journal exists before it. The
kind CHECK is replaced with one listing `manual` too (SQLite rebuilds `journal_entries`
for it, which drops its append-only triggers; the upgrade installs them again from
ledger/guards.py after the migrations).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'b7e5d1c94a20'
down_revision: str | None = 'ec7ce2442a36'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As this revision has them (written out, not imported: a migration stays as written).
_KINDS_BEFORE = "('purchase', 'usage', 'breakage', 'cost', 'refund', 'escheat', 'overage', 'fx')"
_KINDS_AFTER = ("('purchase', 'usage', 'breakage', 'cost', 'refund', 'escheat', 'overage', 'fx', "
                "'manual')")
_STATUSES = "('draft', 'approved', 'rejected', 'reversed')"


def _identifier(length: int) -> sa.String:
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def upgrade() -> None:
    # batch_alter_table: SQLite changes a table by rebuilding it; PostgreSQL alters it in place.
    op.create_table('manual_journals',
    sa.Column('ref', _identifier(200), nullable=False),
    sa.Column('business_date', sa.Date(), nullable=False),
    sa.Column('period', _identifier(7), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('prepared_by', sa.String(length=200), nullable=False),
    sa.Column('prepared_at', sa.DateTime(), nullable=False),
    sa.Column('approved_by', sa.String(length=200), nullable=True),
    sa.Column('approved_at', sa.DateTime(), nullable=True),
    sa.Column('rejected_by', sa.String(length=200), nullable=True),
    sa.Column('rejected_at', sa.DateTime(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('reversed_by', sa.String(length=200), nullable=True),
    sa.Column('reversed_at', sa.DateTime(), nullable=True),
    sa.Column('reverse_on', sa.Date(), nullable=True),
    sa.Column('reversal_ref', sa.String(length=200), nullable=True),
    sa.Column('reverses_ref', sa.String(length=200), nullable=True),
    sa.Column('entry_id', sa.String(length=255), nullable=True),
    sa.Column('source_file', sa.Text(), nullable=False),
    sa.Column('source_sha256', sa.String(length=64), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.CheckConstraint(f"status IN {_STATUSES}", name='ck_manual_journals_status'),
    sa.CheckConstraint("approved_by IS NULL OR approved_by <> prepared_by "
                       "OR reverses_ref IS NOT NULL", name='ck_manual_journals_maker_checker'),
    sa.PrimaryKeyConstraint('ref')
    )
    with op.batch_alter_table('manual_journals', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_manual_journals_business_date'), ['business_date'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_manual_journals_period'), ['period'], unique=False)

    op.create_table('manual_journal_lines',
    sa.Column('ref', _identifier(200), nullable=False),
    sa.Column('line_number', sa.Integer(), nullable=False),
    sa.Column('source_row', sa.Integer(), nullable=False),
    sa.Column('account', sa.String(length=255), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('deferred_change_minor', sa.BigInteger(), nullable=False),
    sa.Column('customer_id', sa.String(length=200), nullable=False),
    sa.Column('purchase_id', sa.String(length=200), nullable=True),
    sa.Column('memo', sa.Text(), nullable=False),
    sa.CheckConstraint('amount_minor <> 0', name='ck_manual_journal_lines_non_zero'),
    # Named as ledger/schema/columns.py's currency_check names it, literally (as the
    # baseline's tables are).
    sa.CheckConstraint('length(currency) = 3 AND upper(currency) = currency',
                       name='ck_%(table_name)s_currency'),
    sa.ForeignKeyConstraint(['ref'], ['manual_journals.ref'], ),
    sa.PrimaryKeyConstraint('ref', 'line_number')
    )
    with op.batch_alter_table('journal_entries', schema=None) as batch_op:
        batch_op.drop_constraint('ck_entries_kind', type_='check')
        batch_op.create_check_constraint('ck_entries_kind', f"kind IN {_KINDS_AFTER}")


def downgrade() -> None:
    with op.batch_alter_table('journal_entries', schema=None) as batch_op:
        batch_op.drop_constraint('ck_entries_kind', type_='check')
        batch_op.create_check_constraint('ck_entries_kind', f"kind IN {_KINDS_BEFORE}")
    op.drop_table('manual_journal_lines')
    with op.batch_alter_table('manual_journals', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_manual_journals_period'))
        batch_op.drop_index(batch_op.f('ix_manual_journals_business_date'))
    op.drop_table('manual_journals')
