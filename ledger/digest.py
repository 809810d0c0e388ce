"""A digest of the journal up to a period: one SHA-256 over every entry and line, in order.

Recorded when a period closes, so anyone can later recompute it and see whether any
entry of a closed period was altered, added or removed.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import Connection, text

from ledger.row_text import columns_as_text, line_text, text_buffer

_BATCH_ROWS = 100_000


def journal_digest(connection: Connection, up_to_period: str) -> tuple[str, int]:
    """(hex SHA-256, line count) of all lines of entries posted into periods <= the one given."""
    digest = hashlib.sha256()
    result = connection.execute(text("""
        SELECT e.entry_id, e.kind, e.business_date, e.period, e.customer_id, e.source_ref,
               l.line_number, l.account, l.currency, l.amount_minor, l.meter, l.purchase_id
        FROM journal_entries e JOIN journal_lines l ON l.entry_id = e.entry_id
        WHERE e.period <= :period ORDER BY e.entry_id, l.line_number
    """), {"period": up_to_period})
    count = 0
    # The driver's own cursor: a text() query has no result processors.
    while rows := result.cursor.fetchmany(_BATCH_ROWS):
        offsets, content = text_buffer(line_text(columns_as_text(rows)))
        digest.update(content[offsets[0]:offsets[-1]])
        count += len(rows)
    return digest.hexdigest(), count


def entry_count(connection: Connection, up_to_period: str) -> int:
    """How many entries are posted into periods <= the one given.

    The cheap witness that nothing was posted since a digest was taken: entries are
    append-only and every posting adds entries, so the same count means the same journal
    (an index count, where the digest reads every line)."""
    return int(connection.execute(text("SELECT COUNT(*) FROM journal_entries WHERE period <= :period"),
                                  {"period": up_to_period}).scalar_one())
