"""A digest of the journal up to a period: one SHA-256 over every entry and line, in order.

Recorded when a period closes, so anyone can later recompute it and see whether any
entry of a closed period was altered, added or removed. The text hashed is each line's
twelve fields (entry id, kind, business date, period, customer, source, line number,
account, currency, amount, meter, lot) as `ledger.row_text` writes rows: joined by \x1f,
a missing value as empty text, ended by a newline.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from itertools import compress

import numpy as np
from sqlalchemy import Connection, text

from ledger.periods import Period
from ledger.row_text import FIELD_SEPARATOR

_BATCH_ROWS = 100_000
_FIELDS = ("e.entry_id", "e.kind", "e.business_date", "e.period", "e.customer_id",
           "e.source_ref", "l.line_number", "l.account", "l.currency", "l.amount_minor",
           "l.meter", "l.purchase_id")


def _line_text_sql(dialect: str) -> str:
    """The SQL that writes a line's text: the database builds it, so each line is fetched
    as one string, not twelve values (the digest runs beside the close's reports, and
    every Python object made holds up the other thread). One formatting call a line, not
    twelve concatenations: SQLite's printf and PostgreSQL's format both write a missing
    value as empty text, and take half the time."""
    if dialect == "postgresql":  # the date written the same whatever the server's DateStyle
        fields = [("to_char(e.business_date, 'YYYY-MM-DD')" if name == "e.business_date"
                   else name) for name in _FIELDS]
        function = "format"
    else:
        fields, function = list(_FIELDS), "printf"
    template = FIELD_SEPARATOR.join(["%s"] * len(fields)) + "\n"
    return f"{function}('{template}', {', '.join(fields)})"


def journal_digest(connection: Connection, up_to_period: Period) -> tuple[str, int]:
    """(hex SHA-256, line count) of all lines of entries posted into periods <= the one given."""
    digest = hashlib.sha256()
    # CROSS JOIN: SQLite walks the lines in key order, already the digest's order.
    result = connection.execute(text(f"""
        SELECT {_line_text_sql(connection.dialect.name)}
        FROM journal_lines l CROSS JOIN journal_entries e
        WHERE e.entry_id = l.entry_id AND e.period <= :period
        ORDER BY l.entry_id, l.line_number
    """), {"period": up_to_period})
    count = 0
    # The driver's own cursor: a text() query has no result processors.
    while rows := result.cursor.fetchmany(_BATCH_ROWS):
        digest.update("".join([row[0] for row in rows]).encode())
        count += len(rows)
    return digest.hexdigest(), count


def journal_digests(connection: Connection, periods: Collection[Period]) -> dict[Period, str]:
    """{period: the digest `journal_digest` gives for it}, for many periods in one read
    of the journal (verify checks every closed period's recorded digest this way)."""
    wanted = sorted(set(periods))
    if not wanted:
        return {}
    hashers = {period: hashlib.sha256() for period in wanted}
    result = connection.execute(text(f"""
        SELECT {_line_text_sql(connection.dialect.name)}, e.period
        FROM journal_lines l CROSS JOIN journal_entries e
        WHERE e.entry_id = l.entry_id AND e.period <= :period
        ORDER BY l.entry_id, l.line_number
    """), {"period": wanted[-1]})
    while rows := result.cursor.fetchmany(_BATCH_ROWS):
        texts = [row[0] for row in rows]
        line_periods = np.array([row[1] for row in rows])
        for period in wanted:  # each period's digest takes the lines of periods up to it
            included = line_periods <= period
            hashers[period].update("".join(
                texts if included.all() else compress(texts, included)).encode())
    return {period: hasher.hexdigest() for period, hasher in hashers.items()}


def entry_count(connection: Connection, up_to_period: Period) -> int:
    """How many entries are posted into periods <= the one given.

    The cheap witness that nothing was posted between two moments (a close counts before
    it reads anything and again under its lock): entries are append-only and every
    posting adds entries, so the same count means the same journal. An index count, where
    the digest reads every line."""
    return int(connection.execute(text("SELECT COUNT(*) FROM journal_entries WHERE period <= :period"),
                                  {"period": up_to_period}).scalar_one())
