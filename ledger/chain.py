"""The tamper-evident journal: a hash chain over every posted entry.

An entry's content hash covers what it says (id, kind, dates, period, customer, source,
batch, policy version and every line), not when it was written, so the same night
posted by one process or by several shards seals to the same chain. Each link is
SHA-256(previous link + content hash), starting from 64 zeros. `verify_chain` recomputes
everything from the journal tables and names the first entry that does not match.

What else is sealed lives in a second chain anchored to this one, not in this one
(`ledger/record_chain.py`): batches with their files' checksums and counts and their
quarantine rows, the archive partitions they wrote, period events (closes, reopens) and
kept policy versions. Each record seal's link takes in
this chain's head at the moment it was sealed, so neither chain can be rewritten without
the other's links changing. Why a second chain rather than record seals interleaved here:
this chain's seals stay exactly what they were (one per entry, in entry id order per
batch), so a ledger made before the record chain keeps, after its upgrade, the chain head
it recorded and its close manifests name; a chain head's sequence stays the number of
entries sealed, which is what the close, the bench and the anchors report; and a night
posted by N shards still seals exactly as one posted by one process.

Neither chain can tell, alone, a rewrite re-sealed with these very functions: what
anchors them is written outside the database, the chain heads in every close manifest
and the anchor file (`ledger/anchors.py`), and `ledger/evidence.py` checks both against
the recomputed chains.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection, bindparam, text

from ledger import schema
from ledger.domain import BatchStatus
from ledger.row_text import columns_as_text, concatenated, line_text, text_buffer
from ledger.store import insert_frame

GENESIS = "0" * 64
_FETCH_ROWS = 100_000
_ENTRY_FIELDS = 8
_ENTRY_CONTENT = """
    SELECT e.entry_id, e.kind, e.business_date, e.period, e.customer_id, e.source_ref,
           e.batch_id, e.policy_version, l.line_number, l.account, l.currency, l.amount_minor,
           l.meter, l.purchase_id, l.functional_minor
    FROM journal_entries e JOIN journal_lines l ON l.entry_id = e.entry_id
"""


@dataclass(frozen=True)
class ChainHead:
    sequence: int
    chain_hash: str


def _content_hashes(result) -> Iterator[tuple[str, str]]:
    """(entry_id, content hash) from a result ordered by entry and line number.

    An entry's content is the text (`ledger.row_text`) of its eight entry fields, then
    that of each of its lines' fields. Rows are read in blocks;
    an entry that may continue in the next block waits for it.
    """
    waiting: list = []
    while True:
        # The driver's own cursor: a text() query has no result processors.
        rows = result.cursor.fetchmany(_FETCH_ROWS)
        block = waiting + rows
        if not block:
            return
        cut = len(block)
        if rows:
            last_entry = block[-1][0]
            while cut > 0 and block[cut - 1][0] == last_entry:
                cut -= 1
        block, waiting = block[:cut], block[cut:]
        if block:
            yield from _hash_block(block)


def _hash_block(rows: list) -> Iterator[tuple[str, str]]:
    """Hash whole entries: one SHA-256 per entry over its slice of the block's text."""
    columns = columns_as_text(rows)
    entry_ids = columns[0].to_numpy(zero_copy_only=False)
    starts_entry = np.r_[True, entry_ids[1:] != entry_ids[:-1]]
    lines = line_text(columns[_ENTRY_FIELDS:])
    text = pc.if_else(pa.array(starts_entry),
                      concatenated(line_text(columns[:_ENTRY_FIELDS]), lines), lines)
    offsets, content = text_buffer(text)
    starts = np.flatnonzero(starts_entry)
    ends = np.r_[starts[1:], len(rows)]
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        yield entry_ids[start], hashlib.sha256(content[offsets[start]:offsets[end]]).hexdigest()


def chain_head(connection: Connection) -> ChainHead:
    row = connection.execute(text(
        "SELECT sequence, chain_hash FROM journal_seals ORDER BY sequence DESC LIMIT 1")).first()
    return ChainHead(int(row[0]), row[1]) if row else ChainHead(0, GENESIS)


def seal_batch(connection: Connection, batch_id: str) -> ChainHead:
    """Seal a batch's entries in entry id order onto the end of the chain."""
    head = chain_head(connection)
    result = connection.execute(text(_ENTRY_CONTENT + """
        WHERE e.batch_id = :batch_id ORDER BY e.entry_id, l.line_number"""), {"batch_id": batch_id})
    return _append_seals(connection, head, batch_id, _content_hashes(result))


def seal_entries(connection: Connection, batch_id: str, entry_ids: list[str]) -> ChainHead:
    """Seal entries posted into an already published batch (an approved manual journal),
    in entry id order, onto the end of the chain, as `seal_batch` seals a night's."""
    head = chain_head(connection)
    statement = text(_ENTRY_CONTENT + """
        WHERE e.entry_id IN :entry_ids ORDER BY e.entry_id, l.line_number""").bindparams(
        bindparam("entry_ids", expanding=True))
    return _append_seals(connection, head, batch_id, _content_hashes(connection.execute(
        statement, {"entry_ids": sorted(entry_ids)})))


def _append_seals(connection: Connection, head: ChainHead, batch_id: str,
                  content_hashes) -> ChainHead:
    """Link each (entry id, content hash), in the order given, onto the chain after `head`."""
    seals, sequence, link = [], head.sequence, head.chain_hash
    for entry_id, content_hash in content_hashes:
        sequence += 1
        link = hashlib.sha256((link + content_hash).encode()).hexdigest()
        seals.append({"sequence": sequence, "entry_id": entry_id, "batch_id": batch_id,
                      "content_hash": content_hash, "chain_hash": link})
    insert_frame(connection, schema.JournalSeal, pd.DataFrame(seals))
    return ChainHead(sequence, link)


@dataclass(frozen=True)
class ChainVerification:
    """A hash chain recomputed: the journal's (`verify_chain`) or the record chain's
    (`ledger.record_chain.verify_records`)."""

    checked: int  # the links recomputed: the journal's entries, or the records
    head: ChainHead
    first_mismatch: str  # "" when the chain holds
    # The recomputed link at each sequence asked for (and reached), 0 being the genesis.
    links: dict[int, str] = field(default_factory=dict)

    @property
    def holds(self) -> bool:
        return not self.first_mismatch

    @property
    def entries_checked(self) -> int:
        """The journal chain's count by the name scripts/record_books.py reads from every
        version, v0.1.0's included."""
        return self.checked


def verify_chain(connection: Connection, remember: Collection[int] = ()) -> ChainVerification:
    """Recompute every content hash and link; name the first seal that does not match.

    remember: sequences whose recomputed link is wanted (what a close manifest, an anchor
    or a record seal says the chain was there), returned in `links`."""
    seals = connection.execute(text(
        "SELECT sequence, entry_id, content_hash, chain_hash FROM journal_seals ORDER BY sequence"))
    stored = {row[1]: (int(row[0]), row[2], row[3]) for row in seals}
    contents = dict(_content_hashes(connection.execute(text(
        _ENTRY_CONTENT + " ORDER BY e.entry_id, l.line_number"))))
    wanted = set(remember)
    link, checked, links = GENESIS, 0, {0: GENESIS}
    for entry_id, (sequence, content_hash, chain_hash) in sorted(stored.items(),
                                                                 key=lambda item: item[1][0]):
        actual = contents.get(entry_id)
        if actual is None:
            return ChainVerification(checked, ChainHead(sequence, link),
                                     f"entry {entry_id} (seal {sequence}) is missing from the journal",
                                     links)
        if actual != content_hash:
            return ChainVerification(checked, ChainHead(sequence, link),
                                     f"entry {entry_id} (seal {sequence}) was altered: its content "
                                     "no longer matches the hash sealed when it was posted", links)
        link = hashlib.sha256((link + content_hash).encode()).hexdigest()
        if link != chain_hash:
            return ChainVerification(checked, ChainHead(sequence, link),
                                     f"seal {sequence} (entry {entry_id}) does not chain to the seal "
                                     "before it", links)
        checked += 1
        if sequence in wanted:
            links[sequence] = link
    unsealed = connection.execute(text("""
        SELECT e.entry_id FROM journal_entries e JOIN batches b ON b.batch_id = e.batch_id
        WHERE b.status <> :open AND NOT EXISTS (SELECT 1 FROM journal_seals s
                                                WHERE s.entry_id = e.entry_id)
        ORDER BY e.entry_id LIMIT 1"""), {"open": BatchStatus.OPEN}).first()
    if unsealed:
        return ChainVerification(checked, ChainHead(checked, link),
                                 f"entry {unsealed[0]} is in a published batch but was never sealed",
                                 links)
    return ChainVerification(checked, ChainHead(checked, link), "", links)
