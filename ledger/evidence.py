"""Tamper evidence, checked: the two chains, the period events, the close manifests and the
anchor file, each against the books recomputed from the tables.

`verify_evidence` runs, in order, and each names the first thing in it that differs:

1. the journal chain (`ledger.chain.verify_chain`);
2. the record chain (`ledger.record_chain.verify_records`): batches with their files and
   quarantine rows, the archive partitions they wrote, period events and kept policy
   versions, each against its seal;
3. the period events: each period's events alternate close, reopen, close...; close
   versions count 1, 2, ...; a reopen names the version and digest of the close it
   reopens; and each period closed now has the journal digest its close recorded;
4. with a close directory, every manifest in it (`DIR/YYYY-MM/vN/manifest.json`): its
   close must be in `period_events` (same version, actor, instant and digest), the
   journal chain's head it records must be the recomputed chain's link at that sequence,
   the record chain's head in its anchor likewise, and every file must have the SHA-256
   the manifest lists; and every close recorded must have its manifest there;
5. with an anchor file (`ledger.anchors`), every line of this ledger: both heads it
   records must be the recomputed links at those sequences, and the last anchor's heads
   must be the ledger's heads (every action that seals writes an anchor after it: a seal
   past the last anchor was appended behind the ledger, or a truncated file lost lines).

Someone who rewrites the database and re-seals both chains with the project's own
functions passes 1 to 3; 4 and 5 hold what was written outside the database when it was.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Connection, text

from ledger.anchors import anchor_lines, known_ledger_id
from ledger.chain import verify_chain
from ledger.digest import journal_digests
from ledger.domain import PeriodAction
from ledger.guards import guards_check_detail
from ledger.record_chain import sealed_entry_sequences, verify_records
from ledger.storage_urls import object_storage_url


@dataclass(frozen=True)
class EvidenceCheck:
    control: str
    passed: bool
    detail: str

    def as_dict(self) -> dict:
        return {"control": self.control, "passed": self.passed, "detail": self.detail}


@dataclass(frozen=True)
class _Links:
    """Recomputed links by sequence, and how far each chain was recomputed."""

    journal: dict[int, str]
    journal_end: int
    record: dict[int, str]
    record_end: int


def verify_evidence(connection: Connection, close_dir: Path | None = None,
                    anchors: Path | None = None) -> list[EvidenceCheck]:
    manifests = _manifests(close_dir) if close_dir is not None else []
    anchor_lines = _anchor_lines(anchors) if anchors is not None else []
    # The sequences whose recomputed links something recorded: a record seal, a manifest
    # (its chain head, and both heads of its anchor) or an anchor line.
    wanted_journal, wanted_record = sealed_entry_sequences(connection), set()
    for document in [manifest for _, manifest in manifests if isinstance(manifest, dict)] + [
            line for _, line in anchor_lines if isinstance(line, dict)]:
        anchor = document.get("anchor") if isinstance(document.get("anchor"), dict) else {}
        wanted_journal |= {_sequence(document.get("chain_head")),
                           _sequence(document.get("journal_chain")),
                           _sequence(anchor.get("journal_chain"))}
        wanted_record |= {_sequence(document.get("record_chain")),
                          _sequence(anchor.get("record_chain"))}
    chain = verify_chain(connection, wanted_journal)
    records = verify_records(connection, chain.links, wanted_record)
    links = _Links(chain.links, chain.checked, records.links, records.checked)
    checks = [
        EvidenceCheck("journal hash chain", chain.holds, chain.first_mismatch or (
            f"{chain.checked} entries; head {chain.head.sequence} "
            f"{chain.head.chain_hash}")),
        EvidenceCheck("record chain (batches, files, quarantine, archive partitions, period "
                      "events, policy versions)", records.holds,
                      records.first_mismatch or (
                          f"{records.checked} records; head {records.head.sequence} "
                          f"{records.head.chain_hash}")),
        _check_period_events(connection),
        EvidenceCheck("append-only guards (triggers)", *guards_check_detail(connection)),
    ]
    if close_dir is not None:
        checks.append(_check_manifests(connection, Path(close_dir), manifests, links))
    if anchors is not None:
        checks.append(_check_anchors(connection, Path(anchors), anchor_lines, links))
    return checks


def _sequence(head) -> int:
    """A recorded head's sequence (0, the genesis, when it has none)."""
    return _whole_number(head.get("sequence")) if isinstance(head, dict) else 0


def _whole_number(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _close_events(connection: Connection) -> list[dict]:
    return [dict(row) for row in connection.execute(text(
        "SELECT id, period, action, version, actor, journal_digest, recorded_at, "
        "manifest_sha256 FROM period_events ORDER BY period, id")).mappings()]


def _check_period_events(connection: Connection) -> EvidenceCheck:
    control = "period events (closes, reopens, digests)"
    events = _close_events(connection)
    in_force: dict[str, dict] = {}
    closes: dict[str, int] = {}
    for event in events:
        period, last = event["period"], in_force.get(event["period"])
        named = f"period {period} {event['action']} (event id {event['id']})"
        if event["action"] == PeriodAction.CLOSE:
            closes[period] = closes.get(period, 0) + 1
            if last is not None and last["action"] == PeriodAction.CLOSE:
                return EvidenceCheck(control, False, f"{named} follows another close with no "
                                     "reopen between: an event was removed")
            if int(event["version"]) != closes[period]:
                return EvidenceCheck(control, False, f"{named} is version {event['version']}, "
                                     f"but it is close number {closes[period]} of the period: "
                                     "an event was removed or altered")
        elif last is None or last["action"] != PeriodAction.CLOSE or (
                int(event["version"]), event["journal_digest"]) != (
                int(last["version"]), last["journal_digest"]):
            return EvidenceCheck(control, False, f"{named} does not reopen the close before it "
                                 "(its version or journal digest differs): an event was "
                                 "removed or altered")
        in_force[period] = event
    closed = {period: event for period, event in in_force.items() if event["action"] == PeriodAction.CLOSE}
    digests = journal_digests(connection, closed)
    for period in sorted(closed):
        event = closed[period]
        if digests[period] != event["journal_digest"]:
            return EvidenceCheck(control, False, (
                f"period {period} is closed (version {event['version']}, event id {event['id']}) "
                f"with journal digest {event['journal_digest']}, but the journal up to {period} "
                f"now digests to {digests[period]}: entries of a closed period were changed"))
    return EvidenceCheck(control, True, f"{len(events)} events; {len(closed)} periods closed, "
                                        "each with the journal digest its close recorded")


# Why a close has no manifest hash: closes record one from this schema revision on.
MANIFEST_HASH_NOT_RECORDED = "closed before the ledger recorded it, schema revision a4f1c8e2b9d7"


def _manifests(close_dir: Path) -> list[tuple[Path, dict | str]]:
    """(path, manifest or why it cannot be read) for every DIR/YYYY-MM/vN/manifest.json."""
    found = []
    for path in Path(close_dir).glob("*/v*/manifest.json"):
        version = path.parent.name[1:]
        if not version.isdigit():
            continue  # a partial package (vN.partial-PID) is not a close
        try:
            found.append((path, json.loads(path.read_text(encoding="utf-8"))))
        except (OSError, ValueError) as error:
            found.append((path, f"cannot be read as JSON ({error.__class__.__name__})"))
    return sorted(found, key=lambda item: (item[0].parent.parent.name, int(item[0].parent.name[1:])))


def utc_instant(value) -> datetime | None:
    """An instant as the ledger (naive UTC) or a manifest (ISO 8601) writes it, in UTC."""
    try:
        instant = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return instant.replace(tzinfo=UTC) if instant.tzinfo is None else instant.astimezone(UTC)


def _head_differs(head, links: dict[int, str], end: int, chain: str) -> str:
    """Why a recorded head is not the recomputed chain's link there ('' when it is)."""
    if not isinstance(head, dict) or "sequence" not in head or "hash" not in head:
        return f"records no {chain} chain head"
    sequence = _sequence(head)
    if sequence > end:
        # A restored backup is behind the anchors written after it, as a ledger whose last
        # records were removed is: from the database alone the two look the same.
        return (f"records {chain} chain head {sequence}, but the recomputed {chain} chain "
                f"ends at {end}: the ledger is behind its anchors (restored from a backup? "
                f"run the nights after it again), or sealed {chain} records were removed")
    if links.get(sequence) != head["hash"]:
        return (f"records {chain} chain head {sequence} {head['hash']}, but the recomputed "
                f"{chain} chain has {links.get(sequence)} there: what it sealed was rewritten "
                "and re-sealed")
    return ""


def _manifest_differs(path: Path, manifest: dict, event: dict | None, links: _Links) -> str:
    if event is None:
        return (f"the ledger records no close of {manifest.get('period')} version "
                f"{manifest.get('version')}: its period event was removed or altered")
    recorded = event.get("manifest_sha256")
    if recorded and (found := hashlib.sha256(path.read_bytes()).hexdigest()) != recorded:
        return (f"has SHA-256 {found}, but its close (period event id {event['id']}) recorded "
                f"{recorded}: the manifest was altered")
    # With the manifest's hash recorded and matching, a difference is the event's; without
    # it, the event is still sealed on the record chain (checked above): the manifest's.
    altered = "the event was altered" if recorded else (
        "the manifest was altered (or the event, if the record chain check fails too)")
    for key, column, same in (
            ("closed_by", "actor", lambda a, b: a == b),
            ("closed_at", "recorded_at", lambda a, b: utc_instant(a) == utc_instant(b)),
            ("journal_digest", "journal_digest", lambda a, b: a == b)):
        if not same(manifest.get(key), event[column]):
            return (f"says {key} {manifest.get(key)}, but period event id {event['id']} says "
                    f"{column} {event[column]}: {altered}")
    differs = _head_differs(manifest.get("chain_head"), links.journal, links.journal_end,
                            "journal")
    if not differs and isinstance(manifest.get("anchor"), dict):
        differs = _head_differs(manifest["anchor"].get("record_chain"), links.record,
                                links.record_end, "record")
    return differs


def _place_differs(path: Path, manifest: dict) -> str:
    """A package is where its close put it (DIR/YYYY-MM/vN) and holds only what its
    manifest lists: a package moved, swapped with another period's, or given more files
    says something its close never said."""
    place = (path.parent.parent.name, path.parent.name)
    if place != (str(manifest.get("period")), f"v{manifest.get('version')}"):
        return (f"is of {manifest.get('period')} version {manifest.get('version')}, but it is "
                f"in {place[0]}/{place[1]}: the package was moved")
    listed = set(manifest.get("files") or {}) | {path.name}
    if extra := sorted(entry.name for entry in path.parent.iterdir()
                       if entry.name not in listed):
        return f"lists no file {extra[0]}, which is in the package: it was added"
    return ""


def _file_differs(directory: Path, files: dict) -> str:
    for name, sha256 in sorted(files.items()):
        path = directory / name
        if not path.is_file():
            return f"file {name} is missing from the package"
        if hashlib.sha256(path.read_bytes()).hexdigest() != sha256:
            return f"file {name} was altered: its SHA-256 is not the manifest's"
    return ""


def _check_manifests(connection: Connection, close_dir: Path,
                     manifests: list[tuple[Path, dict | str]], links: _Links) -> EvidenceCheck:
    control = f"close manifests in {close_dir}"
    closes = {(event["period"], int(event["version"])): event
              for event in _close_events(connection) if event["action"] == PeriodAction.CLOSE}
    seen = set()
    for path, manifest in manifests:
        if not isinstance(manifest, dict):
            return EvidenceCheck(control, False, f"close manifest {path} {manifest}")
        key = (manifest.get("period"), _whole_number(manifest.get("version")))
        seen.add(key)
        differs = (_place_differs(path, manifest)
                   or _manifest_differs(path, manifest, closes.get(key), links)
                   or _file_differs(path.parent, manifest.get("files") or {}))
        if differs:
            return EvidenceCheck(control, False, f"close manifest {path} {differs}")
    missing = sorted(set(closes) - seen)
    if missing:
        period, version = missing[0]
        return EvidenceCheck(control, False, (
            f"{period} version {version} was closed (period event id "
            f"{closes[missing[0]]['id']}) but {close_dir / period / f'v{version}'} has no "
            "manifest.json: its package was removed or moved"))
    unhashed = sorted(f"{period} v{version}" for (period, version), event in closes.items()
                      if not event.get("manifest_sha256"))
    return EvidenceCheck(control, True, f"{len(manifests)} manifests, each its close's and at "
                                        "the recomputed chains' links" + (
                                            f"; manifest SHA-256 of {', '.join(unhashed)} "
                                            f"not recorded ({MANIFEST_HASH_NOT_RECORDED})"
                                            if unhashed else ""))


def _anchor_lines(path: Path) -> list[tuple[int, dict | str]]:
    try:
        text_lines = anchor_lines(path)  # on object storage: its objects' lines
    except OSError as error:
        return [(0, f"cannot be read ({error.strerror or error.__class__.__name__})")]
    lines: list[tuple[int, dict | str]] = []
    for number, line in enumerate(text_lines, start=1):
        try:
            parsed = json.loads(line)
        except ValueError:
            parsed = "is not a JSON anchor"
        lines.append((number, parsed if isinstance(parsed, dict) else "is not a JSON anchor"))
    return lines


def _after_last_anchor(lines: list[tuple[int, dict | str]], links: _Links) -> str:
    """Seals past the last anchor ('' when there are none): every publish, close, reopen
    and manual journal writes an anchor after it commits, so the ledger's heads are the
    last anchor's. Seals after it were written by something that anchors nothing - or
    appended by whoever rewrote the database. (The last anchor is the one with the highest
    heads: two writers may append their lines out of order.)"""
    number, last = max(((number, anchor) for number, anchor in lines), key=lambda item: (
        _sequence(item[1].get("record_chain")), _sequence(item[1].get("journal_chain")),
        item[0]))
    for chain, end in (("journal", links.journal_end), ("record", links.record_end)):
        anchored = _sequence(last.get(f"{chain}_chain"))
        if end > anchored:
            return (f"{chain} seals {anchored + 1}..{end} are after the last anchor (line "
                    f"{number}, {last.get('event')} at {last.get('at')}): not anchored (a run "
                    "stopped before its anchor? the next publish or close anchors them; "
                    "otherwise they were appended behind the ledger)")
    return ""


def _check_anchors(connection: Connection, path: Path, lines: list[tuple[int, dict | str]],
                   links: _Links) -> EvidenceCheck:
    path = object_storage_url(path) or path  # an s3:// prefix shown as its URL
    control = f"anchors in {path}"
    ledger = known_ledger_id(connection)
    checked = 0
    for number, anchor in lines:
        if not isinstance(anchor, dict):
            return EvidenceCheck(control, False, f"anchor file {path} line {number} {anchor}")
        if anchor.get("ledger") != ledger:
            # An anchor file is one ledger's: a line naming another ledger is either a
            # file mixed up with another ledger's or this ledger's id changed to skip them.
            return EvidenceCheck(control, False, (
                f"anchor line {number} ({anchor.get('event')} at {anchor.get('at')}) is of "
                f"ledger {anchor.get('ledger')}, but this ledger is {ledger}: the anchor "
                "file is another ledger's, or this ledger's id was changed"))
        differs = (_head_differs(anchor.get("journal_chain"), links.journal, links.journal_end,
                                 "journal")
                   or _head_differs(anchor.get("record_chain"), links.record, links.record_end,
                                    "record"))
        if differs:
            return EvidenceCheck(control, False, (
                f"anchor line {number} ({anchor.get('event')} at {anchor.get('at')}) {differs}"))
        checked += 1
    if not checked:
        return EvidenceCheck(control, False, f"the anchor file has no anchor of this ledger "
                                             f"({ledger})")
    if unanchored := _after_last_anchor(lines, links):
        return EvidenceCheck(control, False, unanchored)
    return EvidenceCheck(control, True, f"{checked} anchors, each at the recomputed chains' "
                                        "links")
