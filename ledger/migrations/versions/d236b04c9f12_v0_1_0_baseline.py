"""The baseline: the schema of v0.1.0, as its `init` created it, on SQLite and PostgreSQL.

Revision ID: d236b04c9f12
Revises:
Create Date: 2026-05-20

Written from the v0.1.0 models (tag v0.1.0) and frozen here: later schema changes are new
migrations after this one, never edits to it. The CHECK constraints named
"ck_%(table_name)s_currency" are named so, literally, in v0.1.0 ledgers; the baseline keeps
their name. The PostgreSQL guards (triggers, and the two foreign keys they replace) are
not migrations: `creditbooks upgrade` and `init` install them from ledger/guards.py.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d236b04c9f12"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _identifier(length: int) -> sa.types.TypeEngine:
    """v0.1.0's journal text: compared byte by byte (collation "C") on PostgreSQL."""
    return sa.String(length=length).with_variant(sa.String(length=length, collation="C"),
                                                 "postgresql")


def _currency_check() -> sa.CheckConstraint:
    return sa.CheckConstraint("length(currency) = 3 AND upper(currency) = currency",
                              name="ck_%(table_name)s_currency")


def upgrade() -> None:
    op.create_table('batches',
    sa.Column('batch_id', sa.String(length=64), nullable=False),
    sa.Column('business_date', sa.Date(), nullable=False),
    sa.Column('posting_period', sa.String(length=7), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('policy_version', sa.String(length=64), nullable=False),
    sa.Column('input_fingerprint', sa.String(length=64), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('recorded_at', sa.DateTime(), nullable=False),
    sa.Column('entry_count', sa.Integer(), nullable=False),
    sa.CheckConstraint("status IN ('open', 'posted', 'empty')", name='ck_batches_status'),
    sa.PrimaryKeyConstraint('batch_id')
    )
    op.create_index(op.f('ix_batches_business_date'), 'batches', ['business_date'], unique=True)
    op.create_index(op.f('ix_batches_posting_period'), 'batches', ['posting_period'], unique=False)

    op.create_table('period_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('period', sa.String(length=7), nullable=False),
    sa.Column('action', sa.String(length=8), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('accepted_exceptions', sa.Boolean(), nullable=False),
    sa.Column('journal_digest', sa.String(length=64), nullable=False),
    sa.Column('recorded_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("action = 'close' OR length(reason) > 0", name='ck_period_events_reason'),
    sa.CheckConstraint("action IN ('close', 'reopen')", name='ck_period_events_action'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_period_events_period'), 'period_events', ['period'], unique=False)

    op.create_table('batch_files',
    sa.Column('batch_id', sa.String(length=64), nullable=False),
    sa.Column('document', sa.String(length=32), nullable=False),
    sa.Column('file_name', sa.String(length=255), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('rows_read', sa.BigInteger(), nullable=False),
    sa.Column('rows_accepted', sa.BigInteger(), nullable=False),
    sa.Column('rows_duplicate', sa.BigInteger(), nullable=False),
    sa.Column('rows_rejected', sa.BigInteger(), nullable=False),
    sa.Column('credits_accepted_micro', sa.BigInteger(), nullable=False),
    sa.Column('amounts_accepted_json', sa.Text(), nullable=False),
    sa.CheckConstraint('rows_accepted >= 0 AND rows_duplicate >= 0 AND rows_rejected >= 0',
                       name='ck_batch_files_rows_non_negative'),
    sa.CheckConstraint('rows_read = rows_accepted + rows_duplicate + rows_rejected',
                       name='ck_batch_files_rows_accounted'),
    sa.ForeignKeyConstraint(['batch_id'], ['batches.batch_id'], ),
    sa.PrimaryKeyConstraint('batch_id', 'document')
    )
    op.create_table('batch_stages',
    sa.Column('batch_id', sa.String(length=64), nullable=False),
    sa.Column('stage', sa.String(length=16), nullable=False),
    sa.Column('shard', sa.Integer(), nullable=False),
    sa.Column('shard_count', sa.Integer(), nullable=False),
    sa.Column('recorded_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("stage IN ('ingest', 'purchases', 'burn', 'expire', 'controls', 'publish')",
                       name='ck_batch_stages_stage'),
    sa.CheckConstraint('shard >= 0 AND shard < shard_count', name='ck_batch_stages_shard'),
    sa.ForeignKeyConstraint(['batch_id'], ['batches.batch_id'], ),
    sa.PrimaryKeyConstraint('batch_id', 'stage', 'shard')
    )
    op.create_table('costs',
    sa.Column('cost_id', sa.String(length=200), nullable=False),
    sa.Column('cost_date', sa.Date(), nullable=False),
    sa.Column('meter', sa.String(length=200), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('cost_type', sa.String(length=8), nullable=False),
    sa.Column('vendor', sa.String(length=200), nullable=False),
    sa.Column('memo', sa.Text(), nullable=False),
    sa.Column('payload_hash', sa.String(length=32), nullable=False),
    sa.Column('batch_id', sa.String(length=64), nullable=False),
    sa.Column('business_date', sa.Date(), nullable=False),
    sa.CheckConstraint("cost_type IN ('variable', 'fixed')", name='ck_costs_type'),
    sa.CheckConstraint('amount_minor >= 0', name='ck_costs_amount_non_negative'),
    _currency_check(),
    sa.ForeignKeyConstraint(['batch_id'], ['batches.batch_id'], ),
    sa.PrimaryKeyConstraint('cost_id')
    )
    op.create_index(op.f('ix_costs_cost_date'), 'costs', ['cost_date'], unique=False)

    op.create_table('fx_rates',
    sa.Column('rate_id', sa.String(length=16), nullable=False),
    sa.Column('rate_date', sa.Date(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('rate_to_functional', sa.String(length=32), nullable=False),
    sa.Column('payload_hash', sa.String(length=32), nullable=False),
    sa.Column('batch_id', sa.String(length=64), nullable=False),
    sa.Column('business_date', sa.Date(), nullable=False),
    _currency_check(),
    sa.ForeignKeyConstraint(['batch_id'], ['batches.batch_id'], ),
    sa.PrimaryKeyConstraint('rate_id')
    )
    op.create_index(op.f('ix_fx_rates_rate_date'), 'fx_rates', ['rate_date'], unique=False)

    op.create_table('journal_entries',
    sa.Column('entry_id', _identifier(255), nullable=False),
    sa.Column('kind', _identifier(16), nullable=False),
    sa.Column('business_date', sa.Date(), nullable=False),
    sa.Column('period', _identifier(7), nullable=False),
    sa.Column('customer_id', _identifier(200), nullable=False),
    sa.Column('source_ref', _identifier(255), nullable=False),
    sa.Column('batch_id', _identifier(64), nullable=False),
    sa.Column('policy_version', _identifier(64), nullable=False),
    sa.Column('recorded_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("kind IN ('purchase', 'usage', 'breakage', 'cost', 'refund', 'escheat', "
                       "'overage', 'fx')", name='ck_entries_kind'),
    sa.ForeignKeyConstraint(['batch_id'], ['batches.batch_id'], ),
    sa.PrimaryKeyConstraint('entry_id')
    )
    op.create_index(op.f('ix_journal_entries_batch_id'), 'journal_entries', ['batch_id'], unique=False)
    op.create_index(op.f('ix_journal_entries_business_date'), 'journal_entries',
                    ['business_date'], unique=False)
    op.create_index(op.f('ix_journal_entries_customer_id'), 'journal_entries', ['customer_id'], unique=False)
    op.create_index('ix_journal_entries_period_kind', 'journal_entries', ['period', 'kind'], unique=False)

    op.create_table('lots',
    sa.Column('purchase_id', sa.String(length=200), nullable=False),
    sa.Column('customer_id', sa.String(length=200), nullable=False),
    sa.Column('purchased_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=True),
    sa.Column('credits_micro', sa.BigInteger(), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('tax_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('product', sa.String(length=200), nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('country', sa.String(length=2), nullable=False),
    sa.Column('rate_to_functional', sa.String(length=32), nullable=False),
    sa.Column('payload_hash', sa.String(length=32), nullable=False),
    sa.Column('batch_id', sa.String(length=64), nullable=False),
    sa.Column('business_date', sa.Date(), nullable=False),
    sa.CheckConstraint("kind = 'paid' OR (amount_minor = 0 AND tax_minor = 0)",
                       name='ck_lots_promotional_free'),
    sa.CheckConstraint("kind IN ('paid', 'promotional')", name='ck_lots_kind'),
    sa.CheckConstraint('amount_minor >= 0 AND tax_minor >= 0', name='ck_lots_money_non_negative'),
    sa.CheckConstraint('credits_micro > 0', name='ck_lots_credits_positive'),
    sa.CheckConstraint('expires_at IS NULL OR expires_at > purchased_at',
                       name='ck_lots_expiry_after_purchase'),
    _currency_check(),
    sa.ForeignKeyConstraint(['batch_id'], ['batches.batch_id'], ),
    sa.PrimaryKeyConstraint('purchase_id')
    )
    op.create_index(op.f('ix_lots_customer_id'), 'lots', ['customer_id'], unique=False)

    op.create_table('overage_charges',
    sa.Column('business_date', sa.Date(), nullable=False),
    sa.Column('customer_id', sa.String(length=200), nullable=False),
    sa.Column('meter', sa.String(length=200), nullable=False),
    sa.Column('credits_micro', sa.BigInteger(), nullable=False),
    sa.Column('price_per_credit', sa.String(length=32), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('batch_id', sa.String(length=64), nullable=False),
    sa.CheckConstraint('credits_micro > 0 AND amount_minor >= 0', name='ck_overage_charges_sign'),
    _currency_check(),
    sa.ForeignKeyConstraint(['batch_id'], ['batches.batch_id'], ),
    sa.PrimaryKeyConstraint('business_date', 'customer_id', 'meter')
    )
    op.create_table('quarantine',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('batch_id', sa.String(length=64), nullable=False),
    sa.Column('business_date', sa.Date(), nullable=False),
    sa.Column('document', sa.String(length=32), nullable=False),
    sa.Column('file_name', sa.String(length=255), nullable=False),
    sa.Column('row_number', sa.BigInteger(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('column_name', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('raw_row', sa.Text(), nullable=False),
    sa.CheckConstraint("kind IN ('rejected', 'conflict')", name='ck_quarantine_kind'),
    sa.ForeignKeyConstraint(['batch_id'], ['batches.batch_id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_quarantine_batch_id'), 'quarantine', ['batch_id'], unique=False)
    op.create_index(op.f('ix_quarantine_business_date'), 'quarantine', ['business_date'], unique=False)

    op.create_table('uncovered_usage',
    sa.Column('business_date', sa.Date(), nullable=False),
    sa.Column('customer_id', sa.String(length=200), nullable=False),
    sa.Column('meter', sa.String(length=200), nullable=False),
    sa.Column('credits_micro', sa.BigInteger(), nullable=False),
    sa.Column('event_count', sa.BigInteger(), nullable=False),
    sa.Column('treatment', sa.String(length=16), nullable=False),
    sa.Column('batch_id', sa.String(length=64), nullable=False),
    sa.CheckConstraint("treatment IN ('exception', 'arrears', 'negative_balance')",
                       name='ck_uncovered_usage_treatment'),
    sa.CheckConstraint('credits_micro > 0', name='ck_uncovered_usage_credits_positive'),
    sa.ForeignKeyConstraint(['batch_id'], ['batches.batch_id'], ),
    sa.PrimaryKeyConstraint('business_date', 'customer_id', 'meter')
    )
    op.create_table('usage_daily',
    sa.Column('business_date', sa.Date(), nullable=False),
    sa.Column('customer_id', sa.String(length=200), nullable=False),
    sa.Column('meter', sa.String(length=200), nullable=False),
    sa.Column('event_count', sa.BigInteger(), nullable=False),
    sa.Column('late_event_count', sa.BigInteger(), nullable=False),
    sa.Column('credits_micro', sa.BigInteger(), nullable=False),
    sa.Column('batch_id', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['batch_id'], ['batches.batch_id'], ),
    sa.PrimaryKeyConstraint('business_date', 'customer_id', 'meter')
    )
    op.create_table('breakage_accruals',
    sa.Column('purchase_id', sa.String(length=200), nullable=False),
    sa.Column('business_date', sa.Date(), nullable=False),
    sa.Column('rate', sa.String(length=32), nullable=False),
    sa.Column('credits_used_micro', sa.BigInteger(), nullable=False),
    sa.Column('breakage_to_date_minor', sa.BigInteger(), nullable=False),
    sa.Column('change_minor', sa.BigInteger(), nullable=False),
    sa.Column('policy_version', sa.String(length=64), nullable=False),
    sa.Column('batch_id', sa.String(length=64), nullable=False),
    sa.CheckConstraint('breakage_to_date_minor >= 0', name='ck_breakage_accruals_to_date'),
    sa.CheckConstraint('change_minor <> 0', name='ck_breakage_accruals_change'),
    sa.ForeignKeyConstraint(['batch_id'], ['batches.batch_id'], ),
    sa.ForeignKeyConstraint(['purchase_id'], ['lots.purchase_id'], ),
    sa.PrimaryKeyConstraint('purchase_id', 'business_date')
    )
    op.create_table('burn_slices',
    sa.Column('business_date', sa.Date(), nullable=False),
    sa.Column('customer_id', sa.String(length=200), nullable=False),
    sa.Column('purchase_id', sa.String(length=200), nullable=False),
    sa.Column('meter', sa.String(length=200), nullable=False),
    sa.Column('credits_micro', sa.BigInteger(), nullable=False),
    sa.Column('value_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('batch_id', sa.String(length=64), nullable=False),
    sa.CheckConstraint('credits_micro > 0', name='ck_burn_slices_credits_positive'),
    _currency_check(),
    sa.CheckConstraint('value_minor >= 0', name='ck_burn_slices_value_non_negative'),
    sa.ForeignKeyConstraint(['batch_id'], ['batches.batch_id'], ),
    sa.ForeignKeyConstraint(['purchase_id'], ['lots.purchase_id'], ),
    sa.PrimaryKeyConstraint('business_date', 'customer_id', 'purchase_id', 'meter')
    )
    op.create_table('journal_lines',
    sa.Column('entry_id', _identifier(255), nullable=False),
    sa.Column('line_number', sa.Integer(), nullable=False),
    sa.Column('account', _identifier(255), nullable=False),
    sa.Column('currency', _identifier(3), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('functional_minor', sa.BigInteger(), nullable=False),
    sa.Column('meter', _identifier(200), nullable=True),
    sa.Column('purchase_id', _identifier(200), nullable=True),
    sa.CheckConstraint('amount_minor <> 0 OR functional_minor <> 0', name='ck_journal_lines_non_zero'),
    _currency_check(),
    sa.ForeignKeyConstraint(['entry_id'], ['journal_entries.entry_id'], ),
    sa.PrimaryKeyConstraint('entry_id', 'line_number')
    )
    op.create_index('ix_journal_lines_account_currency', 'journal_lines',
                    ['account', 'currency'], unique=False)

    op.create_table('journal_seals',
    sa.Column('sequence', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('entry_id', sa.String(length=255), nullable=False),
    sa.Column('batch_id', sa.String(length=64), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('chain_hash', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['batch_id'], ['batches.batch_id'], ),
    sa.ForeignKeyConstraint(['entry_id'], ['journal_entries.entry_id'], ),
    sa.PrimaryKeyConstraint('sequence'),
    sa.UniqueConstraint('entry_id')
    )
    op.create_index(op.f('ix_journal_seals_batch_id'), 'journal_seals', ['batch_id'], unique=False)

    op.create_table('lot_adjustments',
    sa.Column('adjustment_id', sa.String(length=200), nullable=False),
    sa.Column('purchase_id', sa.String(length=200), nullable=False),
    sa.Column('customer_id', sa.String(length=200), nullable=False),
    sa.Column('adjusted_at', sa.DateTime(), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('previous_expires_at', sa.DateTime(), nullable=True),
    sa.Column('new_expires_at', sa.DateTime(), nullable=True),
    sa.Column('credits_voided_micro', sa.BigInteger(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('payload_hash', sa.String(length=32), nullable=False),
    sa.Column('batch_id', sa.String(length=64), nullable=False),
    sa.Column('business_date', sa.Date(), nullable=False),
    sa.CheckConstraint("action = 'void' OR new_expires_at IS NOT NULL",
                       name='ck_lot_adjustments_rollover_expiry'),
    sa.CheckConstraint("action IN ('rollover', 'void')", name='ck_lot_adjustments_action'),
    sa.CheckConstraint('credits_voided_micro >= 0', name='ck_lot_adjustments_credits'),
    sa.ForeignKeyConstraint(['batch_id'], ['batches.batch_id'], ),
    sa.ForeignKeyConstraint(['purchase_id'], ['lots.purchase_id'], ),
    sa.PrimaryKeyConstraint('adjustment_id')
    )
    op.create_index(op.f('ix_lot_adjustments_purchase_id'), 'lot_adjustments', ['purchase_id'], unique=False)

    op.create_table('lot_balances',
    sa.Column('purchase_id', sa.String(length=200), nullable=False),
    sa.Column('customer_id', sa.String(length=200), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=True),
    sa.Column('credits_used_micro', sa.BigInteger(), nullable=False),
    sa.Column('usage_value_minor', sa.BigInteger(), nullable=False),
    sa.Column('credits_expired_micro', sa.BigInteger(), nullable=False),
    sa.Column('breakage_minor', sa.BigInteger(), nullable=False),
    sa.Column('credits_refunded_micro', sa.BigInteger(), nullable=False),
    sa.Column('refunded_value_minor', sa.BigInteger(), nullable=False),
    sa.Column('refunded_tax_minor', sa.BigInteger(), nullable=False),
    sa.Column('escheat_minor', sa.BigInteger(), nullable=False),
    sa.Column('credits_voided_micro', sa.BigInteger(), nullable=False),
    sa.Column('is_open', sa.Boolean(), nullable=False),
    sa.Column('last_batch_id', sa.String(length=64), nullable=False),
    sa.CheckConstraint(
        'credits_used_micro >= 0 AND credits_expired_micro >= 0 AND '
        'credits_refunded_micro >= 0 AND usage_value_minor >= 0 AND breakage_minor >= 0 AND '
        'refunded_value_minor >= 0 AND refunded_tax_minor >= 0 AND escheat_minor >= 0 AND '
        'credits_voided_micro >= 0',
        name='ck_lot_balances_non_negative'),
    sa.ForeignKeyConstraint(['purchase_id'], ['lots.purchase_id'], ),
    sa.PrimaryKeyConstraint('purchase_id')
    )
    op.create_index(op.f('ix_lot_balances_customer_id'), 'lot_balances', ['customer_id'], unique=False)
    op.create_index(op.f('ix_lot_balances_is_open'), 'lot_balances', ['is_open'], unique=False)

    op.create_table('lot_expiries',
    sa.Column('purchase_id', sa.String(length=200), nullable=False),
    sa.Column('business_date', sa.Date(), nullable=False),
    sa.Column('credits_micro', sa.BigInteger(), nullable=False),
    sa.Column('value_minor', sa.BigInteger(), nullable=False),
    sa.Column('destination', sa.String(length=16), nullable=False),
    sa.Column('batch_id', sa.String(length=64), nullable=False),
    sa.CheckConstraint("destination IN ('breakage', 'escheat')", name='ck_lot_expiries_destination'),
    sa.CheckConstraint('credits_micro >= 0 AND value_minor >= 0', name='ck_lot_expiries_sign'),
    sa.ForeignKeyConstraint(['batch_id'], ['batches.batch_id'], ),
    sa.ForeignKeyConstraint(['purchase_id'], ['lots.purchase_id'], ),
    sa.PrimaryKeyConstraint('purchase_id')
    )
    op.create_index(op.f('ix_lot_expiries_business_date'), 'lot_expiries', ['business_date'], unique=False)

    op.create_table('overage_settlements',
    sa.Column('business_date', sa.Date(), nullable=False),
    sa.Column('customer_id', sa.String(length=200), nullable=False),
    sa.Column('purchase_id', sa.String(length=200), nullable=False),
    sa.Column('meter', sa.String(length=200), nullable=False),
    sa.Column('credits_micro', sa.BigInteger(), nullable=False),
    sa.Column('value_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('batch_id', sa.String(length=64), nullable=False),
    sa.CheckConstraint('credits_micro > 0 AND value_minor >= 0', name='ck_overage_settlements_sign'),
    _currency_check(),
    sa.ForeignKeyConstraint(['batch_id'], ['batches.batch_id'], ),
    sa.ForeignKeyConstraint(['purchase_id'], ['lots.purchase_id'], ),
    sa.PrimaryKeyConstraint('business_date', 'customer_id', 'purchase_id', 'meter')
    )
    op.create_table('refunds',
    sa.Column('refund_id', sa.String(length=200), nullable=False),
    sa.Column('purchase_id', sa.String(length=200), nullable=False),
    sa.Column('customer_id', sa.String(length=200), nullable=False),
    sa.Column('refunded_at', sa.DateTime(), nullable=False),
    sa.Column('credits_micro', sa.BigInteger(), nullable=False),
    sa.Column('value_minor', sa.BigInteger(), nullable=False),
    sa.Column('tax_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('payload_hash', sa.String(length=32), nullable=False),
    sa.Column('batch_id', sa.String(length=64), nullable=False),
    sa.Column('business_date', sa.Date(), nullable=False),
    sa.CheckConstraint('credits_micro > 0', name='ck_refunds_credits_positive'),
    _currency_check(),
    sa.CheckConstraint('value_minor >= 0 AND tax_minor >= 0', name='ck_refunds_money_sign'),
    sa.ForeignKeyConstraint(['batch_id'], ['batches.batch_id'], ),
    sa.ForeignKeyConstraint(['purchase_id'], ['lots.purchase_id'], ),
    sa.PrimaryKeyConstraint('refund_id')
    )
    op.create_index(op.f('ix_refunds_customer_id'), 'refunds', ['customer_id'], unique=False)
    op.create_index(op.f('ix_refunds_purchase_id'), 'refunds', ['purchase_id'], unique=False)

    # ### end Alembic commands ###


def downgrade() -> None:
    """Refused by design: below v0.1.0 there is no ledger, and dropping every table would
    destroy the books. Going back is restoring the backup `creditbooks upgrade` made."""
    from ledger.schema_version import LedgerSchemaError

    raise LedgerSchemaError("a ledger is never taken below its v0.1.0 baseline (that would drop "
                            "the books); restore the backup creditbooks upgrade made instead")
