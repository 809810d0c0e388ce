"""Month-end close and reopen: the period lifecycle accountants run.

close: periods close in order -> completeness (every day of the period has a published
nightly batch; quiet days are listed) -> reconciliations (a failure refuses the lock
unless exceptions are accepted with a reason, which is recorded) -> every report of the
catalogue (`reports/catalogue.py`) -> the package, written beside `OUT/YYYY-MM/vN/` -> the
lock, recorded (and sealed onto the record chain) with who, when, why and the journal
digest -> the package renamed to `OUT/YYYY-MM/vN/` -> an anchor of both chains' heads
appended to the anchor file (`ledger/anchors.py`). A version directory already there
stops the close: a package is never overwritten. Closing a closed period changes nothing.
reopen is explicit and recorded, and the next close writes a new package version.

Both need a person (`creditbooks/actors.py`: --actor or $CREDITBOOKS_ACTOR, never the
operating-system user): a close by one the policy's `[controls] closers` name (empty:
anyone), a reopen approved by one of its `approvers` who is not the requester.

Where the work runs, and why it cannot wait on itself: `creditbooks/close/executors.py`.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from concurrent.futures import Executor, Future, ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from creditbooks.actors import resolve_actor
from creditbooks.close.executors import (
    digest_and_head,
    journal_reader,
    report_threads,
    stop,
    submit_in_order,
)
from creditbooks.journals import unapproved_drafts
from ledger.anchors import ANCHORS_ENVIRONMENT_VARIABLE, Anchor, anchor_file, write_anchor
from ledger.digest import entry_count, journal_digest
from ledger.domain import BatchStatus, PeriodAction
from ledger.evidence import utc_instant
from ledger.locks import locked_periods, period_states, record_period_event, take_posting_lock
from ledger.periods import Period
from ledger.policy_versions import keep_policy_version
from ledger.store import ReadOnceStore, Store
from reports.catalogue import CATALOGUE, EMPTY_REPORT_COLUMNS, TOTALLED_COLUMNS, report_builders
from reports.chart_data import close_charts
from reports.completeness import day_statuses, missing_days
from reports.kpis import period_figures
from reports.line_totals import line_totals_query
from reports.outputs.package import (
    PackageExistsError,
    PackageWriter,
    move_package_into_place,
    refuse_existing_package,
)
from reports.outputs.verify_package import verify_package
from reports.reconciliations import reconciliations_of, unbalanced_entries_query
from rules.policy import Policy


class CloseRefusedError(RuntimeError):
    """The period cannot be closed (or reopened); the message says what to do."""


@dataclass(frozen=True)
class CloseOutcome:
    period: Period
    status: str  # closed | already closed
    version: int
    package: Path | None
    empty_days: tuple[str, ...]
    failed_reconciliations: tuple[str, ...]


@dataclass(frozen=True)
class _Closing:
    """One close under way: what it was asked for and what it found before reading."""

    store: Store
    policy: Policy
    period: Period
    out: Path
    archive_root: Path
    accept_exceptions: bool
    reason: str
    actor: str
    empty_days: tuple[str, ...]
    entries: int  # the period's journal entries, counted before anything was read


@dataclass(frozen=True)
class _Written:
    """A package written in its partial directory, not yet locked nor in place."""

    version: int
    package: PackageWriter
    manifest: Path
    journal_digest: str
    failed_reconciliations: tuple[str, ...]
    recorded_at: datetime


def close_period(store: Store, policy: Policy, period: Period, out: Path, archive_root: Path,
                 accept_exceptions: bool = False, reason: str = "",
                 actor: str | None = None, anchors: Path | None = None) -> CloseOutcome:
    """anchors: the anchor file (`ledger.anchors.anchor_file`: else $CREDITBOOKS_ANCHORS,
    else beside `out`)."""
    period = Period(period)  # a malformed period is refused before anything is read
    actor = _closer(policy, period, actor)
    out = Path(out)
    with store.engine.connect() as connection:
        states = period_states(connection)
    if states.get(period, {}).get("action") == PeriodAction.CLOSE:
        _finish_interrupted_package(out, states[period])
        return CloseOutcome(period, "already closed", int(states[period]["version"]), None, (), ())
    if accept_exceptions and not reason.strip():
        raise CloseRefusedError("--accept-exceptions needs --reason saying why")
    _require_no_drafts(store, period, accept_exceptions)
    empty_days, entries = _require_ready(store, period, out, states)
    closing = _Closing(store, policy, period, out, archive_root, accept_exceptions, reason,
                       actor, empty_days, entries)
    written = _write_package(closing)
    _require_tied_out(closing, written)
    if not _lock(closing, written):
        return CloseOutcome(period, "already closed", written.version, None, empty_days,
                            written.failed_reconciliations)
    # Into place only once the lock is committed: a package in place is a close recorded.
    manifest = written.package.move_into_place()
    write_anchor(store, f"close {period} v{written.version}", anchor_file(anchors, out))
    return CloseOutcome(period, "closed", written.version, manifest.parent, empty_days,
                        written.failed_reconciliations)


def _require_no_drafts(store: Store, period: Period, accept_exceptions: bool) -> None:
    """Manual journals dated in the period and still drafts hold its close (their entries
    would be missing from it), unless exceptions are accepted with a reason."""
    drafts = unapproved_drafts(store, period)
    if drafts and not accept_exceptions:
        raise CloseRefusedError(
            f"{period} has {len(drafts)} manual journal(s) not approved: {', '.join(drafts)}; "
            "approve or reject them (`creditbooks journal approve|reject`), or close with "
            "--accept-exceptions --reason")


def _require_ready(store: Store, period: Period, out: Path,
                   states: dict) -> tuple[tuple[str, ...], int]:
    """Refuse a close out of order, onto a written version or of an incomplete period.
    Returns the period's quiet days and its journal entries, counted."""
    _require_previous_closed(store, period, states)
    _refuse_written_version(out, period, _next_version(store, period))
    empty_days = require_complete(store, period)
    with store.engine.connect() as connection:
        # Counted before anything is read and again under the lock: the same count means
        # nothing was posted into the period while it was being reconciled and reported.
        entries = entry_count(connection, period)
    return empty_days, entries


def _write_package(closing: _Closing) -> _Written:
    """Reconcile, build every report and write the package into its partial directory;
    refused if a reconciliation fails and exceptions were not accepted."""
    store, policy, period = closing.store, closing.policy, closing.period
    books = ReadOnceStore(store)  # the reports ask for the same lots and slices many times
    accounts = policy.accounts
    with report_threads() as threads, journal_reader(closing.entries) as reader:
        digested = _read_every_line(books, reader, store.url, period)
        # Submitted before the reports: a report may wait on the reconciliations.
        reconciling = list(submit_in_order(threads, enumerate(reconciliations_of(
            books, period, accounts.deferred_revenue, accounts.cash_clearing,
            accounts.sales_tax))).values())
        figures_of = period_figures(books, policy)
        builders = report_builders(books, policy, period, closing.archive_root, lambda: [
            reconciliation.result() for reconciliation in reconciling], figures_of)
        building = submit_in_order(threads, ((name, builders[name]) for name in sorted(
            builders, key=lambda name: not CATALOGUE[name].started_first)))
        failed = _require_reconciled(closing, reconciling, threads, reader)
        version = _next_version(store, period)
        _refuse_written_version(closing.out, period, version)
        package = PackageWriter(closing.out / period / f"v{version}", period, list(builders),
                                TOTALLED_COLUMNS, EMPTY_REPORT_COLUMNS)
        _add_policy_text(package, policy)
        reports = _add_as_built(package, building, list(builders))
        charts = close_charts(books, policy, period, reports, figures_of)
        recorded_at = datetime.now(UTC).replace(tzinfo=None)
        manifest = package.finish(reports, charts, lambda: _manifest_facts(
            closing, version, recorded_at, failed, digested.result()))
        digest = digested.result()[0]
    return _Written(version, package, manifest, digest, failed, recorded_at)


POLICY_FILE_NAME = "policy.toml"


def _add_policy_text(package: PackageWriter, policy: Policy) -> None:
    """The policy's text in force for the period, as the package's `policy.toml`: the
    manifest hashes it and names it (`policy_file`), and verify-package checks that it
    hashes to the manifest's policy_version. A policy built in memory has no text."""
    if policy.text:
        (package.directory / POLICY_FILE_NAME).write_text(policy.text, encoding="utf-8")


def _read_every_line(books: ReadOnceStore, reader: Executor, database_url: str,
                     period: Period) -> Future:
    """Start the reads of every journal line on `reader`: the totals most statements are
    sums of, the entries that do not balance, then the digest (needed last, returned)."""
    for sql, parameters in (line_totals_query(period), unbalanced_entries_query(period)):
        books.read_elsewhere(reader, sql, **parameters)
    return reader.submit(digest_and_head, database_url, period)


def _require_reconciled(closing: _Closing, reconciling: list[Future],
                        threads: ThreadPoolExecutor, reader: Executor) -> tuple[str, ...]:
    """The names of the failed reconciliations; with exceptions not accepted, a failure
    stops the reports that have not started and refuses the close."""
    reconciliations = [reconciliation.result() for reconciliation in reconciling]
    failed = tuple(r.name for r in reconciliations if not r.passed)
    if failed and not closing.accept_exceptions:
        stop(threads, reader)
        raise _refusal(closing.period, reconciliations)
    return failed


def _add_as_built(package: PackageWriter, building: dict[str, Future],
                  names: Iterable[str]) -> dict[str, list[dict]]:
    """Each report's files written as it comes, while the others are worked out. Returns
    every report's rows, in the order of `names`."""
    name_of = {future: name for name, future in building.items()}
    for built in as_completed(name_of):
        package.add(name_of[built], built.result())
    return {name: building[name].result() for name in names}


def _manifest_facts(closing: _Closing, version: int, recorded_at: datetime,
                    failed: tuple[str, ...], digested: tuple) -> dict:
    digest, lines, head, record_head, ledger = digested
    return {"version": version, "closed_by": closing.actor,
            "closed_at": recorded_at.replace(tzinfo=UTC).isoformat(),
            "policy_version": closing.policy.version, "journal_digest": digest,
            # The chart the package was written under: verify-package reads its accounts.
            "accounts": asdict(closing.policy.accounts),
            **({"policy_file": POLICY_FILE_NAME} if closing.policy.text else {}),
            "journal_lines": lines,
            "chain_head": {"sequence": head.sequence, "hash": head.chain_hash},
            "empty_days": list(closing.empty_days), "reconciliations_failed": list(failed),
            "accepted_exceptions_reason": closing.reason if failed else "",
            # The heads as the package saw them; the anchor file gets them again
            # once the lock (itself sealed) is committed.
            "anchor": Anchor(ledger, f"close {closing.period} v{version} (package)",
                             recorded_at.replace(tzinfo=UTC).isoformat(), head,
                             record_head).as_dict()}


def _require_tied_out(closing: _Closing, written: _Written) -> None:
    """Read back by the independent reader before the lock, its trial balances tied to the
    ledger's own sums of its journal lines: a package that does not tie out is never the
    locked one (the next close replaces it)."""
    with closing.store.engine.connect() as connection:
        problems = verify_package(written.manifest.parent, ledger=connection,
                                  ledger_manifest_checks=False)
        if problems:  # a posting that raced the reads comes first
            _require_unchanged(connection, closing.period, closing.entries)
    if problems:
        raise CloseRefusedError(f"period {closing.period} not locked: the package does not tie "
                                f"out ({len(problems)} problem(s)), the first: {problems[0]}")


def _lock(closing: _Closing, written: _Written) -> bool:
    """The lock, recorded with who, when, why and the digest, under the posting lock and
    only if the period's entries are the ones counted. False: another close locked it."""
    period = closing.period
    with closing.store.transaction() as connection:
        take_posting_lock(connection)
        if period in locked_periods(connection):
            return False
        _require_unchanged(connection, period, closing.entries)
        _refuse_written_version(closing.out, period, written.version)
        keep_policy_version(connection, closing.policy.version, closing.policy.text,
                            closing.actor, f"close {period}", written.recorded_at)
        record_period_event(connection, period, PeriodAction.CLOSE, written.version,
                            closing.actor, closing.reason,
                            bool(written.failed_reconciliations), written.journal_digest,
                            written.recorded_at, manifest_sha256=hashlib.sha256(
                                written.manifest.read_bytes()).hexdigest())
    return True


def _require_unchanged(connection, period: Period, entries: int) -> None:
    """Refuse the lock if entries were posted into the period after the close counted them."""
    if entry_count(connection, period) != entries:
        raise CloseRefusedError(f"period {period} not locked: entries were posted into it "
                                "while it was closing; run the close again")


def _refuse_written_version(out: Path, period: Period, version: int) -> None:
    """A version directory already there stops the close: a package is never overwritten
    (the ledger counting fewer closes than there are packages is itself a sign that its
    period events were removed)."""
    try:
        refuse_existing_package(out / period / f"v{version}")
    except PackageExistsError as error:
        raise CloseRefusedError(f"period {period} not locked: {error}") from None


def _finish_interrupted_package(out: Path, close_event: dict) -> None:
    """A close killed after its lock committed and before its package was renamed into
    place left it whole in a partial directory: its manifest's close instant and digest
    are the event's, so it is moved into place now."""
    directory = out / close_event["period"] / f"v{close_event['version']}"
    if directory.exists():
        return
    for partial in sorted(directory.parent.glob(f"{directory.name}.partial-*")):
        try:
            manifest = json.loads((partial / "manifest.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # not finished: a close that never locked left it
        if (manifest.get("journal_digest") == close_event["journal_digest"] and utc_instant(
                manifest.get("closed_at")) == utc_instant(close_event["recorded_at"])):
            move_package_into_place(partial, directory)
            return


def _refusal(period: Period, reconciliations: list) -> CloseRefusedError:
    details = "; ".join(f"{r.name}: " + ("; ".join(r.items[:3]) or ", ".join(
        f"{line.scope} difference {line.difference}" for line in r.lines if line.difference))
        for r in reconciliations if not r.passed)
    return CloseRefusedError(f"period {period} not locked: reconciliation failed: {details}. "
                             "Fix the cause, or close with --accept-exceptions --reason.")


def _next_version(store: Store, period: Period) -> int:
    return 1 + int(store.read_frame(
        "SELECT COUNT(*) AS n FROM period_events WHERE period = :period AND action = :close",
        period=period, close=PeriodAction.CLOSE)["n"].iloc[0])


def current_actor() -> str:
    """$CREDITBOOKS_ACTOR, else refused: kept for callers of the old name; new code calls
    `creditbooks.actors.resolve_actor` with the name given and what it is for."""
    return resolve_actor(None, "this action")


def _closer(policy: Policy, period: Period, actor: str | None) -> str:
    """The close's actor, named and one the policy lets close."""
    actor = resolve_actor(actor, f"closing {period}")
    if not policy.may_close(actor):
        raise CloseRefusedError(f"{actor} may not close {period}: the policy's [controls] closers "
                                f"are {', '.join(sorted(policy.closers))}")
    return actor


def _reopen_approver(policy: Policy, period: Period, actor: str,
                     approved_by: str | None) -> str:
    """The reopen's approver: named, not the requester, one of the policy's approvers."""
    approver = (approved_by or "").strip()
    if not approver:
        raise CloseRefusedError(f"reopening {period} needs --approved-by NAME: an approver other "
                                f"than {actor}")
    if approver == actor:
        raise CloseRefusedError(f"reopening {period}: {actor} cannot approve their own reopen; "
                                "--approved-by must name another person")
    if not policy.may_approve(approver):
        raise CloseRefusedError(f"reopening {period}: {approver} is not an approver in the "
                                f"policy's [controls] approvers ({', '.join(sorted(policy.approvers))})")
    return approver


def reopen_period(store: Store, period: Period, reason: str, actor: str | None = None,
                  anchors: Path | None = None, *, policy: Policy,
                  approved_by: str | None = None) -> int:
    """anchors: where to append an anchor of the reopen (else $CREDITBOOKS_ANCHORS, else
    none: a reopen knows no close directory to put one beside). The reopen is recorded
    with its requester (`actor`) and its approver (`approved_by`)."""
    period = Period(period)
    actor = resolve_actor(actor, f"reopening {period}")
    approver = _reopen_approver(policy, period, actor, approved_by)
    if not reason.strip():
        raise CloseRefusedError("reopening a period needs --reason saying why")
    with store.transaction() as connection:
        states = period_states(connection)
        if states.get(period, {}).get("action") != PeriodAction.CLOSE:
            raise CloseRefusedError(f"period {period} is not closed")
        later = sorted(p for p, state in states.items()
                       if p > period and state["action"] == PeriodAction.CLOSE)
        if later:
            raise CloseRefusedError(f"reopen {', '.join(reversed(later))} first: periods reopen "
                                    "in reverse order")
        digest, _ = journal_digest(connection, period)
        version = int(states[period]["version"])
        record_period_event(connection, period, PeriodAction.REOPEN, version,
                            actor, reason, False, digest,
                            datetime.now(UTC).replace(tzinfo=None), approved_by=approver)
    if anchors is not None or os.environ.get(ANCHORS_ENVIRONMENT_VARIABLE):
        write_anchor(store, f"reopen {period}", anchor_file(anchors, Path(".")))
    return version


def _require_previous_closed(store: Store, period: Period, states: dict) -> None:
    first_batch = store.read_frame("SELECT MIN(business_date) AS first FROM batches")["first"].iloc[0]
    if first_batch is None:
        return
    candidate = Period.of(first_batch if hasattr(first_batch, "year")
                          else datetime.fromisoformat(str(first_batch)).date())
    open_before = []
    while candidate < period:
        if states.get(candidate, {}).get("action") != PeriodAction.CLOSE:
            open_before.append(candidate)
        candidate = candidate.next()
    if open_before:
        raise CloseRefusedError(f"close {', '.join(open_before)} first: periods close in order")


def require_complete(store: Store, period: Period) -> tuple[str, ...]:
    """The period's quiet days (published batches with nothing to post); refused unless
    every day of the period has a published nightly batch."""
    statuses = day_statuses(store, period)
    if missing := missing_days(statuses):
        shown = ", ".join(missing[:10]) + (f" (+{len(missing) - 10} more)" if len(missing) > 10 else "")
        raise CloseRefusedError(f"period {period} is not complete: no published nightly batch for "
                                f"{shown}")
    return tuple(day for day, status in statuses.items() if status == BatchStatus.EMPTY)
