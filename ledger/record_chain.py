"""The record chain: batches, archive partitions, period events and policy versions
sealed beside the journal chain.

What the journal chain (`ledger.chain`) does not cover is sealed here, each record when
it is written: a batch when it publishes (its row, the checksums and counts of its input
files in `batch_files`, and every quarantine row it wrote), then, in the same transaction,
each archive partition it wrote (its `archive_partitions` row: name, SHA-256 and row
count; one record per batch and document, keyed `batch/document`); a period event (close
or reopen, with who, when, why and the journal digest) in the transaction that records it;
and a policy version's kept text (`policy_versions`) when it is first kept. Partitions and
policy versions kept before they were sealed are sealed by `creditbooks upgrade`
(`seal_unsealed_partitions_and_policy_versions`, after the migrations and the adoption of
a v0.1.0 archive).
A record's content hash is SHA-256 over the text of those rows (`ledger.row_text`:
fields joined by \\x1f, a missing value empty, each row ended by a newline; a batch's
files and quarantine rows each as one SHA-256 and a row count; a batch's actor and a
reopen's approver only when recorded, so records sealed before those were kept keep their
hashes). Each seal's link is

    SHA-256(previous link + kind + \\x1f + key + \\x1f + journal link + content hash)

starting from 64 zeros, where `journal link` is the journal chain's head when the record
was sealed (`entry_sequence`): the record chain is anchored to the journal chain, so
neither can be rewritten without the other's links changing. `verify_records` recomputes
everything from the tables and names the first record that does not match, then any
published batch or period event that was never sealed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection

import numpy as np
from sqlalchemy import Connection, bindparam, insert, inspect, text

from ledger import schema
from ledger.chain import GENESIS, ChainHead, ChainVerification, chain_head
from ledger.domain import BatchStatus, RecordKind
from ledger.row_text import columns_as_text, line_text, text_buffer

_FETCH_ROWS = 100_000
_EMPTY = hashlib.sha256(b"").hexdigest()
# The actor last, hashed only when set: a batch from before it was recorded keeps its hash.
# ({actor}: NULL on a ledger being upgraded through a revision older than that column.)
_BATCHES = """SELECT batch_id, business_date, posting_period, status, policy_version,
                     input_fingerprint, entry_count, {actor} FROM batches WHERE status <> :open"""
_FILES = """SELECT batch_id, document, file_name, sha256, rows_read, rows_accepted,
                   rows_duplicate, rows_rejected, credits_accepted_micro, amounts_accepted_json
            FROM batch_files"""
_QUARANTINE = """SELECT batch_id, id, business_date, document, file_name, row_number, kind,
                        column_name, reason, raw_row FROM quarantine"""
# The flag as 1 or 0 on both stores (PostgreSQL would write true/false). A reopen's
# approver is a field of its row only when set: events from before it was recorded keep
# their hashes.
_EVENT_COLUMNS = """id, period, action, version, actor, reason,
                    CASE WHEN accepted_exceptions THEN 1 ELSE 0 END, journal_digest, recorded_at"""
_EVENTS = f"SELECT {_EVENT_COLUMNS} FROM period_events WHERE approved_by IS NULL"
_APPROVED_EVENTS = (f"SELECT {_EVENT_COLUMNS}, approved_by FROM period_events "
                    "WHERE approved_by IS NOT NULL")
_EVENTS_BEFORE_APPROVERS = f"SELECT {_EVENT_COLUMNS} FROM period_events WHERE 1 = 1"
# A close's manifest hash likewise: a field only when set, so older closes keep their hashes.
_UNMANIFESTED = " AND manifest_sha256 IS NULL"
_MANIFESTED_EVENTS = (f"SELECT {_EVENT_COLUMNS}, COALESCE(approved_by, ''), manifest_sha256 "
                      "FROM period_events WHERE manifest_sha256 IS NOT NULL")


# A partition's key is its batch and document: a batch writes one partition per document.
_PARTITION_ROWS = """SELECT p.batch_id || '/' || p.document, p.batch_id, p.document,
                            p.business_date, p.relative_path, p.sha256, p.row_count
                     FROM archive_partitions p JOIN batches b ON b.batch_id = p.batch_id
                     WHERE b.status <> :open"""
_PARTITIONS = _PARTITION_ROWS + " ORDER BY 1"
_PARTITIONS_OF_BATCH = _PARTITION_ROWS + " AND p.batch_id = :batch_id ORDER BY 1"
_PARTITIONS_IN_DATE_ORDER = """SELECT p.batch_id || '/' || p.document
    FROM archive_partitions p JOIN batches b ON b.batch_id = p.batch_id
    WHERE b.status <> :open ORDER BY p.business_date, p.document"""
_POLICY_ROWS = """SELECT version, version, policy_text, first_used_by, first_used_for,
                         first_used_at FROM policy_versions"""
_POLICY_VERSIONS = _POLICY_ROWS + " ORDER BY version"
_POLICY_VERSION = _POLICY_ROWS + " WHERE version = :version"
_POLICY_VERSIONS_IN_USE_ORDER = "SELECT version FROM policy_versions ORDER BY first_used_at, version"


def _has_column(connection: Connection, table: str, column: str) -> bool:
    """Whether the ledger's table has the column yet: the record-chain migration seals
    through this module while the ledger is at its own, older revision."""
    return any(found["name"] == column for found in inspect(connection).get_columns(table))


def _grouped_digests(result) -> dict[str, tuple[str, int]]:
    """{key: (SHA-256 of its rows' text, row count)} from a result ordered by its first
    column; a key's rows may run over several read blocks."""
    hashers: dict[str, hashlib._Hash] = {}
    counts: dict[str, int] = {}
    # The driver's own cursor: a text() query has no result processors.
    while rows := result.cursor.fetchmany(_FETCH_ROWS):
        columns = columns_as_text(rows)
        keys = columns[0].to_numpy(zero_copy_only=False)
        offsets, content = text_buffer(line_text(columns))
        starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
        ends = np.r_[starts[1:], len(rows)]
        for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
            key = keys[start]
            hashers.setdefault(key, hashlib.sha256()).update(content[offsets[start]:offsets[end]])
            counts[key] = counts.get(key, 0) + end - start
    return {key: (hasher.hexdigest(), counts[key]) for key, hasher in hashers.items()}


def batch_contents(connection: Connection, batch_id: str | None = None) -> dict[str, str]:
    """{batch id: content hash} of every published batch (or of the one named)."""
    where, parameters = ("batch_id = :batch_id", {"batch_id": batch_id}) if batch_id else (
        "1 = 1", {})
    actor = "actor" if _has_column(connection, "batches", "actor") else "NULL"
    batches = connection.execute(text(f"{_BATCHES.format(actor=actor)} AND {where} "
                                      "ORDER BY batch_id"),
                                 {**parameters, "open": BatchStatus.OPEN}).cursor.fetchall()
    files = _grouped_digests(connection.execute(text(
        f"{_FILES} WHERE {where} ORDER BY batch_id, document"), parameters))
    quarantine = _grouped_digests(connection.execute(text(
        f"{_QUARANTINE} WHERE {where} ORDER BY batch_id, id"), parameters))
    if not batches:
        return {}
    batch_text = line_text(columns_as_text([row[:-1] for row in batches])).to_pylist()
    contents = {}
    for row, row_text in zip(batches, batch_text, strict=True):
        files_digest, files_count = files.get(row[0], (_EMPTY, 0))
        rows_digest, rows_count = quarantine.get(row[0], (_EMPTY, 0))
        actor = row[-1]
        contents[row[0]] = hashlib.sha256(
            (row_text + f"files\x1f{files_digest}\x1f{files_count}\n"
             f"quarantine\x1f{rows_digest}\x1f{rows_count}\n"
             + ("" if actor is None else f"actor\x1f{actor}\n")).encode()).hexdigest()
    return contents


def period_event_contents(connection: Connection, event_id: int | None = None) -> dict[str, str]:
    """{event id as text: content hash} of every period event (or of the one named)."""
    where, parameters = ("AND id = :id", {"id": event_id}) if event_id is not None else ("", {})
    digests = {}
    queries = ((_EVENTS, _APPROVED_EVENTS) if _has_column(connection, "period_events", "approved_by")
               else (_EVENTS_BEFORE_APPROVERS,))
    if _has_column(connection, "period_events", "manifest_sha256"):
        queries = (*(query + _UNMANIFESTED for query in queries), _MANIFESTED_EVENTS)
    for query in queries:
        digests |= _grouped_digests(connection.execute(text(f"{query} {where} ORDER BY id"),
                                                       parameters))
    return {key: digest for key, (digest, _) in digests.items()}


def partition_contents(connection: Connection, batch_id: str | None = None) -> dict[str, str]:
    """{batch/document: content hash} of every archive partition of a published batch (or
    of the batch named)."""
    query, parameters = ((_PARTITIONS_OF_BATCH, {"batch_id": batch_id}) if batch_id
                         else (_PARTITIONS, {}))
    digests = _grouped_digests(connection.execute(text(query),
                                                  {**parameters, "open": BatchStatus.OPEN}))
    return {key: digest for key, (digest, _) in digests.items()}


def policy_version_contents(connection: Connection, version: str | None = None) -> dict[str, str]:
    """{version: content hash} of every kept policy version (or of the one named)."""
    query, parameters = ((_POLICY_VERSION, {"version": version}) if version is not None
                         else (_POLICY_VERSIONS, {}))
    digests = _grouped_digests(connection.execute(text(query), parameters))
    return {key: digest for key, (digest, _) in digests.items()}


def _link(previous: str, kind: str, key: str, entry_link: str, content_hash: str) -> str:
    return hashlib.sha256(
        f"{previous}{kind}\x1f{key}\x1f{entry_link}{content_hash}".encode()).hexdigest()


def record_chain_head(connection: Connection) -> ChainHead:
    row = connection.execute(text(
        "SELECT sequence, chain_hash FROM record_seals ORDER BY sequence DESC LIMIT 1")).first()
    return ChainHead(int(row[0]), row[1]) if row else ChainHead(0, GENESIS)


class RecordAlreadySealedError(ValueError):
    """A record being sealed has a seal already: its table was altered behind the ledger."""


def seal_records(connection: Connection, kind: RecordKind, contents: dict[str, str],
                 unsealed_only: bool = False) -> ChainHead:
    """Seal records (key -> content hash, in the order given) onto the record chain,
    anchored to the journal chain's head now. unsealed_only: the caller chose records
    with no seal (an upgrade sealing a whole ledger's), so none is looked up again."""
    if not unsealed_only:
        _refuse_sealed_again(connection, kind, list(contents))
    head, journal = record_chain_head(connection), chain_head(connection)
    seals, sequence, link = [], head.sequence, head.chain_hash
    for key, content_hash in contents.items():
        sequence += 1
        link = _link(link, kind, key, journal.chain_hash, content_hash)
        seals.append({"sequence": sequence, "record_kind": kind, "record_key": key,
                      "entry_sequence": journal.sequence, "entry_chain_hash": journal.chain_hash,
                      "content_hash": content_hash, "chain_hash": link})
    if seals:  # a record at a time, or a ledger's batches once at its upgrade: few rows
        connection.execute(insert(schema.RecordSeal.__table__), seals)
    return ChainHead(sequence, link)


def _refuse_sealed_again(connection: Connection, kind: RecordKind, keys: list[str]) -> None:
    """A new period event that takes the id of a removed one (SQLite reuses the highest
    id), or a record put back after its row was removed, would otherwise meet the old
    seal's unique key as a database error. (A record at a time, or one batch's
    partitions: a few keys.)"""
    if not keys:
        return
    sealed = connection.execute(text(
        "SELECT record_key, sequence FROM record_seals WHERE record_kind = :kind "
        "AND record_key IN :keys ORDER BY sequence").bindparams(
        bindparam("keys", expanding=True)), {"kind": kind, "keys": keys}).first()
    if sealed is not None:
        raise RecordAlreadySealedError(
            f"{_NAMES[kind]} {sealed[0]} is already sealed (record seal {sealed[1]}): the "
            f"{_TABLES[kind]} table was altered behind the ledger; run creditbooks verify to "
            "see how, nothing was recorded")


def seal_batch_record(connection: Connection, batch_id: str) -> ChainHead:
    """Seal a published batch, then each archive partition it wrote (in document order):
    call after its status, entry count, files, quarantine rows and partitions are final
    (its publish, after its entries are sealed)."""
    seal_records(connection, RecordKind.BATCH, batch_contents(connection, batch_id))
    return seal_records(connection, RecordKind.PARTITION, partition_contents(connection, batch_id))


def seal_policy_version(connection: Connection, version: str) -> ChainHead:
    """Seal a policy version's kept text: call in the transaction that first keeps it."""
    return seal_records(connection, RecordKind.POLICY_VERSION,
                        policy_version_contents(connection, version))


def seal_period_event(connection: Connection, event_id: int) -> ChainHead:
    return seal_records(connection, RecordKind.PERIOD_EVENT, period_event_contents(connection, event_id))


def seal_unsealed_records(connection: Connection) -> ChainHead:
    """Seal what a ledger from before the record chain holds: its published batches in
    business-date order, then its period events in the order they were recorded."""
    sealed = {(row[0], row[1]) for row in connection.execute(text(
        "SELECT record_kind, record_key FROM record_seals"))}
    order = [row[0] for row in connection.execute(text(
        "SELECT batch_id FROM batches WHERE status <> :open ORDER BY business_date"),
        {"open": BatchStatus.OPEN})]
    batches = batch_contents(connection)
    seal_records(connection, RecordKind.BATCH, {batch_id: batches[batch_id] for batch_id in order
                                       if (RecordKind.BATCH, batch_id) not in sealed},
                 unsealed_only=True)
    events = period_event_contents(connection)
    return seal_records(connection, RecordKind.PERIOD_EVENT, {
        key: events[key] for key in sorted(events, key=int) if (RecordKind.PERIOD_EVENT, key) not in sealed},
        unsealed_only=True)


def seal_unsealed_partitions_and_policy_versions(connection: Connection) -> ChainHead:
    """Seal what a ledger kept before partitions and policy texts were sealed (at its
    upgrade, after a v0.1.0 archive is adopted): the archive partitions of its published
    batches in business-date and document order, then its policy versions in the order
    first used. Those sealed already are left as they are."""
    sealed = {(row[0], row[1]) for row in connection.execute(text(
        "SELECT record_kind, record_key FROM record_seals"))}
    partitions = partition_contents(connection)
    order = [row[0] for row in connection.execute(text(_PARTITIONS_IN_DATE_ORDER),
                                                  {"open": BatchStatus.OPEN})]
    seal_records(connection, RecordKind.PARTITION, {
        key: partitions[key] for key in order if (RecordKind.PARTITION, key) not in sealed},
        unsealed_only=True)
    policies = policy_version_contents(connection)
    order = [row[0] for row in connection.execute(text(_POLICY_VERSIONS_IN_USE_ORDER))]
    return seal_records(connection, RecordKind.POLICY_VERSION, {
        key: policies[key] for key in order if (RecordKind.POLICY_VERSION, key) not in sealed},
        unsealed_only=True)


def sealed_entry_sequences(connection: Connection) -> set[int]:
    """The journal chain positions the record seals are anchored to."""
    return {int(row[0]) for row in connection.execute(text(
        "SELECT DISTINCT entry_sequence FROM record_seals"))}


_NAMES = {RecordKind.BATCH: "batch", RecordKind.PERIOD_EVENT: "period event id",
          RecordKind.PARTITION: "archive partition", RecordKind.POLICY_VERSION: "policy version"}
_TABLES = {RecordKind.BATCH: "batches", RecordKind.PERIOD_EVENT: "period_events",
           RecordKind.PARTITION: "archive_partitions", RecordKind.POLICY_VERSION: "policy_versions"}
_MISSING = {RecordKind.BATCH: "is missing from batches (or is no longer published)",
            RecordKind.PERIOD_EVENT: "is missing from period_events",
            RecordKind.PARTITION: "is missing from archive_partitions (or its batch is no "
                                  "longer published)",
            RecordKind.POLICY_VERSION: "is missing from policy_versions"}
_ALTERED = {RecordKind.BATCH: "was altered: its row, its files' checksums and counts or its quarantine "
                     "rows no longer match the hash sealed when it published",
            RecordKind.PERIOD_EVENT: "was altered: it no longer matches the hash sealed when it was "
                            "recorded",
            RecordKind.PARTITION: "was altered: its name, SHA-256 or row count no longer match "
                                  "the hash sealed when its batch published",
            RecordKind.POLICY_VERSION: "was altered: its text, or who first used it, for what or "
                                       "when, no longer match the hash sealed when it was kept"}


def _named(connection: Connection, kind: RecordKind, key: str, sequence: int | None) -> str:
    """A record as a message names it: an archive partition by where its row says it is
    (when the row is there), its batch and document."""
    seal = "" if sequence is None else f"record seal {sequence}"
    if kind != RecordKind.PARTITION:
        return f"{_NAMES[kind]} {key}" + (f" ({seal})" if seal else "")
    batch_id, _, document = key.rpartition("/")
    path = connection.execute(text(
        "SELECT relative_path FROM archive_partitions WHERE batch_id = :batch_id "
        "AND document = :document"), {"batch_id": batch_id, "document": document}).scalar()
    where = f"archive partition {path}" if path is not None else "archive partition"
    return f"{where} (batch {batch_id}, {document}" + (f"; {seal})" if seal else ")")


def _misplaced_partition(connection: Connection, seals) -> str:
    """The first archive partition not sealed in its batch's publish ('' when none is).

    A publish seals its batch, then at once each partition it wrote, so a partition's seal
    lies right after its batch's seal, before the next batch's. A partition sealed
    anywhere else was added behind the ledger - except those an upgrade sealed for batches
    published before partitions were sealed (no partition follows their batch's seal), all
    before the first publish that sealed its own."""
    batch_seals, published_with_partitions = {}, set()
    publishing = None  # the batch whose publish the seals are in, while they are
    for sequence, kind, key, *_ in seals:
        if kind == RecordKind.BATCH:
            batch_seals[key], publishing = int(sequence), key
            continue
        batch_id = key.rpartition("/")[0] if kind == RecordKind.PARTITION else None
        if batch_id is not None and batch_id == publishing:
            published_with_partitions.add(batch_id)
            continue
        publishing = None
        if batch_id is None or (batch_id in batch_seals and not published_with_partitions):
            continue  # not a partition, or an upgrade sealing older batches' partitions
        own = batch_seals.get(batch_id)
        after = [seal for seal in batch_seals.values() if own is not None and seal > own]
        next_batch = f"the next batch's seal is {min(after)}" if after else "no batch follows"
        return (f"{_named(connection, RecordKind(kind), key, int(sequence))} is not sealed in "
                f"its batch's publish: batch {batch_id} is record seal {own}, {next_batch}; "
                "it was added behind the ledger")
    return ""


def verify_records(connection: Connection, entry_links: dict[int, str],
                   remember: Collection[int] = ()) -> ChainVerification:
    """Recompute the record chain against the tables and the recomputed journal links
    (`entry_links`: the journal chain's link at each sequence a record seal names)."""
    contents = {RecordKind.BATCH: batch_contents(connection),
                RecordKind.PERIOD_EVENT: period_event_contents(connection),
                RecordKind.PARTITION: partition_contents(connection),
                RecordKind.POLICY_VERSION: policy_version_contents(connection)}
    seals = connection.execute(text(
        "SELECT sequence, record_kind, record_key, entry_sequence, content_hash, chain_hash "
        "FROM record_seals ORDER BY sequence")).fetchall()
    wanted = set(remember)
    link, checked, links = GENESIS, 0, {0: GENESIS}
    for sequence, kind, key, entry_sequence, content_hash, chain_hash in seals:
        actual = contents[kind].pop(key, None)
        if actual is None:
            return ChainVerification(checked, ChainHead(sequence, link),
                                     f"{_named(connection, kind, key, sequence)} "
                                     f"{_MISSING[kind]}", links)
        if actual != content_hash:
            return ChainVerification(checked, ChainHead(sequence, link),
                                     f"{_named(connection, kind, key, sequence)} "
                                     f"{_ALTERED[kind]}", links)
        entry_link = entry_links.get(int(entry_sequence))
        if entry_link is None:
            return ChainVerification(checked, ChainHead(sequence, link),
                                     f"{_named(connection, kind, key, sequence)} is anchored to "
                                     f"journal seal {entry_sequence}, "
                                     "which the journal chain does not reach", links)
        link = _link(link, kind, key, entry_link, content_hash)
        if link != chain_hash:
            return ChainVerification(checked, ChainHead(sequence, link),
                                     f"record seal {sequence} ({_NAMES[kind]} {key}) does not "
                                     "chain to the seal before it, or its journal anchor "
                                     "changed", links)
        checked += 1
        if int(sequence) in wanted:
            links[int(sequence)] = link
    if misplaced := _misplaced_partition(connection, seals):
        return ChainVerification(checked, ChainHead(checked, link), misplaced, links)
    for kind in RecordKind:
        if contents[kind]:
            first = min(contents[kind], key=(int if kind == RecordKind.PERIOD_EVENT else str))
            return ChainVerification(checked, ChainHead(checked, link),
                                     f"{_named(connection, kind, first, None)} was never sealed",
                                     links)
    return ChainVerification(checked, ChainHead(checked, link), "", links)
