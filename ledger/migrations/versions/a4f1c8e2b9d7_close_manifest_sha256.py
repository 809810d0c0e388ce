"""a close records the SHA-256 of its package's manifest

Revision ID: a4f1c8e2b9d7
Revises: 89e6989ae1e4
Create Date: 2026-11-29 17:50:00.000000

What changed in ledger/schema/, and why (issue 19 review): a close's period event recorded
the journal digest but nothing of the package it wrote, so a package whose figures were
moved between customers, months or exceptions passed `verify-package --ledger` once its
manifest's file hashes were recomputed. A close now records the SHA-256 of its
`manifest.json` (`period_events.manifest_sha256`), sealed with the event on the record
chain; the manifest lists every file's SHA-256, so every file of the package is held.

What the upgrade does to existing rows: nothing. Events from before it stay empty (a
manifest that was never hashed cannot be hashed now without trusting it) and keep their
seals: the column is hashed only when set. The verifiers report them as not recorded.
(SQLite: an ADD COLUMN, no rebuild; the append-only triggers stay.)
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'a4f1c8e2b9d7'
down_revision: str | None = '89e6989ae1e4'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('period_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('manifest_sha256', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('period_events', schema=None) as batch_op:
        batch_op.drop_column('manifest_sha256')
