"""Manual journals, end to end: import as drafts, approve (a second person; it posts),
reject, reverse, list, and the reversals of accruals that come due.

Import checks every journal of a file (rules/manual_journals.py) against what the ledger
knows, and stores all of them as drafts or none. Re-importing a journal with the same ref
and the same content changes nothing; the same ref with other content is a conflict.

Only an approved journal posts, through the one posting path of the nights
(`creditbooks.night.posting.post`: functional amounts, batch, period, policy version,
then `ledger.store.post_journal`'s balance and period-lock checks). Its entry goes into
the published nightly batch of its own date, keeping that batch's business day for every
report that reads entries by their batch, and is sealed onto the hash chain at once
(`ledger.chain.seal_entries`), so it is in statements, traces, close packages, exports and
`verify` like a night's entry. A journal dated on a day whose night has not been published
waits: approval is refused until it is.

A reversal is a new journal (`REF/reversal`) with every line the other way round, dated
on the day asked. It posts like any journal, so no one posts it alone: `reverse` stores it
as a draft prepared by the reverser (anyone may prepare one, as anyone may import a
journal: with a single approver, the approver must still be able to post a reversal
someone else prepared), and its approval by one of the policy's approvers, not the
reverser, posts it; then the original becomes `reversed`, never edited. A journal
with `reverse_on` (an accrual) is reversed on that date, posted at once: at approval when
that date's night is already published, otherwise by `reverse_due` when that night
publishes; that reversal is prepared by "system (reverse_on of REF)" and approved by the
accrual's approver, whose approval of the accrual already decided it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
from sqlalchemy import Connection

from creditbooks.night.lots import lots_by_id
from creditbooks.night.posting import Night, all_rates, post
from intake.beancount_journals import read_journal_file
from intake.manual_journals import JOURNAL_ROW_NUMBER, ROW_NUMBER, ManualJournalFileError
from ledger.chain import seal_entries
from ledger.domain import BatchStatus, ManualJournalStatus, batch_id_for
from ledger.locks import locked_periods
from ledger.manual_journals import (
    journal_lines,
    journal_record,
    journals_in,
    record_lot_consumption,
    reversals_due,
    set_status,
    store_drafts,
    stored_content_hashes,
)
from ledger.periods import Period, business_day
from ledger.store import Store, batch_for_date
from reports.close_reports import iso_instants
from reports.manual_journals import INSTANT_COLUMNS
from rules.fx import positions
from rules.lot_state import credits_left_micro
from rules.manual_journals import (
    LedgerFacts,
    check_journals,
    content_hash,
    entry_id_of,
    lot_change_problems,
    manual_journal_batch,
    reversal_lines,
)
from rules.policy import Policy

REVERSAL_SUFFIX = "/reversal"


class ManualJournalError(ValueError):
    """A manual journal action refused; `problems` are its one-line reasons."""

    def __init__(self, problems: list[str] | str):
        self.problems = tuple([problems] if isinstance(problems, str) else problems)
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True)
class ImportOutcome:
    imported: tuple[str, ...]
    unchanged: tuple[str, ...]  # imported before with the same content


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _require_person(name: str, action: str) -> str:
    if not name or not name.strip():
        raise ManualJournalError(f"{action} needs a person: give --by NAME")
    return name.strip()


def _require_approver(policy: Policy, person: str, ref: str, action: str) -> None:
    if not policy.may_approve(person):
        raise ManualJournalError(f"{person} may not {action} journal {ref}: not one of the "
                                 "policy's [controls] approvers")


def ledger_facts(connection: Connection, purchase_ids: pd.Series) -> LedgerFacts:
    """The lots a file names (with what each still holds), the rates and the locks."""
    named = purchase_ids[purchase_ids != ""].drop_duplicates()
    return LedgerFacts(_lot_facts(lots_by_id(connection, named)), all_rates(connection),
                       frozenset(str(period) for period in locked_periods(connection)))


def _lot_facts(lots: pd.DataFrame) -> pd.DataFrame:
    """What a journal is checked against on each lot: what it owes, whose, what is left."""
    return positions(lots).assign(customer_id=lots["customer_id"].to_numpy(),
                                  kind=lots["kind"].to_numpy(),
                                  credits_left_micro=credits_left_micro(lots).to_numpy())


def import_journals(store: Store, policy: Policy, path: Path, prepared_by: str,
                    prepared_at: datetime | None = None) -> ImportOutcome:
    """Check every journal of the file and store them all as drafts, or none."""
    prepared_by = _require_person(prepared_by, "an import")
    try:
        source = read_journal_file(path)
    except ManualJournalFileError as error:  # each problem on its line, as the checks' are
        raise ManualJournalError(list(error.problems)) from None
    with store.transaction() as connection:
        checked = check_journals(source.rows, source.file_name, policy,
                                 ledger_facts(connection, source.rows["purchase_id"]),
                                 source.naming)
        problems = list(checked.problems)
        stored = stored_content_hashes(connection, sorted(set(source.rows["journal_ref"])))
        unchanged = [ref for ref in checked.journals["ref"]
                     if stored.get(ref) == content_hash_of(checked, ref)]
        journal_rows = source.rows.get(JOURNAL_ROW_NUMBER, source.rows[ROW_NUMBER])
        for ref in sorted(set(stored) - set(unchanged)):
            first_row = int(journal_rows[source.rows["journal_ref"] == ref].min())
            problems.append(f"{source.naming.where(source.file_name, first_row, 'journal_ref')}"
                            f": journal {ref} was imported before with other content; a "
                            "correction is a new journal with its own ref")
        if problems:
            raise ManualJournalError(problems)
        new = ~checked.journals["ref"].isin(unchanged)
        store_drafts(connection, checked.journals[new],
                     checked.lines[checked.lines["ref"].isin(checked.journals.loc[new, "ref"])],
                     prepared_by, prepared_at or _now(), str(path), source.sha256)
    return ImportOutcome(tuple(checked.journals.loc[new, "ref"]), tuple(unchanged))


def content_hash_of(checked, ref: str) -> str:
    return checked.journals.loc[checked.journals["ref"] == ref, "content_hash"].iloc[0]


def _record(connection: Connection, ref: str) -> dict:
    record = journal_record(connection, ref)
    if record is None:
        raise ManualJournalError(f"journal {ref} does not exist; `creditbooks journal list` "
                                 "shows the journals")
    return record


def _require_status(record: dict, status: ManualJournalStatus, action: str) -> None:
    if record["status"] != status:
        raise ManualJournalError(f"journal {record['ref']} is {record['status']}; only a "
                                 f"journal that is {status} can be {action}")


def approve(store: Store, policy: Policy, ref: str, approved_by: str,
            approved_at: datetime | None = None) -> str:
    """Approve a draft (not by its preparer) and post it; returns its entry id."""
    approved_by = _require_person(approved_by, "an approval")
    approved_at = approved_at or _now()
    with store.transaction() as connection:
        record = _record(connection, ref)
        _require_status(record, ManualJournalStatus.DRAFT, "approved")
        if approved_by == record["prepared_by"]:
            raise ManualJournalError(f"journal {ref} was prepared by {approved_by}; another "
                                     "person approves it (maker-checker)")
        _require_approver(policy, approved_by, ref, "approve")
        day = _as_date(record["business_date"])
        entry_id = _post(connection, policy, ref, day, journal_lines(connection, ref),
                         approved_at)
        set_status(connection, ref, ManualJournalStatus.APPROVED, ManualJournalStatus.DRAFT,
                   approved_by=approved_by, approved_at=approved_at, entry_id=entry_id)
        if record["reverses_ref"]:  # a reversal's approval reverses its original
            set_status(connection, record["reverses_ref"], ManualJournalStatus.REVERSED,
                       ManualJournalStatus.APPROVED, reversed_by=record["prepared_by"],
                       reversed_at=approved_at)
        reverse_on = record["reverse_on"]
        if reverse_on is not None and _published(connection, _as_date(reverse_on)):
            _reverse_accrual(connection, policy, ref, approved_at)
    return entry_id


def reject(store: Store, policy: Policy, ref: str, rejected_by: str, reason: str,
           rejected_at: datetime | None = None) -> None:
    """Reject a draft (by one of the policy's approvers); a rejected reversal leaves its
    original approved, to be reversed again."""
    rejected_by = _require_person(rejected_by, "a rejection")
    if not reason.strip():
        raise ManualJournalError(f"rejecting journal {ref} needs a --reason")
    with store.transaction() as connection:
        record = _record(connection, ref)
        _require_status(record, ManualJournalStatus.DRAFT, "rejected")
        _require_approver(policy, rejected_by, ref, "reject")
        set_status(connection, ref, ManualJournalStatus.REJECTED, ManualJournalStatus.DRAFT,
                   rejected_by=rejected_by, rejected_at=rejected_at or _now(), reason=reason)
        if record["reverses_ref"]:
            set_status(connection, record["reverses_ref"], ManualJournalStatus.APPROVED,
                       ManualJournalStatus.APPROVED, reversal_ref=None)


def reverse(store: Store, policy: Policy, ref: str, on: date, reversed_by: str,
            reversed_at: datetime | None = None) -> str:
    """Prepare the reversal of an approved journal, dated `on`, as a draft of the reverser;
    an approver who is not the reverser posts it by approving. Returns the reversal's ref."""
    reversed_by = _require_person(reversed_by, "a reversal")
    with store.transaction() as connection:
        record = _record(connection, ref)
        _require_status(record, ManualJournalStatus.APPROVED, "reversed")
        if record["reversal_ref"]:
            raise ManualJournalError(f"journal {ref} already has reversal "
                                     f"{record['reversal_ref']} waiting for approval; approve "
                                     "or reject it")
        reversal_ref = _draft_reversal(connection, record, on, reversed_by,
                                       reversed_at or _now())
        set_status(connection, ref, ManualJournalStatus.APPROVED, ManualJournalStatus.APPROVED,
                   reversal_ref=reversal_ref)
    return reversal_ref


def reverse_due(connection: Connection, policy: Policy, day: date,
                recorded_at: datetime | None = None) -> list[str]:
    """Reverse every approved accrual whose `reverse_on` is on or before `day`, dated on
    its `reverse_on`, prepared by the system and approved by the accrual's approver (the
    night's publish calls this once the day's batch is published).

    The lots are not checked again: the night's publish must not fail on an accrual. A
    reversal onto a lot that has closed since leaves its value on the lot, and the lots
    tie-out control (`creditbooks check`) names that lot for a journal to clear."""
    reversed_refs = []
    for ref in reversals_due(connection, day):
        reversed_refs.append(_reverse_accrual(connection, policy, ref, recorded_at or _now(),
                                              check_lots=False))
    return reversed_refs


def _reverse_accrual(connection: Connection, policy: Policy, ref: str, at: datetime,
                     check_lots: bool = True) -> str:
    """Post an approved accrual's reversal on its `reverse_on`: prepared by the system,
    approved by the accrual's approver (who approved the reversal with the accrual)."""
    record = _record(connection, ref)
    system = f"system (reverse_on of {ref})"
    reversal_ref = _draft_reversal(connection, record, _as_date(record["reverse_on"]), system,
                                   at)
    entry_id = _post(connection, policy, reversal_ref, _as_date(record["reverse_on"]),
                     journal_lines(connection, reversal_ref), at, check_lots)
    set_status(connection, reversal_ref, ManualJournalStatus.APPROVED,
               ManualJournalStatus.DRAFT, approved_by=record["approved_by"], approved_at=at,
               entry_id=entry_id)
    set_status(connection, ref, ManualJournalStatus.REVERSED, ManualJournalStatus.APPROVED,
               reversed_by=system, reversed_at=at, reversal_ref=reversal_ref)
    return reversal_ref


def _draft_reversal(connection: Connection, record: dict, on: date, by: str,
                    at: datetime) -> str:
    """Store the reversal of an approved journal as a draft prepared by `by`; its ref."""
    ref = record["ref"]
    if on < _as_date(record["business_date"]):
        raise ManualJournalError(f"journal {ref} is dated {record['business_date']}; its "
                                 f"reversal cannot be dated before it ({on})")
    reversal_ref = _unused_reversal_ref(connection, ref)
    lines = reversal_lines(journal_lines(connection, ref).assign(functional_minor=0)).assign(
        ref=reversal_ref)
    lines["memo"] = f"reversal of {ref}: " + lines["memo"]
    hashed = content_hash(reversal_ref, lines, on, None)
    store_drafts(connection, pd.DataFrame([{
        "ref": reversal_ref, "business_date": on, "period": Period.of(on), "reverse_on": None,
        "content_hash": hashed, "reverses_ref": ref}]), lines, by, at, record["source_file"],
        record["source_sha256"])
    return reversal_ref


def _unused_reversal_ref(connection: Connection, ref: str) -> str:
    """REF/reversal; after a rejected reversal, REF/reversal-2 and so on (a rejected
    journal keeps its ref)."""
    candidate, attempt = ref + REVERSAL_SUFFIX, 1
    while journal_record(connection, candidate) is not None:
        attempt += 1
        candidate = f"{ref}{REVERSAL_SUFFIX}-{attempt}"
    return candidate


def _published(connection: Connection, day: date) -> bool:
    batch = batch_for_date(connection, day)
    return batch is not None and BatchStatus(batch["status"]).is_published


def _post(connection: Connection, policy: Policy, ref: str, day: date, lines: pd.DataFrame,
          recorded_at: datetime, check_lots: bool = True) -> str:
    """Post the journal into its date's published nightly batch and seal it; its entry id.
    check_lots: refuse it when its lots can no longer take their changes."""
    if not _published(connection, day):
        raise ManualJournalError(f"journal {ref} is dated {day}, whose night has not been "
                                 "published; a manual journal posts into its day's night: "
                                 f"run `creditbooks nightly --date {day}` first")
    night = Night(business_day(day, policy.reporting_timezone), batch_id_for(day), policy,
                  Path(), recorded_at)
    functional = policy.functional_currency
    lines = lines.assign(functional_minor=lines["amount_minor"].where(
        lines["currency"] == functional, 0).astype("int64"))
    journal = manual_journal_batch(ref, lines, day)
    lots = lots_by_id(connection, lines["purchase_id"].dropna())
    # Nights may have run since the import: the lots must still take the change.
    problems = lot_change_problems(lines, _lot_facts(lots)) if check_lots else []
    if problems:
        raise ManualJournalError([f"journal {ref} {problem}" for problem in problems])
    post(connection, night, journal, positions(lots))
    _record_lot_consumption(connection, ref, lines, lots)
    entry_id = entry_id_of(ref)
    seal_entries(connection, night.batch_id, [entry_id])
    return entry_id


def _record_lot_consumption(connection: Connection, ref: str, lines: pd.DataFrame,
                            lots: pd.DataFrame) -> None:
    """On each line that changes its lot: what the lot had consumed as the journal posts,
    from which the nights value its later use (rules/lot_state.py)."""
    changing = lines[lines["deferred_change_minor"] != 0]
    lot = lots.set_index("purchase_id").loc[changing["purchase_id"]]
    record_lot_consumption(connection, ref, pd.DataFrame({
        "line_number": changing["line_number"].to_numpy(),
        "lot_consumed_micro": (lot["credits_used_micro"]
                               + lot["credits_refunded_micro"]).to_numpy(),
        "lot_consumed_value_minor": (lot["usage_value_minor"]
                                     + lot["refunded_value_minor"]).to_numpy()}))


def _as_date(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def list_journals(store: Store, period: Period | None = None,
                  status: ManualJournalStatus | None = None) -> list[dict]:
    """The journals (of a period, of a status), with who and when, for people to read."""
    with store.transaction() as connection:
        journals = journals_in(connection, period, status)
    journals = journals.assign(**{column: iso_instants(journals[column])
                                  for column in INSTANT_COLUMNS})
    columns = ["ref", "business_date", "status", "prepared_by", "prepared_at", "approved_by",
               "approved_at", "rejected_by", "reason", "reversed_by", "reverse_on",
               "reversal_ref", "reverses_ref", "entry_id"]
    return [{column: "" if value is None or value is pd.NaT else str(value)
             for column, value in row.items()} for row in journals[columns].to_dict("records")]


def unapproved_drafts(store: Store, period: Period) -> list[str]:
    """The drafts dated in the period, as `REF (date, prepared by NAME)`."""
    with store.transaction() as connection:
        drafts = journals_in(connection, period, ManualJournalStatus.DRAFT)
    return [f"{row.ref} ({row.business_date}, prepared by {row.prepared_by})"
            for row in drafts.itertuples(index=False)]
