"""The ledger's tables, by family, and THE one list of them (`ALL_TABLES`).

Families: `batches` (a night's batch, stages, files, quarantine, archive partitions, the
usage ids it accepted, the ledger's identity), `subledger` (lots, their balances and what
left them, usage, costs, rates, overage), `journal` (entries, lines, the journal and record
chains) and `close` (period events). Column helpers and each table's `Retention` are in
`columns`.

Constraints say what must always be true (non-zero journal lines, three-letter currencies,
rows read = accepted + duplicates + rejected, one nightly batch per business date, every
kind and status one of its enumeration's values in `ledger/domain.py`) so the database
refuses what the code should never send.

`ALL_TABLES` is built from the families in creation order; the guards (`ledger/guards.py`
reads each table's retention), the upgrade, the crash tests and the docs use it, and
`tests/test_schema.py` holds it equal to the metadata Alembic compares against.
`from ledger.schema import Lot` and `schema.Lot` keep working: every table is re-exported.
"""

from __future__ import annotations

from ledger.schema import batches, close, exports, journal, manual, subledger
from ledger.schema.batches import (
    ArchivedPartition,
    Batch,
    BatchFile,
    BatchStage,
    LedgerIdentity,
    QuarantinedRow,
    SeenUsageIds,
    UsageIdMemory,
)
from ledger.schema.close import PeriodEvent, PolicyVersion
from ledger.schema.columns import Retention
from ledger.schema.exports import ExportedJournalId
from ledger.schema.journal import JournalEntryRecord, JournalLineRecord, JournalSeal, RecordSeal
from ledger.schema.manual import ManualJournal, ManualJournalLine
from ledger.schema.subledger import (
    BreakageAccrual,
    BurnSlice,
    CostLine,
    FxRate,
    Lot,
    LotAdjustment,
    LotBalance,
    LotExpiry,
    OverageCharge,
    OverageSettlement,
    RefundRecord,
    UncoveredUsage,
    UsageDaily,
)

# Batches first (every other family's rows name their batch), then what hangs off lots.
ALL_TABLES = [*batches.TABLES, *subledger.TABLES, *journal.TABLES, *close.TABLES,
              *manual.TABLES, *exports.TABLES]


def table_names(retention: Retention) -> tuple[str, ...]:
    """The names of the tables with this retention, in creation order."""
    return tuple(table.__tablename__ for table in ALL_TABLES if table.retention is retention)


__all__ = [
    "ALL_TABLES",
    "ArchivedPartition",
    "Batch",
    "BatchFile",
    "BatchStage",
    "BreakageAccrual",
    "BurnSlice",
    "CostLine",
    "ExportedJournalId",
    "FxRate",
    "JournalEntryRecord",
    "JournalLineRecord",
    "JournalSeal",
    "LedgerIdentity",
    "Lot",
    "LotAdjustment",
    "LotBalance",
    "LotExpiry",
    "ManualJournal",
    "ManualJournalLine",
    "OverageCharge",
    "OverageSettlement",
    "PeriodEvent",
    "PolicyVersion",
    "QuarantinedRow",
    "RecordSeal",
    "RefundRecord",
    "Retention",
    "SeenUsageIds",
    "UncoveredUsage",
    "UsageDaily",
    "UsageIdMemory",
    "table_names",
]
