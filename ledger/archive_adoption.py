"""Adopting an archive written before the ledger recorded its partitions (v0.1.0).

Until the ledger recorded the archive partitions its batches wrote, and the usage ids it
accepted, a night wrote `ARCHIVE/<document>/business_date=D/rows.parquet` and later nights
read those files to find duplicates. Upgrading such a ledger adopts that archive in the
upgrade's own transaction: each partition a batch's files imply is found, hashed and
recorded (`archive_partitions`), and the usage ids of every adopted usage partition go
into the look-back (`seen_usage_ids`; later nights drop those outside their window). A
partition that should be there and is not stops the upgrade, naming it: without it the
next nights would not see earlier events and would accept re-sent ones again. So does a
partition whose rows are not the rows its batch accepted (`batch_files`: their count, and
the credits and amounts they sum to): adopting it would record, and then seal, an altered
partition as the batch's.

The archive may be on object storage (`upgrade --archive s3://bucket/archive`): the
pending partitions are then downloaded first, into a temporary directory of the process
laid out as the archive is, and adopted from there exactly as from disk (a missing one is
named by its URL before anything is recorded).
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
from sqlalchemy import Connection, text

from ledger.archive_index import (
    RecordedPartition,
    batch_control_totals,
    batch_row_counts,
    file_sha256,
    record_partition,
    row_count_differs,
    totals_differ,
)
from ledger.schema_version import LedgerSchemaError
from ledger.seen_ids import SEEN_COLUMNS, record_seen_usage
from ledger.storage_urls import file_system, object_storage_url

# Where v0.1.0 put the archived documents' partitions.
V0_1_0_PARTITION = "{document}/business_date={day}/rows.parquet"


class ArchiveAdoptionError(LedgerSchemaError):
    """The archive the ledger's nights wrote is not given, or a partition is missing."""


@dataclass(frozen=True)
class PendingPartition:
    """A partition a batch's files imply, which the ledger does not record yet."""

    batch_id: str
    business_date: date
    document: str

    @property
    def relative_path(self) -> str:
        return V0_1_0_PARTITION.format(document=self.document, day=self.business_date.isoformat())


def partitions_to_adopt(connection: Connection) -> list[PendingPartition]:
    """Every archived document of a batch with no recorded partition, in date order."""
    rows = connection.execute(text("""
        SELECT b.batch_id, b.business_date, f.document FROM batch_files f
        JOIN batches b ON b.batch_id = f.batch_id
        WHERE f.document IN ('usage', 'purchases', 'refunds', 'adjustments')
          AND NOT EXISTS (SELECT 1 FROM archive_partitions p
                          WHERE p.batch_id = f.batch_id AND p.document = f.document)
        ORDER BY b.business_date, f.document""")).all()
    return [PendingPartition(row.batch_id, _as_date(row.business_date), row.document)
            for row in rows]


def adopt_archive(connection: Connection, archive_root: Path | None) -> int:
    """Record every pending partition found in `archive_root`; returns how many."""
    pending = partitions_to_adopt(connection)
    if not pending:
        return 0
    if archive_root is None:
        raise ArchiveAdoptionError(
            f"the ledger's nights archived {len(pending)} partitions that it does not record "
            "yet: run creditbooks upgrade --archive DIR with the archive they were posted with; "
            "nothing was changed")
    archive_root = _local_archive(archive_root, pending)  # on object storage: downloaded
    batch_counts, batch_totals = batch_row_counts(connection), batch_control_totals(connection)
    for partition in pending:
        path = Path(archive_root) / partition.relative_path
        where = f"archive partition {path} (batch {partition.batch_id}, {partition.document})"
        if not path.is_file():
            raise ArchiveAdoptionError(f"{where} is missing: give the archive the ledger was "
                                       "posted with; nothing was changed")
        parquet = pq.ParquetFile(path)
        found = RecordedPartition(partition.batch_id, partition.document,
                                  partition.business_date, partition.relative_path,
                                  file_sha256(path), parquet.metadata.num_rows)
        differs = (row_count_differs(where, found, found.row_count, batch_counts)
                   or totals_differ(where, found, path, batch_totals))
        if differs:
            raise ArchiveAdoptionError(f"{differs}; give the archive the ledger was posted "
                                       "with; nothing was changed")
        record_partition(connection, found)
        if partition.document == "usage":
            record_seen_usage(connection, partition.batch_id, partition.business_date, (
                parquet.read_row_group(group, columns=SEEN_COLUMNS)
                for group in range(parquet.num_row_groups)))
    return len(pending)


def _local_archive(archive_root: Path, pending: list[PendingPartition]) -> Path:
    """`archive_root` itself on disk; on object storage, a temporary directory (removed when
    the process exits) holding a copy of each pending partition under its relative path."""
    url = object_storage_url(archive_root)
    if url is None:
        return Path(archive_root)
    storage, root = file_system(url)
    storage.invalidate_cache()
    local_root = Path(tempfile.mkdtemp(prefix="creditbooks-adoption-"))
    atexit.register(shutil.rmtree, local_root, ignore_errors=True)
    for partition in pending:
        copy = local_root / partition.relative_path
        copy.parent.mkdir(parents=True, exist_ok=True)
        try:
            storage.get_file(f"{root}/{partition.relative_path}", str(copy))
        except FileNotFoundError:
            raise ArchiveAdoptionError(
                f"archive partition {url}/{partition.relative_path} (batch "
                f"{partition.batch_id}, {partition.document}) is missing: give the archive "
                "the ledger was posted with; nothing was changed") from None
    return local_root


def _as_date(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
