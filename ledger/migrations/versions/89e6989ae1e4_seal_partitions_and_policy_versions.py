"""the record chain seals archive partitions and policy versions

Revision ID: 89e6989ae1e4
Revises: 5c81e0a7d3f9
Create Date: 2026-11-29 17:00:00.000000

What changed in ledger/schema/, and why (issue 26): `archive_partitions` (each archive
partition's name, SHA-256 and row count) and `policy_versions` (each policy version's full
text) were outside both chains, so a partition file rewritten together with its recorded
SHA-256, or a policy version removed or put back, passed `creditbooks verify`. The record
chain now seals them (ledger/record_chain.py): a batch's partitions at its publish, right
after the batch, and a policy version when it is first kept. `record_seals.record_kind`
takes the two new kinds, 'partition' and 'policy_version' (ck_record_seals_kind widened;
ledger/domain.py RecordKind).

What the upgrade does to existing rows: this migration seals nothing. `creditbooks
upgrade` (ledger/upgrade.py) seals the partitions of every published batch (business-date
and document order) and every kept policy version (in the order first used) after all the
migrations, and after adopting a v0.1.0 archive: a v0.1.0 ledger records its partitions
only then. The journal chain and every existing record seal stay as they are; the record
chain grows by those seals.
"""

from collections.abc import Sequence

from alembic import op
from sqlalchemy import text

revision: str = '89e6989ae1e4'
down_revision: str | None = '5c81e0a7d3f9'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As this revision has them (written out, not imported: a migration stays as written).
_KINDS_BEFORE = "('batch', 'period_event')"
_KINDS_AFTER = "('batch', 'period_event', 'partition', 'policy_version')"


def upgrade() -> None:
    # batch_alter_table: SQLite changes a CHECK by rebuilding the table (which drops its
    # append-only triggers; the upgrade installs them again from ledger/guards.py).
    with op.batch_alter_table('record_seals', schema=None) as batch_op:
        batch_op.drop_constraint('ck_record_seals_kind', type_='check')
        batch_op.create_check_constraint('ck_record_seals_kind', f"record_kind IN {_KINDS_AFTER}")


def downgrade() -> None:
    sealed = op.get_bind().execute(text(
        "SELECT COUNT(*) FROM record_seals WHERE record_kind IN ('partition', 'policy_version')"
    )).scalar()
    if sealed:
        # Imported here: a migration module is loaded by Alembic, not as part of a package.
        from ledger.schema_version import LedgerSchemaError

        raise LedgerSchemaError(
            f"the record chain holds {sealed} seals of archive partitions and policy versions, "
            "which the revision before 89e6989ae1e4 cannot hold, and record seals are never "
            "removed; nothing was changed")
    with op.batch_alter_table('record_seals', schema=None) as batch_op:
        batch_op.drop_constraint('ck_record_seals_kind', type_='check')
        batch_op.create_check_constraint('ck_record_seals_kind', f"record_kind IN {_KINDS_BEFORE}")
