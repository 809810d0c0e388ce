"""Manual journals as the ledger stores them: drafts written, read back, and moved through
their statuses (`ManualJournalStatus`), each change naming who and when.

Nothing here decides whether a journal is right (rules/manual_journals.py) or posts it
(creditbooks/journals.py); this is the storage of `manual_journals` and their lines.
"""

from __future__ import annotations

from datetime import date, datetime

import pandas as pd
from sqlalchemy import Connection, bindparam, insert, text, update

from ledger import schema
from ledger.domain import ManualJournalStatus
from ledger.store import insert_frame, read_frame

_JOURNAL_COLUMNS = ("ref, business_date, period, status, prepared_by, prepared_at, approved_by, "
                    "approved_at, rejected_by, rejected_at, reason, reversed_by, reversed_at, "
                    "reverse_on, reversal_ref, reverses_ref, entry_id, source_file, "
                    "source_sha256, content_hash")
_LINE_COLUMNS = ("ref, line_number, source_row, account, currency, amount_minor, "
                 "deferred_change_minor, customer_id, purchase_id, memo")


def stored_content_hashes(connection: Connection, refs: list[str]) -> dict[str, str]:
    """ref -> content hash of the journals already stored among `refs`."""
    if not refs:
        return {}
    statement = text("SELECT ref, content_hash FROM manual_journals WHERE ref IN :refs"
                     ).bindparams(bindparam("refs", expanding=True))
    return dict(connection.execute(statement, {"refs": sorted(refs)}).fetchall())


def store_drafts(connection: Connection, journals: pd.DataFrame, lines: pd.DataFrame,
                 prepared_by: str, prepared_at: datetime, source_file: str,
                 source_sha256: str) -> None:
    """Write journals as drafts with their lines (the caller has checked them)."""
    if not len(journals):
        return
    records = journals.assign(status=ManualJournalStatus.DRAFT.value, prepared_by=prepared_by,
                              prepared_at=prepared_at, reason="", source_file=source_file,
                              source_sha256=source_sha256)
    records["reverse_on"] = records["reverse_on"].astype(object).where(
        records["reverse_on"].notna(), None)
    connection.execute(insert(schema.ManualJournal.__table__), [
        {key: (None if value is pd.NaT else value) for key, value in record.items()}
        for record in records.to_dict("records")])
    insert_frame(connection, schema.ManualJournalLine,
                 lines.drop(columns=["functional_minor"]))


def journal_record(connection: Connection, ref: str) -> dict | None:
    row = connection.execute(text(f"SELECT {_JOURNAL_COLUMNS} FROM manual_journals "
                                  "WHERE ref = :ref"), {"ref": ref}).mappings().first()
    return dict(row) if row else None


def journal_lines(connection: Connection, ref: str) -> pd.DataFrame:
    lines = read_frame(connection, f"SELECT {_LINE_COLUMNS} FROM manual_journal_lines "
                       "WHERE ref = :ref ORDER BY line_number", ref=ref)
    return lines.astype({"amount_minor": "int64", "deferred_change_minor": "int64"})


def record_lot_consumption(connection: Connection, ref: str, consumed: pd.DataFrame) -> None:
    """Set, on lines of the journal that change their lot, what the lot had consumed when
    the journal posted (consumed: line_number, lot_consumed_micro, lot_consumed_value_minor)."""
    if not len(consumed):
        return
    connection.execute(text("""
        UPDATE manual_journal_lines SET lot_consumed_micro = :lot_consumed_micro,
               lot_consumed_value_minor = :lot_consumed_value_minor
        WHERE ref = :ref AND line_number = :line_number"""), [
        {"ref": ref, **{key: int(value) for key, value in row.items()}}
        for row in consumed.to_dict("records")])


def set_status(connection: Connection, ref: str, status: ManualJournalStatus,
               expected: ManualJournalStatus, **changes) -> bool:
    """Move a journal from `expected` to `status` with the changes given; False when it
    was not in `expected` (someone else decided first)."""
    table = schema.ManualJournal.__table__
    result = connection.execute(update(table).where(table.c.ref == ref,
                                                    table.c.status == expected.value)
                                .values(status=status.value, **changes))
    return result.rowcount == 1


def journals_in(connection: Connection, period: str | None = None,
                status: ManualJournalStatus | None = None) -> pd.DataFrame:
    """Journals (dated in the period, of the status, when asked), by date and ref."""
    filters, parameters = [], {}
    if period:
        filters.append("period = :period")
        parameters["period"] = period
    if status:
        filters.append("status = :status")
        parameters["status"] = status.value
    where = f"WHERE {' AND '.join(filters)}" if filters else ""
    return read_frame(connection, f"SELECT {_JOURNAL_COLUMNS} FROM manual_journals {where} "
                      "ORDER BY business_date, ref", **parameters)


def lines_of_period(connection: Connection, period: str) -> pd.DataFrame:
    """Every line of the journals dated in the period, with its journal's ref."""
    return read_frame(connection, f"""
        SELECT {', '.join('l.' + column.strip() for column in _LINE_COLUMNS.split(','))}
        FROM manual_journal_lines l JOIN manual_journals j ON j.ref = l.ref
        WHERE j.period = :period ORDER BY l.ref, l.line_number""", period=period)


def reversals_due(connection: Connection, on_or_before: date) -> list[str]:
    """Approved journals whose `reverse_on` has come and that are not reversed yet."""
    return [row[0] for row in connection.execute(text("""
        SELECT ref FROM manual_journals WHERE status = :approved AND reverse_on IS NOT NULL
          AND reverse_on <= :day AND reversal_ref IS NULL ORDER BY reverse_on, ref"""),
        {"approved": ManualJournalStatus.APPROVED.value, "day": on_or_before}).fetchall()]
