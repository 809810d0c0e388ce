"""The nightly run: one business day's landing files in, one all-or-nothing batch out.

Order of work for day D: read every file (a bad file stops here, nothing posted) ->
validate, de-duplicate and quarantine rows -> post purchases as lots -> burn the day's
usage against the lots -> recognise usage revenue -> expire lots due by the end of D ->
check the journal balances -> archive the accepted events -> write everything in one
transaction. A day is posted once: running it again with the same files changes nothing
("unchanged"); with different files it is refused as a conflict, never overwritten.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from ledger.journal import JournalBatch, require_valid
from ledger.periods import BusinessDay, business_day
from ledger.store import BatchWrite, Store, batch_for_date, read_frame, read_in_chunks, write_batch
from rules.archive import archived_fingerprints, write_usage_partition
from rules.burn import burn, burn_order_ranks
from rules.documents import DOCUMENTS, ROW_NUMBER, InputFile, find_document_file, read_document
from rules.expiry import expire_lots
from rules.intake import PAYLOAD_COLUMNS, DocumentIntake, sort_valid_rows
from rules.policy import Policy
from rules.purchases import post_purchases
from rules.recognition import recognise_usage
from rules.validation import (
    fingerprint_from_hex,
    fingerprint_to_hex,
    payload_fingerprints,
    validate_purchases,
    validate_refunds,
    validate_usage,
)

INSTANT_DTYPE = "datetime64[us, UTC]"
BALANCE_COLUMNS = ["purchase_id", "customer_id", "credits_used_micro", "usage_value_minor",
                   "credits_expired_micro", "breakage_minor", "is_open", "last_batch_id"]


class BatchConflictError(RuntimeError):
    """The day was already posted from different files."""


class StrictModeRejectionError(RuntimeError):
    """--strict and at least one row was rejected: the whole batch is refused."""


@dataclass(frozen=True)
class DocumentSummary:
    document: str
    file_name: str
    rows_read: int
    accepted: int
    duplicates: int
    rejected: int


@dataclass(frozen=True)
class NightOutcome:
    business_date: date
    status: str  # posted | empty | unchanged
    batch_id: str
    entry_count: int
    documents: tuple[DocumentSummary, ...]
    uncovered_credits_micro: int


def batch_id_for(business_date: date) -> str:
    return f"nightly-{business_date.isoformat()}"


def run_night(
    store: Store,
    policy: Policy,
    landing_root: Path,
    archive_root: Path,
    business_date: date,
    strict: bool = False,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> NightOutcome:
    day = business_day(business_date, policy.reporting_timezone)
    input_files = _read_landing_day(Path(landing_root) / business_date.isoformat())
    fingerprint = _input_fingerprint(input_files)
    batch_id = batch_id_for(business_date)
    with store.engine.connect() as connection:
        existing = batch_for_date(connection, business_date)
    if existing:
        return _rerun_outcome(existing, fingerprint, business_date)
    started_at = clock()
    try:
        with store.transaction() as connection:
            intakes = _take_in(connection, input_files, day, policy, Path(archive_root))
            rejected = sum(len(intake.rejected) for intake in intakes.values())
            if strict and rejected:
                raise StrictModeRejectionError(_strict_message(intakes, rejected))
            write, uncovered_micro = _post_day(connection, intakes, day, policy, batch_id)
            recorded_at = _naive_utc(clock())
            write = replace(
                write,
                batch={
                    "batch_id": batch_id, "business_date": business_date,
                    "policy_version": policy.version, "input_fingerprint": fingerprint,
                    "status": "posted" if input_files else "empty",
                    "started_at": _naive_utc(started_at), "recorded_at": recorded_at,
                    "entry_count": len(write.journal),
                },
                entry_attributes={"batch_id": batch_id, "policy_version": policy.version,
                                  "recorded_at": recorded_at},
            )
            if "usage" in intakes:
                write_usage_partition(Path(archive_root), business_date,
                                      _archived_events(intakes["usage"]))
            write_batch(connection, write)
    except IntegrityError as error:
        raise BatchConflictError(
            f"business date {business_date} could not be posted: another run wrote it first "
            f"or a source id is already posted ({error.orig.__class__.__name__})"
        ) from None
    return NightOutcome(
        business_date, write.batch["status"], batch_id, len(write.journal),
        tuple(_summary(intake) for intake in intakes.values()), uncovered_micro,
    )


def _read_landing_day(day_directory: Path) -> dict[str, InputFile]:
    if not day_directory.is_dir():
        return {}
    files = {}
    for document in DOCUMENTS:
        path = find_document_file(day_directory, document)
        if path is not None:
            files[document] = read_document(document, path)
    return files


def _input_fingerprint(input_files: dict[str, InputFile]) -> str:
    listing = "\n".join(f"{document}:{input_files[document].sha256}"
                        for document in sorted(input_files))
    return hashlib.sha256(listing.encode()).hexdigest()


def _rerun_outcome(existing: dict, fingerprint: str, business_date: date) -> NightOutcome:
    if existing["input_fingerprint"] != fingerprint:
        raise BatchConflictError(
            f"business date {business_date} was already posted by batch {existing['batch_id']} "
            "from different landing files; a posted day is never re-posted. "
            "Land corrections in a later day's files."
        )
    return NightOutcome(business_date, "unchanged", existing["batch_id"], 0, (), 0)


def _take_in(connection: Connection, input_files: dict[str, InputFile], day: BusinessDay,
             policy: Policy, archive_root: Path) -> dict[str, DocumentIntake]:
    intakes = {}
    if "purchases" in input_files:
        input_file = input_files["purchases"]
        validated = validate_purchases(input_file.frame, day)
        fingerprints = payload_fingerprints(validated.accepted, PAYLOAD_COLUMNS["purchases"])
        earlier = read_in_chunks(
            connection,
            "SELECT purchase_id, payload_hash, business_date FROM lots WHERE purchase_id IN :ids",
            validated.accepted["purchase_id"],
            ["purchase_id", "payload_hash", "business_date"],
        )
        earlier["payload_hash"] = earlier["payload_hash"].map(fingerprint_from_hex)
        intakes["purchases"] = sort_valid_rows(input_file, validated, fingerprints, earlier)
    if "usage" in input_files:
        input_file = input_files["usage"]
        validated = validate_usage(input_file.frame, day, policy.late_window_days)
        fingerprints = payload_fingerprints(validated.accepted, PAYLOAD_COLUMNS["usage"])
        earlier = archived_fingerprints(archive_root, day.business_date, policy.late_window_days)
        earlier = earlier[earlier["event_id"].isin(validated.accepted["event_id"])]
        intake = sort_valid_rows(input_file, validated, fingerprints, earlier)
        accepted = intake.accepted.assign(source_file=input_file.file_name,
                                          source_row=intake.accepted[ROW_NUMBER])
        intakes["usage"] = DocumentIntake(**{**intake.__dict__, "accepted": accepted})
    if "refunds" in input_files:
        input_file = input_files["refunds"]
        validated = validate_refunds(input_file.frame, day)
        empty = pd.Series([], dtype="int64")
        intakes["refunds"] = sort_valid_rows(input_file, validated, empty,
                                             pd.DataFrame(columns=["refund_id", "payload_hash",
                                                                   "business_date"]))
    return intakes


def _open_lots(connection: Connection) -> pd.DataFrame:
    lots = read_frame(connection, """
        SELECT l.purchase_id, l.customer_id, l.purchased_at, l.expires_at, l.credits_micro,
               l.amount_minor, l.tax_minor, l.currency, l.kind, l.product, l.priority,
               b.credits_used_micro, b.usage_value_minor
        FROM lots l JOIN lot_balances b ON b.purchase_id = l.purchase_id
        WHERE b.is_open
    """)
    return _with_instant_types(lots).astype({"credits_micro": "int64", "amount_minor": "int64",
                        "credits_used_micro": "int64", "usage_value_minor": "int64"})


def _post_day(connection: Connection, intakes: dict[str, DocumentIntake], day: BusinessDay,
              policy: Policy, batch_id: str) -> tuple[BatchWrite, int]:
    accounts = policy.accounts
    empty_purchases = pd.DataFrame(columns=[*PAYLOAD_COLUMNS["purchases"], "purchase_id"])
    purchases = intakes["purchases"].accepted if "purchases" in intakes else empty_purchases
    purchases = purchases.assign(payload_hash=purchases.get("payload_hash", pd.Series(
        dtype="int64")).map(fingerprint_to_hex))
    posted = post_purchases(purchases, day, accounts)
    existing = _open_lots(connection)
    new_lots = posted.lots.assign(credits_used_micro=0, usage_value_minor=0)
    lots = pd.concat([existing, new_lots[existing.columns]], ignore_index=True)
    lots = _with_instant_types(lots).astype({"credits_used_micro": "int64",
                                             "usage_value_minor": "int64"})

    events = intakes["usage"].accepted if "usage" in intakes else _no_events()
    candidates = lots[lots["customer_id"].isin(events["customer_id"])].copy()
    candidates["credits_available_micro"] = (
        candidates["credits_micro"] - candidates["credits_used_micro"]
    )
    candidates["burn_rank"] = burn_order_ranks(candidates, policy.burn_order)
    burnt = burn(events, candidates, day)
    recognised = recognise_usage(burnt.slices, lots, day, accounts)
    expired = expire_lots(recognised.lots, day, accounts)

    after = recognised.lots.merge(expired.expiries.rename(columns={
        "credits_micro": "credits_expired_micro", "value_minor": "breakage_minor"}),
        on="purchase_id", how="left")
    after[["credits_expired_micro", "breakage_minor"]] = (
        after[["credits_expired_micro", "breakage_minor"]].fillna(0).astype("int64")
    )
    after["is_open"] = (after["credits_micro"] - after["credits_used_micro"]
                        - after["credits_expired_micro"]) > 0
    after["last_batch_id"] = batch_id
    is_new = after["purchase_id"].isin(new_lots["purchase_id"])
    changed = ~is_new & (
        after["purchase_id"].isin(recognised.slices["purchase_id"])
        | after["purchase_id"].isin(expired.expiries["purchase_id"])
    )
    journal = JournalBatch.concat([posted.journal, recognised.journal, expired.journal])
    require_valid(journal)
    on_day = {"business_date": day.business_date, "batch_id": batch_id}
    write = BatchWrite(
        batch={},
        batch_files=_batch_files(intakes, batch_id),
        quarantine=_quarantine(intakes, day, batch_id),
        lots=posted.lots.assign(**on_day),
        new_lot_balances=after.loc[is_new, BALANCE_COLUMNS],
        changed_lot_balances=after.loc[changed, BALANCE_COLUMNS],
        burn_slices=recognised.slices.assign(**on_day),
        lot_expiries=expired.expiries.assign(**on_day),
        usage_daily=_usage_daily(events, day).assign(batch_id=batch_id),
        uncovered_usage=burnt.uncovered.assign(**on_day),
        journal=journal,
    )
    return write, int(burnt.uncovered["credits_micro"].sum())


def _with_instant_types(lots: pd.DataFrame) -> pd.DataFrame:
    """Stored instants are naive UTC; compare them as UTC instants of one resolution."""
    typed = lots.copy()
    for column in ("purchased_at", "expires_at"):
        instants = pd.to_datetime(typed[column])
        if instants.dt.tz is None:
            instants = instants.dt.tz_localize("UTC")
        typed[column] = instants.dt.tz_convert("UTC").astype(INSTANT_DTYPE)
    return typed


def _no_events() -> pd.DataFrame:
    return pd.DataFrame({
        "event_id": pd.Series(dtype=object), "customer_id": pd.Series(dtype=object),
        "occurred_at": pd.Series(dtype=INSTANT_DTYPE), "meter": pd.Series(dtype=object),
        "credits_micro": pd.Series(dtype="int64"),
    })


def _usage_daily(events: pd.DataFrame, day: BusinessDay) -> pd.DataFrame:
    late = events["occurred_at"] < day.starts_at_utc
    grouped = events.assign(late=late.astype("int64")).groupby(
        ["customer_id", "meter"], as_index=False
    ).agg(event_count=("event_id", "size"), late_event_count=("late", "sum"),
          credits_micro=("credits_micro", "sum"))
    return grouped.assign(business_date=day.business_date)


def _batch_files(intakes: dict[str, DocumentIntake], batch_id: str) -> pd.DataFrame:
    rows = [{
        "batch_id": batch_id, "document": intake.document, "file_name": intake.file_name,
        "sha256": intake.sha256, "rows_read": intake.rows_read,
        "rows_accepted": len(intake.accepted), "rows_duplicate": intake.duplicate_count,
        "rows_rejected": len(intake.rejected), **intake.control_totals(),
    } for intake in intakes.values()]
    return pd.DataFrame(rows)


def _quarantine(intakes: dict[str, DocumentIntake], day: BusinessDay, batch_id: str):
    parts = [intake.rejected.rename(columns={ROW_NUMBER: "row_number"}).assign(
        document=intake.document, file_name=intake.file_name)
        for intake in intakes.values() if len(intake.rejected)]
    if not parts:
        return pd.DataFrame()
    return pd.concat(parts, ignore_index=True).assign(
        batch_id=batch_id, business_date=day.business_date)


def _archived_events(intake: DocumentIntake) -> pd.DataFrame:
    return intake.accepted.sort_values(["occurred_at", "event_id"]).reset_index(drop=True)


def _summary(intake: DocumentIntake) -> DocumentSummary:
    return DocumentSummary(intake.document, intake.file_name, intake.rows_read,
                           len(intake.accepted), intake.duplicate_count, len(intake.rejected))


def _strict_message(intakes: dict[str, DocumentIntake], rejected: int) -> str:
    first = next(intake for intake in intakes.values() if len(intake.rejected))
    row = first.rejected.iloc[0]
    return (f"--strict: {rejected} row(s) rejected, so nothing was posted; first: "
            f"{first.file_name} row {row[ROW_NUMBER]} column {row['column_name']}: {row['reason']}")


def _naive_utc(instant: datetime) -> datetime:
    return instant.astimezone(UTC).replace(tzinfo=None)
