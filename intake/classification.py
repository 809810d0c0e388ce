"""Intake: one landing file in, accepted rows and a full account of every other row out.

For each document: read (file-level errors stop the batch), validate rows, then sort
the valid ones into accepted, duplicate (same id and same content as a row accepted in
this file or earlier) and conflict (same id, different content: rejected, never
overwritten). `rows_read = accepted + duplicates + rejected` is asserted, and the
control totals (accepted credits, accepted amount per currency) are kept per file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pandas as pd

from intake.documents import ROW_NUMBER, InputFile
from intake.validation import ValidatedRows, exact_sums_by, require_summable_credits
from ledger.domain import QuarantineKind
from ledger.money import format_minor

PAYLOAD_COLUMNS = {
    "purchases": ["customer_id", "purchased_at", "expires_at", "credits_micro", "amount_minor",
                  "tax_minor", "currency", "kind", "product", "priority", "country"],
    "usage": ["customer_id", "occurred_at", "meter", "credits_micro", "quantity_micro"],
    "costs": ["cost_date", "meter", "amount_minor", "currency", "cost_type", "vendor", "memo"],
    "refunds": ["purchase_id", "refunded_at", "credits_micro", "amount_scaled"],
    "adjustments": ["purchase_id", "adjusted_at", "action", "new_expires_at", "reason"],
    "fx_rates": ["rate_to_functional"],
}
RAW_VALUE_MAX_CHARACTERS = 1000
ID_COLUMN = {"purchases": "purchase_id", "usage": "event_id", "costs": "cost_id",
             "refunds": "refund_id", "adjustments": "adjustment_id", "fx_rates": "rate_id"}
# An id made of columns of the file: what a conflict names instead of the made-up column.
ID_WRITTEN_AS = {"fx_rates": "date, currency"}


@dataclass(frozen=True)
class DocumentIntake:
    document: str
    file_name: str
    sha256: str
    rows_read: int
    accepted: pd.DataFrame
    duplicate_count: int
    rejected: pd.DataFrame  # ROW_NUMBER, kind (rejected | conflict), column_name, reason, raw_row

    def control_totals(self) -> dict:
        amounts: dict[str, str] = {}
        if "amount_minor" in self.accepted:
            # Python integers: an int64 sum could wrap without a word.
            by_currency = exact_sums_by(self.accepted["amount_minor"], self.accepted["currency"])
            amounts = {currency: format_minor(int(total), currency)
                       for currency, total in sorted(by_currency.items())}
        credits = int(self.accepted["credits_micro"].sum()) if "credits_micro" in self.accepted else 0
        return {"credits_accepted_micro": credits,
                "amounts_accepted_json": json.dumps(amounts, sort_keys=True)}

    @property
    def accepted_count(self) -> int:
        return len(self.accepted)


@dataclass(frozen=True)
class ClassifiedRows:
    """Valid rows sorted by id: the accepted, how many were duplicates, and the conflicts."""

    accepted: pd.DataFrame
    duplicate_count: int
    conflicts: pd.DataFrame  # ROW_NUMBER, kind, column_name, reason


def sort_valid_rows(
    input_file: InputFile, validated: ValidatedRows, fingerprints: pd.Series,
    previously_accepted: pd.DataFrame,
) -> DocumentIntake:
    """Split validated rows into accepted, duplicates and conflicts.

    previously_accepted: id column, payload_hash, business_date of rows accepted by
    earlier batches that share an id with this file.
    """
    id_column = ID_COLUMN[input_file.document]
    classified = classify_valid_rows(
        validated.accepted.assign(payload_hash=fingerprints.to_numpy()),
        id_column, previously_accepted)
    conflicts = classified.conflicts
    if input_file.document in ID_WRITTEN_AS:
        written = ID_WRITTEN_AS[input_file.document]
        conflicts = conflicts.assign(column_name=written, reason=conflicts["reason"].str.replace(
            id_column, written, regex=False))
    if {"customer_id", "credits_micro"} <= set(classified.accepted.columns):
        require_summable_credits(input_file.file_name, classified.accepted["customer_id"],
                                 classified.accepted["credits_micro"])
    rejected = pd.concat([validated.rejected.assign(kind=QuarantineKind.REJECTED.value), conflicts],
                         ignore_index=True)
    rejected = rejected.sort_values(ROW_NUMBER).reset_index(drop=True)
    rejected["raw_row"] = raw_rows(input_file.frame, rejected[ROW_NUMBER])
    return counted_intake(DocumentIntake(
        document=input_file.document,
        file_name=input_file.file_name,
        sha256=input_file.sha256,
        rows_read=len(input_file.frame),
        accepted=classified.accepted,
        duplicate_count=classified.duplicate_count,
        rejected=rejected,
    ))


def classify_valid_rows(valid: pd.DataFrame, id_column: str,
                        previously_accepted: pd.DataFrame) -> ClassifiedRows:
    """The first row of an id is accepted; a later copy is a duplicate, a different one a conflict.

    Every row of an id must be in `valid` (in row order), and every earlier row of it in
    `previously_accepted`: then any subset of ids closed under that gives the same answer.
    """
    ids = valid[id_column]
    # Only an id that repeats can conflict within the file, and only an id seen before can
    # conflict with an earlier batch: the costly comparisons run on those rows alone.
    later_copies = ids.duplicated()
    repeats = ids.isin(ids[later_copies]) if later_copies.any() else later_copies
    in_file_conflict = pd.Series(False, index=valid.index)
    if repeats.any():
        repeated = valid[repeats]
        variants = repeated.groupby(id_column)["payload_hash"].transform("nunique")
        in_file_conflict.loc[repeated.index] = (variants > 1).to_numpy()
    conflict_reasons = pd.Series("", index=valid.index, dtype=object)
    conflict_reasons[in_file_conflict] = (
        f"{id_column} appears more than once in this file with different contents"
    )
    earlier = previously_accepted.drop_duplicates(id_column).set_index(id_column)
    seen_before = ids.isin(earlier.index) if len(earlier) else pd.Series(False, index=valid.index)
    same_before = pd.Series(False, index=valid.index)
    differs_before = pd.Series(False, index=valid.index)
    if seen_before.any():
        seen = valid[seen_before]
        same = (seen[id_column].map(earlier["payload_hash"]) == seen["payload_hash"]).to_numpy()
        same_before.loc[seen.index] = same
        differs_before.loc[seen.index] = ~same & ~in_file_conflict[seen.index].to_numpy()
        earlier_date = seen[id_column].map(earlier["business_date"]).astype(str)
        conflict_reasons[differs_before] = (
            f"conflict: {id_column} was accepted on " + earlier_date[differs_before[seen.index]]
            + " with different contents; not overwritten"
        )
    conflicts = conflict_reasons != ""
    repeated_in_file = later_copies & ~conflicts
    duplicates = (same_before & ~conflicts) | repeated_in_file
    conflict_rows = pd.DataFrame({
        ROW_NUMBER: valid.loc[conflicts, ROW_NUMBER].to_numpy(),
        "kind": QuarantineKind.CONFLICT.value,
        "column_name": id_column,
        "reason": conflict_reasons[conflicts].to_numpy(),
    })
    return ClassifiedRows(valid[~conflicts & ~duplicates].reset_index(drop=True),
                          int(duplicates.sum()), conflict_rows)


def raw_rows(frame: pd.DataFrame, row_numbers: pd.Series) -> list[str]:
    """The rows as read (JSON objects of their text, long values cut), in the given order."""
    raw = frame.set_index(ROW_NUMBER)
    return [json.dumps({column: _bounded(value) for column, value in raw.loc[row].items()},
                       ensure_ascii=False)
            for row in row_numbers]


def counted_intake(intake):
    """The intake, once every row read is accounted for as accepted, duplicate or rejected."""
    counted = intake.accepted_count + intake.duplicate_count + len(intake.rejected)
    if counted != intake.rows_read:
        raise AssertionError(
            f"{intake.file_name}: rows read {intake.rows_read} != accepted + duplicates + "
            f"rejected ({counted})"
        )
    return intake


def _bounded(value) -> str:
    """A raw value as quarantined: long ones cut, saying how long they were."""
    text = str(value)
    if len(text) <= RAW_VALUE_MAX_CHARACTERS:
        return text
    return f"{text[:RAW_VALUE_MAX_CHARACTERS]}... ({len(text)} characters)"
