"""The ingest stage: a landing day's files in, an open batch with every row accounted for.

Reads every file (a file that cannot be read stops here: nothing is written), validates
and de-duplicates rows, refuses the day under --strict if any row was rejected, then in
the caller's transaction: opens the batch, records each file's control totals, the
quarantined rows, the day's usage aggregates and cost lines, and archives the accepted rows for
the later stages. A usage file too large to hold is taken in chunk by chunk
(intake/usage_buckets.py), with the same outcome. A day already ingested from the same
files is left as it is; from different files it is a conflict.

What was seen before is decided from the ledger alone, in the batch's own transaction:
purchases, refunds, adjustments, costs and rates against their tables, usage against the
ids accepted inside the late window (`ledger/seen_ids.py`). The archive partitions a batch
writes are recorded with their SHA-256 (`ledger/archive_index.py`) and are evidence,
never state. Nights post in order: a day whose previous day has no published batch is
refused, so no night can take in events against a look-back that is not yet final.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import tempfile
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Connection, insert

from creditbooks.night.lots import lots_by_id
from creditbooks.night.posting import all_rates
from intake.archive import ArchiveError, PartitionWriter, no_fingerprints
from intake.classification import ID_COLUMN, PAYLOAD_COLUMNS, DocumentIntake, sort_valid_rows
from intake.documents import (
    ROW_NUMBER,
    InputFile,
    InputFileError,
    StreamedFile,
    document_files,
    open_document,
    read_document,
)
from intake.object_storage import download_landing_day, file_system, object_storage_url
from intake.sources import (
    SourceFile,
    SourceIntake,
    UsageSource,
    archive_source_file,
    in_source_terms,
    read_usage_source,
)
from intake.stripe import (
    PurchaseSource,
    in_stripe_terms,
    read_stripe_document,
    reads_stripe,
    with_original_lines,
)
from intake.usage_buckets import StagedUsage, take_in_streamed_usage, usage_totals
from intake.validation import (
    MAX_AMOUNT_MINOR,
    ValidatedRows,
    fingerprint_from_hex,
    fingerprint_to_hex,
    payload_fingerprints,
    validate_adjustments,
    validate_costs,
    validate_fx_rates,
    validate_purchases,
    validate_refunds,
    validate_usage,
)
from ledger import schema
from ledger.archive_index import ARCHIVED_DOCUMENTS, ledger_id, record_partition
from ledger.domain import BatchStatus, OverageMode, Stage
from ledger.locks import posting_period
from ledger.money import format_minor, minor_unit_exponent
from ledger.periods import BusinessDay, LateWindow
from ledger.policy_versions import keep_policy_version
from ledger.seen_ids import (
    forget_before_window,
    late_window,
    record_seen_usage,
    seen_usage_parts,
)
from ledger.store import batch_for_date, insert_frame, read_frame, read_in_chunks, record_stage
from rules.adjustments import judge_adjustments
from rules.fx import FxRateMissingError, is_period_end, missing_rate_message
from rules.lot_state import BALANCE_COLUMNS, typed_lots
from rules.policy import Policy
from rules.refunds import judge_refunds


class BatchConflictError(RuntimeError):
    """The day was already posted from different files, or by another run."""


class StrictModeRejectionError(RuntimeError):
    """--strict and at least one row was rejected: the whole batch is refused."""


class NightOrderError(RuntimeError):
    """The previous business day has no published batch: nights post in order."""


# Seen-id columns read back from a usage partition, a row group at a time.
_SEEN_COLUMNS = ["event_id", "payload_hash", "occurred_at"]


@dataclass(frozen=True)
class LandingDay:
    """The files of one landing day, read and fingerprinted (no database involved)."""

    business_date: date
    files: dict[str, InputFile | StreamedFile]

    @property
    def fingerprint(self) -> str:
        listing = "\n".join(f"{document}:{self.files[document].sha256}"
                            for document in sorted(self.files))
        return hashlib.sha256(listing.encode()).hexdigest()


def read_landing_day(landing_root: Path, business_date: date,
                     chunk_rows: int | None = None,
                     usage_source: UsageSource | None = None,
                     purchase_source: PurchaseSource | None = None) -> LandingDay:
    """The day's files, read; a usage file of more than `chunk_rows` rows is only
    fingerprinted now, and read that many rows at a time when taken in
    (intake/usage_buckets.py). None reads every file whole, whatever its size.
    `usage_source` (the policy's [sources.usage]) maps a metering system's events onto
    the usage contract (intake/sources.py); such a file is always read whole.
    `purchase_source` ([sources.purchases]) reads purchases and refunds as Stripe exports
    mapped onto the contract (intake/stripe.py)."""
    url = object_storage_url(landing_root)
    if url is not None:  # read from a local copy of the day, byte for byte
        landing_root = download_landing_day(url, business_date) or url
    if not Path(landing_root).is_dir():
        raise InputFileError(f"landing {landing_root} is not a directory: check --landing "
                             "(a night with no day directory is empty; one with no landing is "
                             "a mistake)")
    directory = Path(landing_root) / business_date.isoformat()
    files = {}
    if directory.is_dir():
        for document, path in document_files(directory).items():
            if purchase_source and reads_stripe(purchase_source, document):
                files[document] = read_stripe_document(document, path, purchase_source.stripe)
            elif document == "usage" and usage_source and not usage_source.is_contract:
                files[document] = read_usage_source(path, usage_source)
            elif document == "usage" and chunk_rows is not None:
                files[document] = open_document(document, path, chunk_rows)
            else:
                files[document] = read_document(document, path)
    return LandingDay(business_date, files)


def require_same_files(existing: dict, landing: LandingDay) -> None:
    if existing["input_fingerprint"] != landing.fingerprint:
        raise BatchConflictError(
            f"business date {landing.business_date} was already posted by batch "
            f"{existing['batch_id']} from different landing files; a posted day is never "
            "re-posted. Land corrections in a later day's files."
        )


def ingest(connection: Connection, landing: LandingDay, day: BusinessDay, policy: Policy,
           archive_root: Path, batch_id: str, strict: bool,
           recorded_at, actor: str | None = None) -> BatchStatus | None:
    """Open the batch for the day, recording who ran it (`actor`, resolved by
    `creditbooks.actors`) and keeping the policy's text if this version is new to the
    ledger; returns None. A day that already has a batch is the night's one batch check:
    from the same landing files it is left as it is and its status returned (a run again
    finishes or finds it published), from different files it is refused as a conflict."""
    existing = batch_for_date(connection, day.business_date)
    if existing:
        require_same_files(existing, landing)
        return BatchStatus(existing["status"])
    require_previous_night_published(connection, day.business_date)
    archive_root = writable_archive(Path(archive_root))
    # Chunked intake spills here, on the archive's file system so its partition moves in whole
    # (on object storage: on local disk, and the partition is put as one object).
    on_disk = None if object_storage_url(archive_root) else archive_root
    with tempfile.TemporaryDirectory(dir=on_disk, prefix=_staging_prefix()) as staging:
        _ingest(connection, landing, day, policy, archive_root, batch_id, strict,
                recorded_at, Path(staging), actor)
    return None


def require_previous_night_published(connection: Connection, business_date: date) -> None:
    """Refuse a night whose previous day has no published batch (the first may be any day)."""
    if read_frame(connection, "SELECT COUNT(*) AS n FROM batches")["n"].iloc[0] == 0:
        return
    previous = business_date - timedelta(days=1)
    batch = batch_for_date(connection, previous)
    if batch is None:
        first_night = read_frame(connection, "SELECT MIN(business_date) AS first FROM batches"
                                 )["first"].iloc[0]
        if str(business_date) < str(first_night)[:10]:
            raise NightOrderError(
                f"business date {business_date} is before the ledger's first night "
                f"{str(first_night)[:10]}: nights post in order from the first, never before "
                "it (a period's close counts its days from the first night)")
        raise NightOrderError(
            f"business date {business_date} cannot post yet: the night before it, {previous}, "
            f"has no nightly batch; run the night of {previous} first (nights post in order)")
    if batch["status"] == BatchStatus.OPEN:
        raise NightOrderError(
            f"business date {business_date} cannot post before {previous} is published: its "
            f"batch {batch['batch_id']} is still open; finish that night first")


def writable_archive(archive_root: Path) -> Path:
    """The archive root, created if need be, once a night can write there."""
    url = object_storage_url(archive_root)
    if url is not None:
        return _writable_object_storage(archive_root, url)
    try:
        archive_root.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=archive_root, prefix=".probe-")
        probe.close()
    except OSError as error:
        raise ArchiveError(f"archive {archive_root} cannot be written ({error.strerror}): "
                           "give the nightly run write access or another --archive") from None
    _remove_abandoned_staging(archive_root)
    return archive_root


def _writable_object_storage(archive_root: Path, url: str) -> Path:
    """An archive on object storage, once an object can be put there (and removed)."""
    storage, root = file_system(url)
    probe = f"{root}/.probe-{socket.gethostname()}-{os.getpid()}"
    try:
        storage.pipe_file(probe, b"")
        storage.rm_file(probe)
    except (OSError, ValueError) as error:
        raise ArchiveError(f"archive {url} cannot be written ({error}): give the nightly run "
                           "write access or another --archive") from None
    return archive_root


def _staging_prefix() -> str:
    return f".intake-{socket.gethostname()}-{os.getpid()}-"


def _remove_abandoned_staging(archive_root: Path) -> None:
    """Staging directories of runs on this host whose process is gone (a killed night)."""
    host = socket.gethostname()
    for directory in archive_root.glob(f".intake-{host}-*-*"):
        process = directory.name.removeprefix(f".intake-{host}-").split("-", 1)[0]
        if process.isdigit() and not _process_alive(int(process)):
            shutil.rmtree(directory, ignore_errors=True)


def _process_alive(process_id: int) -> bool:
    try:
        os.kill(process_id, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def _ingest(connection: Connection, landing: LandingDay, day: BusinessDay, policy: Policy,
            archive_root: Path, batch_id: str, strict: bool, recorded_at,
            staging: Path, actor: str | None) -> list[DocumentIntake | StagedUsage]:
    window = late_window(connection, day, policy.late_window_days)
    intakes = _take_in(connection, landing.files, day, policy, window, staging)
    rejected = sum(len(intake.rejected) for intake in intakes)
    if strict and rejected:
        raise StrictModeRejectionError(_strict_message(intakes, rejected))
    known_rates = _known_rates(connection, intakes)
    _require_rates(connection, intakes, day, policy, known_rates)
    _require_functional_within_bound(intakes, policy, known_rates)
    # The batch row claims the date first: a concurrent run of the same date waits on its
    # unique key here and fails, before it can write the day's archive partitions.
    connection.execute(insert(schema.Batch.__table__), [{
        "batch_id": batch_id, "business_date": day.business_date, "status": BatchStatus.OPEN,
        "posting_period": posting_period(connection, day.period),
        "policy_version": policy.version, "input_fingerprint": landing.fingerprint,
        "started_at": recorded_at, "recorded_at": recorded_at, "entry_count": 0,
        "actor": actor,
    }])
    keep_policy_version(connection, policy.version, policy.text, actor or "",
                        f"night {day.business_date.isoformat()}", recorded_at)
    _archive(connection, intakes, day, window, archive_root, batch_id)
    insert_frame(connection, schema.BatchFile, _batch_files(intakes, batch_id))
    insert_frame(connection, schema.QuarantinedRow, _quarantine(intakes, day, batch_id))
    rates = _accepted(intakes, "fx_rates")
    if rates is not None:
        insert_frame(connection, schema.FxRate, rates.drop(columns=ROW_NUMBER).assign(
            payload_hash=rates["payload_hash"].map(fingerprint_to_hex), batch_id=batch_id,
            business_date=day.business_date))
    costs = _accepted(intakes, "costs")
    if costs is not None:
        insert_frame(connection, schema.CostLine, costs.drop(columns=ROW_NUMBER).assign(
            payload_hash=costs["payload_hash"].map(fingerprint_to_hex), batch_id=batch_id,
            business_date=day.business_date))
    usage = next((intake for intake in intakes if intake.document == "usage"), None)
    if usage is not None:
        totals = (usage.daily_totals if isinstance(usage, StagedUsage)
                  else usage_totals(usage.accepted, day))
        insert_frame(connection, schema.UsageDaily,
                     totals.assign(business_date=day.business_date, batch_id=batch_id))
    record_stage(connection, batch_id, Stage.INGEST, recorded_at)
    return intakes


def _archive(connection: Connection, intakes: list[DocumentIntake | StagedUsage],
             day: BusinessDay, window: LateWindow, archive_root: Path, batch_id: str) -> None:
    """Write and record the day's partitions, and the usage ids the ledger has now seen."""
    forget_before_window(connection, window)
    writer = PartitionWriter(archive_root, batch_id, ledger_id(connection), day.business_date)
    writer.remove_leftovers(ARCHIVED_DOCUMENTS)
    for intake in intakes:
        if isinstance(intake, StagedUsage):
            partition = writer.place(intake.staged_archive, "usage", intake.accepted_count)
        elif intake.document in ARCHIVED_DOCUMENTS:
            partition = writer.write(intake.document, intake.accepted)
        else:
            continue
        record_partition(connection, partition)
        if isinstance(intake, SourceIntake):  # the metering system's file, byte for byte
            record_partition(connection, archive_source_file(writer, intake))
        if intake.document == "usage":
            parquet = pq.ParquetFile(writer.readable_path(partition))
            record_seen_usage(connection, batch_id, day.business_date, (
                parquet.read_row_group(group, columns=_SEEN_COLUMNS)
                for group in range(parquet.num_row_groups)))


def _accepted(intakes: list[DocumentIntake], document: str) -> pd.DataFrame | None:
    return next((intake.accepted for intake in intakes if intake.document == document), None)


def _known_rates(connection: Connection,
                 intakes: list[DocumentIntake]) -> dict[tuple[date, str], str]:
    """Every rate the night can use: the books' and today's accepted ones, by (date, currency)."""
    rates = all_rates(connection)
    today = _accepted(intakes, "fx_rates")
    if today is not None:
        rates |= dict(zip(zip(today["rate_date"], today["currency"], strict=True),
                          today["rate_to_functional"], strict=True))
    return rates


def _require_rates(connection: Connection, intakes: list[DocumentIntake], day: BusinessDay,
                   policy: Policy, known_rates: dict[tuple[date, str], str]) -> None:
    """Refuse the night before anything is written if a posting will lack a rate.

    Foreign purchases need the rate of their purchase date; foreign costs, and overage
    billed in arrears, that of the day; the last night of a month remeasures foreign cash
    at that day's rate.
    """
    functional = policy.functional_currency
    have = set(known_rates)
    needed: set[tuple[date, str]] = set()
    purchases = _accepted(intakes, "purchases")
    if purchases is not None and len(purchases):
        purchased_on = pd.to_datetime(purchases["purchased_at"], utc=True).dt.tz_convert(
            policy.reporting_timezone).dt.date
        needed |= set(zip(purchased_on, purchases["currency"], strict=True))
    costs = _accepted(intakes, "costs")
    if costs is not None:
        needed |= {(day.business_date, currency) for currency in costs["currency"]}
    in_arrears = (policy.overage == OverageMode.ARREARS
                  or OverageMode.ARREARS in policy.overage_customers.values())
    if is_period_end(day) or in_arrears:
        held = read_frame(connection, "SELECT DISTINCT currency FROM lots")["currency"]
        today = set() if purchases is None else set(purchases["currency"])
        needed |= {(day.business_date, currency) for currency in set(held) | today}
    missing = sorted(key for key in needed if key[1] != functional and key not in have)
    if missing:
        raise FxRateMissingError(missing_rate_message(missing, functional)
                                 + _rejected_rate_note(intakes, set(missing)))


def _require_functional_within_bound(intakes: list[DocumentIntake], policy: Policy,
                                     rates: dict[tuple[date, str], str]) -> None:
    """Refuse a purchase whose amount with tax, at its rate, is past what a row may carry.

    A foreign purchase posts its functional amount as well: held to the same bound as an
    amount (MAX_AMOUNT_MINOR), so that no functional line, and no sum of a day's lines, can
    wrap where a transaction amount cannot.
    """
    purchases = next((intake for intake in intakes if intake.document == "purchases"), None)
    if purchases is None or not len(purchases.accepted):
        return
    functional = policy.functional_currency
    accepted = purchases.accepted
    purchased_on = pd.to_datetime(accepted["purchased_at"], utc=True).dt.tz_convert(
        policy.reporting_timezone).dt.date
    rate_text = pd.Series([rates.get(key) for key in zip(purchased_on, accepted["currency"],
                                                         strict=True)], index=accepted.index)
    foreign = (accepted["currency"] != functional) & rate_text.notna()
    shift = accepted["currency"].map(lambda currency: 10.0 ** (
        minor_unit_exponent(functional) - minor_unit_exponent(currency)))
    total_minor = accepted["amount_minor"].astype("int64") + accepted["tax_minor"].astype("int64")
    # A float finds the rows near the bound (one per currency and rate, not per row, is
    # exact); each of those is then judged exactly.
    near = foreign & (total_minor * rate_text.where(foreign, 0).astype(float) * shift
                      > MAX_AMOUNT_MINOR / 2)
    for position in accepted.index[near]:
        row, rate = accepted.loc[position], rate_text[position]
        currency = row["currency"]
        converted = (Decimal(int(total_minor[position])) * Decimal(str(rate))).scaleb(
            minor_unit_exponent(functional) - minor_unit_exponent(currency))
        if abs(converted) > MAX_AMOUNT_MINOR:
            raise InputFileError(
                f"{purchases.file_name} row {int(row[ROW_NUMBER])} column amount: "
                f"{format_minor(int(total_minor[position]), currency)} {currency} with tax at "
                f"rate {rate} is {converted.scaleb(-minor_unit_exponent(functional)):,.2f} "
                f"{functional}, past the largest amount a row may carry "
                f"({format_minor(MAX_AMOUNT_MINOR, functional)} {functional}); nothing was "
                "posted")


def _rejected_rate_note(intakes: list[DocumentIntake], missing: set[tuple[date, str]]) -> str:
    """Where today's file gave a missing rate that was rejected (a rate of 0), and why."""
    rates = next((intake for intake in intakes if intake.document == "fx_rates"), None)
    for row in ([] if rates is None else rates.rejected.to_dict("records")):
        written = json.loads(row["raw_row"])
        try:
            key = (date.fromisoformat(written.get("date", "")), written.get("currency", ""))
        except ValueError:
            continue
        if key in missing:
            return (f"; {rates.file_name} row {row[ROW_NUMBER]} gave {key[1]} on {key[0]} but "
                    f"was rejected ({row['reason']})")
    return ""


def _take_in(connection: Connection, files: dict[str, InputFile | StreamedFile],
             day: BusinessDay, policy: Policy, window: LateWindow,
             staging: Path) -> list[DocumentIntake | StagedUsage]:
    intakes = []
    if "fx_rates" in files:
        validated = validate_fx_rates(files["fx_rates"].frame, day, policy.functional_currency)
        intakes.append(_against_table(connection, files["fx_rates"], validated, "fx_rates"))
    if "purchases" in files:
        validated = in_stripe_terms(files["purchases"],
                                    validate_purchases(files["purchases"].frame, day))
        intakes.append(_with_source(with_original_lines(
            _against_table(connection, files["purchases"], validated, "lots"), files["purchases"])))
    if "usage" in files and isinstance(files["usage"], StreamedFile):
        intakes.append(take_in_streamed_usage(files["usage"], day, window,
                                              seen_usage_parts(connection, window), staging))
    elif "usage" in files:
        input_file = files["usage"]
        validated = validate_usage(input_file.frame, day, window)
        fingerprints = payload_fingerprints(validated.accepted, PAYLOAD_COLUMNS["usage"])
        ids = pa.array(validated.accepted["event_id"].astype(str), type=pa.string())
        earlier = list(seen_usage_parts(connection, window, among=ids))
        earlier = pd.concat(earlier, ignore_index=True) if earlier else no_fingerprints("usage")
        intake = _with_source(sort_valid_rows(input_file, validated, fingerprints, earlier))
        if isinstance(input_file, SourceFile):  # rejected rows named by the source's fields
            intake = in_source_terms(intake, input_file)
        intakes.append(intake)
    if "costs" in files:
        validated = validate_costs(files["costs"].frame, day)
        intakes.append(_against_table(connection, files["costs"], validated, "costs"))
    purchases = _accepted(intakes, "purchases")
    for document, validate, judge, table in (
            ("refunds", validate_refunds, judge_refunds, "refunds"),
            ("adjustments", validate_adjustments, judge_adjustments, "lot_adjustments")):
        if document in files:
            validated = validate(files[document].frame, day)
            validated = _judged_against_lots(connection, document, table, validated, purchases,
                                             judge)
            validated = in_stripe_terms(files[document], validated)  # Stripe refunds' field names
            intakes.append(with_original_lines(
                _against_table(connection, files[document], validated, table), files[document]))
    return intakes


def _judged_against_lots(connection: Connection, document: str, table: str,
                         validated: ValidatedRows, purchases_today: pd.DataFrame | None,
                         judge) -> ValidatedRows:
    """Rows the lots allow stay accepted (with what `judge` adds); the others are rejected.

    Lots are as the previous night left them, plus today's purchases. An id posted before
    is left for de-duplication (re-sent, it is a duplicate, not a second change); a
    repeated id in the file shares its first row's fate.
    """
    rows = validated.accepted
    id_column = ID_COLUMN[document]
    posted = read_in_chunks(connection, f"SELECT {id_column} FROM {table} "
                            f"WHERE {id_column} IN :ids", rows[id_column], [id_column])[id_column]
    judged_here = ~rows[id_column].isin(posted) & ~rows[id_column].duplicated()
    lots = lots_by_id(connection, rows["purchase_id"])
    if purchases_today is not None and len(purchases_today):
        bought = purchases_today.assign(**{column: 0 for column in BALANCE_COLUMNS}, is_open=True)
        lots = pd.concat([lots, typed_lots(bought)], ignore_index=True)
    judged, problems = judge(rows[judged_here], lots)
    refused_ids = rows.loc[problems["index"], id_column].to_numpy()
    refused = rows[id_column].isin(refused_ids) & ~rows[id_column].isin(posted)
    by_id = judged.drop_duplicates(id_column).set_index(id_column)
    accepted = rows[~refused].copy()
    for column in by_id.columns.difference(rows.columns):
        accepted[column] = by_id[column].reindex(accepted[id_column]).set_axis(accepted.index)
    column_of = pd.Series(problems["column_name"].to_numpy(), index=refused_ids)
    reason_of = pd.Series((problems["column_name"] + ": " + problems["reason"]).to_numpy(),
                          index=refused_ids)
    rejected = pd.DataFrame({
        ROW_NUMBER: rows.loc[refused, ROW_NUMBER].to_numpy(),
        "column_name": rows.loc[refused, id_column].map(column_of).to_numpy(),
        "reason": rows.loc[refused, id_column].map(reason_of).to_numpy(),
    })
    return ValidatedRows(accepted=accepted.reset_index(drop=True),
                         rejected=pd.concat([validated.rejected, rejected], ignore_index=True))


def _against_table(connection: Connection, input_file: InputFile, validated,
                   table: str) -> DocumentIntake:
    """Duplicates and conflicts judged against the rows an earlier batch stored in `table`."""
    id_column = ID_COLUMN[input_file.document]
    fingerprints = payload_fingerprints(validated.accepted, PAYLOAD_COLUMNS[input_file.document])
    earlier = read_in_chunks(
        connection,
        f"SELECT {id_column}, payload_hash, business_date FROM {table} WHERE {id_column} IN :ids",
        validated.accepted[id_column], [id_column, "payload_hash", "business_date"],
    )
    earlier["payload_hash"] = earlier["payload_hash"].map(fingerprint_from_hex)
    return sort_valid_rows(input_file, validated, fingerprints, earlier)


def _with_source(intake: DocumentIntake) -> DocumentIntake:
    accepted = intake.accepted.assign(source_file=intake.file_name,
                                      source_row=intake.accepted[ROW_NUMBER])
    return replace(intake, accepted=accepted)


def _batch_files(intakes: list[DocumentIntake], batch_id: str) -> pd.DataFrame:
    return pd.DataFrame([{
        "batch_id": batch_id, "document": intake.document, "file_name": intake.file_name,
        "sha256": intake.sha256, "rows_read": intake.rows_read,
        "rows_accepted": intake.accepted_count, "rows_duplicate": intake.duplicate_count,
        "rows_rejected": len(intake.rejected), **intake.control_totals(),
    } for intake in intakes])


def _quarantine(intakes: list[DocumentIntake], day: BusinessDay, batch_id: str) -> pd.DataFrame:
    parts = [intake.rejected.rename(columns={ROW_NUMBER: "row_number"}).assign(
        document=intake.document, file_name=intake.file_name)
        for intake in intakes if len(intake.rejected)]
    if not parts:
        return pd.DataFrame()
    return pd.concat(parts, ignore_index=True).assign(batch_id=batch_id,
                                                       business_date=day.business_date)


def _strict_message(intakes: list[DocumentIntake], rejected: int) -> str:
    first = next(intake for intake in intakes if len(intake.rejected))
    row = first.rejected.iloc[0]
    return (f"--strict: {rejected} row(s) rejected, so nothing was posted; first: "
            f"{first.file_name} row {row[ROW_NUMBER]} column {row['column_name']}: {row['reason']}")

