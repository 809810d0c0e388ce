"""Anchors: the heads of both hash chains, written outside the database at every publish
and close.

Whoever can rewrite the database can rewrite the journal and re-seal both chains with
the project's own functions; what they cannot rewrite is a copy already kept elsewhere.
An anchor is one JSON line appended to the anchor file after the publish or close
commits: the ledger's id, what happened (`publish 2026-03-31`, `close 2026-03 v1`,
`reopen 2026-03`), when (UTC), the journal chain's head (its sequence is the number of
entries sealed) and the record chain's head. The file is opened for appending only, each
line written whole and synced; nothing here ever rewrites a line. Keep it where the
ledger's writers cannot rewrite it either (a write-once bucket, a log shipper) for it to
be worth more than the database. `creditbooks verify --anchors FILE` checks every line of
this ledger against the recomputed chains (`ledger/evidence.py`).

Where: `--anchors FILE`, else `$CREDITBOOKS_ANCHORS`, else `creditbooks-anchors.jsonl`
beside the archive directory (a publish) or the close directory (a close), that is in its
parent: the default layout (`./archive`, `./close`) keeps one file,
`./creditbooks-anchors.jsonl`. A process killed between its commit and the anchor leaves
that one anchor out; the next one covers it (a later head seals everything before it).

On object storage (`--anchors s3://bucket/anchors`; the default beside an archive there is
`s3://bucket/creditbooks-anchors`) the place is a prefix, and each anchor is a new object
under it holding its one line, named by its time, ledger and a random part
(`20260303T010000000000Z-<ledger>-<random>.json`) and written only if no object has that
name: an object store cannot append, and rewriting one object (read, add a line, write
back under a generation check) would mean every anchor rewrites all the earlier ones,
which a write-once (object-locked) bucket refuses and a faulty writer could truncate.
New objects never touch an old one. The anchor lines are the objects' lines in name order,
that is in time order.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Connection, text

from ledger.archive_index import ledger_id
from ledger.chain import ChainHead, chain_head
from ledger.record_chain import record_chain_head
from ledger.storage_urls import file_system, object_storage_url

ANCHORS_ENVIRONMENT_VARIABLE = "CREDITBOOKS_ANCHORS"
ANCHOR_FILE_NAME = "creditbooks-anchors.jsonl"
ANCHOR_PREFIX_NAME = "creditbooks-anchors"  # the default beside an archive on object storage


def anchor_file(option: Path | None, beside: Path) -> Path:
    """The anchor file: the option, else $CREDITBOOKS_ANCHORS, else beside `beside`."""
    if option is not None:
        return Path(option)
    if os.environ.get(ANCHORS_ENVIRONMENT_VARIABLE):
        return Path(os.environ[ANCHORS_ENVIRONMENT_VARIABLE])
    url = object_storage_url(beside)
    if url is not None:
        scheme, _, place = url.partition("://")
        parent = place.rsplit("/", 1)[0] if "/" in place else place
        return Path(f"{scheme}://{parent}/{ANCHOR_PREFIX_NAME}")
    return Path(beside).parent / ANCHOR_FILE_NAME


@dataclass(frozen=True)
class Anchor:
    ledger: str | None  # None only in a manifest written before the ledger had an id
    event: str
    at: str  # ISO 8601, UTC
    journal_chain: ChainHead
    record_chain: ChainHead

    def as_dict(self) -> dict:
        return {"ledger": self.ledger, "event": self.event, "at": self.at,
                "entries_sealed": self.journal_chain.sequence,
                "journal_chain": {"sequence": self.journal_chain.sequence,
                                  "hash": self.journal_chain.chain_hash},
                "record_chain": {"sequence": self.record_chain.sequence,
                                 "hash": self.record_chain.chain_hash}}


def current_anchor(connection: Connection, event: str, now: datetime | None = None) -> Anchor:
    """Both chains' heads now (the ledger's id is made if it has none yet)."""
    at = (now or datetime.now(UTC)).astimezone(UTC).isoformat()
    return Anchor(ledger_id(connection), event, at, chain_head(connection),
                  record_chain_head(connection))


def append_anchor(path: Path, anchor: Anchor) -> None:
    """One line appended and synced; the file is never opened for anything else. On object
    storage, one new object under the prefix `path`."""
    line = json.dumps(anchor.as_dict(), sort_keys=True) + "\n"
    url = object_storage_url(path)
    if url is not None:
        _put_anchor_object(url, anchor, line)
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(descriptor, line.encode())
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _put_anchor_object(url: str, anchor: Anchor, line: str) -> None:
    """The anchor as a new object under the prefix `url`, created only if its name is free
    (the random part makes two writers' names differ; the check makes sure)."""
    at = datetime.fromisoformat(anchor.at).astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    storage, prefix = file_system(url)
    name = f"{prefix}/{at}-{anchor.ledger}-{uuid.uuid4().hex[:12]}.json"
    storage.pipe_file(name, line.encode(), mode="create")


def anchor_lines(path: Path) -> list[str]:
    """The anchor file's lines; on object storage, the lines of the objects under the
    prefix, in name order (time order). Raises OSError when they cannot be read."""
    url = object_storage_url(path)
    if url is None:
        return Path(path).read_text(encoding="utf-8").splitlines()
    storage, prefix = file_system(url)
    storage.invalidate_cache()
    return [line for name in sorted(storage.find(prefix))
            for line in storage.cat_file(name).decode("utf-8").splitlines()]


def write_anchor(store, event: str, path: Path) -> Anchor:
    """Read both heads (after the caller's commit) and append them to the anchor file."""
    with store.transaction() as connection:
        anchor = current_anchor(connection, event)
    append_anchor(path, anchor)
    return anchor


def known_ledger_id(connection: Connection) -> str | None:
    """The ledger's id if it has one (read only: verify never makes one)."""
    return connection.execute(text("SELECT ledger_id FROM ledger_identity")).scalar()
