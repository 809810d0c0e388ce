"""Manual journals checked before they are stored: what a person's file must say.

Pure: the caller reads the file (intake/manual_journals.py) and what the ledger knows (the
lots, the rates, the locked periods) and passes them in; nothing here touches a database.
Every problem is one line naming the file, the row and the column.

A journal is the rows sharing a `journal_ref`. Each row is one line: a debit or a credit
(exactly one, positive, with at most the currency's minor digits: exact, via Decimal and
`ledger.money`), on an account of the chart (the policy's roles and `[chart]
manual_accounts`), dated in an open period. A line on deferred revenue names the lot it
changes (`purchase_id` of an existing lot in the line's currency) and may not take more
than the lot still holds. A journal balances in each currency and, translated as the
nights translate (rules/fx.py: a lot's own rate on its deferred lines, the rate of the
journal's date on the others, the remainder on the first line), in the functional currency.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date

import pandas as pd

from intake.manual_journals import (
    CSV_NAMING,
    JOURNAL_LEVEL_COLUMNS,
    JOURNAL_ROW_NUMBER,
    SourceNaming,
)
from ledger.domain import LotKind
from ledger.journal import EntryKind, JournalBatch, journal_errors, number_lines
from ledger.money import UnknownCurrencyError, format_minor, parse_amount_minor
from ledger.periods import Period
from rules.fx import FxRateMissingError, translate
from rules.policy import Policy

ENTRY_PREFIX = "manual/"
JOURNAL_COLUMNS = ["ref", "business_date", "period", "reverse_on", "content_hash"]
LINE_COLUMNS = ["ref", "line_number", "source_row", "account", "currency", "amount_minor",
                "functional_minor", "deferred_change_minor", "customer_id", "purchase_id",
                "memo"]


@dataclass(frozen=True)
class LedgerFacts:
    """What the ledger knows that a manual journal is checked against."""

    # rules.fx.positions of every lot named (index purchase_id), with customer_id, kind and
    # credits_left_micro
    lots: pd.DataFrame
    rates: dict[tuple[date, str], str]  # (date, currency) -> rate to functional
    locked_periods: frozenset[str]


@dataclass(frozen=True)
class CheckedJournals:
    journals: pd.DataFrame  # JOURNAL_COLUMNS, one row per journal
    lines: pd.DataFrame  # LINE_COLUMNS
    problems: tuple[str, ...]


def entry_id_of(ref: str) -> str:
    return f"{ENTRY_PREFIX}{ref}"


def chart_of(policy: Policy) -> frozenset[str]:
    """The accounts a manual journal may post to."""
    return frozenset(policy.accounts.all_accounts()) | frozenset(policy.manual_accounts)


def check_journals(rows: pd.DataFrame, file_name: str, policy: Policy, facts: LedgerFacts,
                   naming: SourceNaming = CSV_NAMING) -> CheckedJournals:
    """Every problem of the file's journals, and the journals as they would be stored.

    naming: how a problem names its place (CSV rows and columns, or beancount lines)."""
    problems: list[str] = []
    records = rows.to_dict("records")
    lines = [_line(row, file_name, policy, facts, problems, naming) for row in records]
    # A journal with a row in error is checked no further: its balance would mislead.
    failed = {row["journal_ref"] for row, line in zip(records, lines, strict=True) if line is None}
    frame = pd.DataFrame([line for line in lines if line is not None and line["ref"] not in failed],
                         columns=[*LINE_COLUMNS, "business_date", "reverse_on", "journal_row"])
    journals = []
    for ref, part in frame.groupby("ref", sort=True):
        journal = _journal(str(ref), part, file_name, policy, facts, problems, naming)
        if journal is not None:
            journals.append(journal)
    journal_frame = pd.DataFrame([journal for journal, _ in journals], columns=JOURNAL_COLUMNS)
    line_frame = (pd.concat([part for _, part in journals], ignore_index=True) if journals
                  else pd.DataFrame(columns=LINE_COLUMNS))
    # A beancount transaction's problem is named once, at its line, not at each posting's.
    return CheckedJournals(journal_frame, line_frame[LINE_COLUMNS],
                           tuple(dict.fromkeys(problems)))


def _line(row: dict, file_name: str, policy: Policy, facts: LedgerFacts,
          problems: list[str], naming: SourceNaming) -> dict | None:
    """One row as a line, or None after adding its problems."""
    before = len(problems)
    journal_row = int(row.get(JOURNAL_ROW_NUMBER, row["source_row"]))

    def problem(column: str, message: str) -> None:
        at = journal_row if column in JOURNAL_LEVEL_COLUMNS else int(row["source_row"])
        problems.append(f"{naming.where(file_name, at, column)}: {message}")

    if not row["journal_ref"]:
        problem("journal_ref", "is empty; every row names its journal")
    day = _date(row["date"], "date", problem)
    reverse_on = _date(row["reverse_on"], "reverse_on", problem) if row["reverse_on"] else None
    if day and reverse_on and reverse_on <= day:
        problem("reverse_on", f"{reverse_on} is not after the journal's date {day}")
    if day and Period.of(day) in facts.locked_periods:
        problem("date", f"{day} is in {Period.of(day)}, a locked period: it accepts no postings")
    if row["account"] not in chart_of(policy):
        problem("account", f"{row['account']!r} is not an account of the chart ([accounts] or "
                           "[chart] manual_accounts of the policy)")
    amount = _amount(row, problem)
    deferred_change = 0
    if row["account"] == policy.accounts.deferred_revenue:
        deferred_change = _lot_change(row, amount, facts, problem)
    elif row["purchase_id"] and row["purchase_id"] not in facts.lots.index:
        problem("purchase_id", f"lot {row['purchase_id']!r} does not exist")
    if len(problems) > before:
        return None
    return {"ref": row["journal_ref"], "line_number": 0, "source_row": int(row["source_row"]),
            "account": row["account"], "currency": row["currency"], "amount_minor": amount,
            "functional_minor": 0, "deferred_change_minor": deferred_change,
            "customer_id": row["customer_id"], "purchase_id": row["purchase_id"] or None,
            "memo": row["memo"], "business_date": day, "reverse_on": reverse_on,
            "journal_row": journal_row}


def _date(text: str, column: str, problem) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        problem(column, f"{text!r} is not a date (YYYY-MM-DD)")
        return None


def _amount(row: dict, problem) -> int:
    """Debit positive, credit negative, in minor units; 0 after a problem."""
    debit, credit = row["debit"], row["credit"]
    if bool(debit) == bool(credit):
        problem("debit", "a line has a debit or a credit, exactly one of them")
        return 0
    column, text = ("debit", debit) if debit else ("credit", credit)
    try:
        amount = parse_amount_minor(text, row["currency"])
    except UnknownCurrencyError as error:
        problem("currency", str(error))
        return 0
    except ValueError as error:  # not a number, or more digits than the minor unit has
        problem(column, f"{error} for {row['currency']}")
        return 0
    if amount <= 0:
        problem(column, f"{text} is not a positive amount")
        return 0
    return amount if column == "debit" else -amount


def _lot_change(row: dict, amount: int, facts: LedgerFacts, problem) -> int:
    """What the line does to its lot's deferred value (a credit adds); the lot must exist."""
    purchase_id = row["purchase_id"]
    if not purchase_id:
        problem("purchase_id", "a line on deferred revenue names the lot it changes; it is empty")
        return 0
    if purchase_id not in facts.lots.index:
        problem("purchase_id", f"lot {purchase_id!r} does not exist")
        return 0
    lot_currency = facts.lots.at[purchase_id, "currency"]
    if lot_currency != row["currency"]:
        problem("currency", f"{row['currency']} is not the currency of lot {purchase_id} "
                            f"({lot_currency})")
    return -amount


def _journal(ref: str, part: pd.DataFrame, file_name: str, policy: Policy, facts: LedgerFacts,
             problems: list[str], naming: SourceNaming) -> tuple[dict, pd.DataFrame] | None:
    """The journal's record and its translated lines, or None after adding its problems."""
    first_row = int(part["journal_row"].min())

    def problem(column: str, message: str) -> None:
        problems.append(f"{naming.where(file_name, first_row, column)}: journal {ref} {message}")

    before = len(problems)
    days = sorted(set(part["business_date"]))
    if len(days) > 1:
        problem("date", f"has rows of different dates ({', '.join(map(str, days))}); one date a "
                        "journal")
    reverse_dates = {value for value in part["reverse_on"] if value is not None}
    if len(reverse_dates) > 1:
        problem("reverse_on", "has rows with different reverse_on dates")
    if len(part) < 2:
        problem("debit", "has one line; a journal has at least two")
    for currency, total in part.groupby("currency")["amount_minor"].sum().items():
        if total:
            debits = part.loc[(part["currency"] == currency) & (part["amount_minor"] > 0),
                              "amount_minor"].sum()
            problem("debit", f"does not balance in {currency}: debits "
                             f"{format_minor(int(debits), currency)}, credits "
                             f"{format_minor(int(debits - total), currency)}")
    _require_lots_hold(part, facts, problem)
    if len(problems) > before:
        return None
    lines = _translated(ref, part, days[0], policy, facts, problem)
    if lines is None:
        return None
    reverse_on = next(iter(reverse_dates), None)
    record = {"ref": ref, "business_date": days[0], "period": Period.of(days[0]),
              "reverse_on": reverse_on, "content_hash": content_hash(ref, lines, days[0],
                                                                      reverse_on)}
    return record, lines


def _require_lots_hold(part: pd.DataFrame, facts: LedgerFacts, problem) -> None:
    for message in lot_change_problems(part, facts.lots):
        problem("debit", message)


def lot_change_problems(lines: pd.DataFrame, lots: pd.DataFrame) -> list[str]:
    """What stops a journal's lines changing their lots' deferred value now: a lot that has
    no credits left (expired, used or refunded: nothing would carry the change to revenue)
    or is promotional (no consideration), or a change taking more than the lot holds.

    lots: `LedgerFacts.lots`, by purchase id. Checked at import and again at approval.
    """
    changes = lines[lines["deferred_change_minor"] != 0].groupby("purchase_id")[
        "deferred_change_minor"].sum()
    problems = []
    for purchase_id, change in changes.items():
        held = int(lots.at[purchase_id, "deferred_minor"])
        currency = lots.at[purchase_id, "currency"]
        if lots.at[purchase_id, "kind"] == LotKind.PROMOTIONAL:
            problems.append(f"changes lot {purchase_id}, a promotional lot: free credits carry "
                            "no deferred revenue to change")
        elif int(lots.at[purchase_id, "credits_left_micro"]) <= 0:
            problems.append(f"changes lot {purchase_id}, which has no credits left (used, "
                            "refunded or expired): post the correction to revenue instead")
        elif held + change < 0:
            problems.append(f"takes {format_minor(-int(change), currency)} from lot "
                            f"{purchase_id}, which holds {format_minor(held, currency)} of "
                            "deferred revenue")
    return problems


def _translated(ref: str, part: pd.DataFrame, day: date, policy: Policy, facts: LedgerFacts,
                problem) -> pd.DataFrame | None:
    """The lines with functional amounts, checked to balance in the functional currency."""
    functional = policy.functional_currency
    # Lines in the functional currency are their own functional amount; rules/fx.py gives
    # the foreign ones theirs.
    part = part.assign(functional_minor=part["amount_minor"].where(
        part["currency"] == functional, 0).astype("int64"))
    journal = manual_journal_batch(ref, part, day)
    day_rates = {currency: rate for (rate_day, currency), rate in facts.rates.items()
                 if rate_day == day}
    try:
        journal = translate(journal, facts.lots, day_rates, functional, policy.accounts, day)
    except FxRateMissingError:
        problem("currency", f"needs a rate to {functional} on {day}; no fx_rates file gave one")
        return None
    for error in journal_errors(journal, source=ref):
        problem("debit", error.message)
    if journal_errors(journal):
        return None
    return part.assign(line_number=journal.lines["line_number"].to_numpy(),
                       functional_minor=journal.lines["functional_minor"].to_numpy())[
        LINE_COLUMNS].reset_index(drop=True)


def manual_journal_batch(ref: str, lines: pd.DataFrame, day: date,
                         customer_id: str = "") -> JournalBatch:
    """The journal as one entry of kind `manual` (lines in their order, numbered 1..n)."""
    entry_id = entry_id_of(ref)
    customers = sorted({value for value in lines["customer_id"] if value})
    entries = pd.DataFrame([{"entry_id": entry_id, "kind": EntryKind.MANUAL.value,
                             "business_date": day, "period": Period.of(day),
                             "customer_id": customer_id or (customers[0] if len(customers) == 1
                                                            else ""),
                             "source_ref": ref}])
    posted = pd.DataFrame({"entry_id": entry_id, "line_number": 0,
                           "account": lines["account"].to_numpy(),
                           "currency": lines["currency"].to_numpy(),
                           "amount_minor": lines["amount_minor"].astype("int64").to_numpy(),
                           "functional_minor": lines["functional_minor"].astype(
                               "int64").to_numpy(),
                           "meter": None, "purchase_id": lines["purchase_id"].to_numpy()})
    return JournalBatch(entries, number_lines(posted))


def content_hash(ref: str, lines: pd.DataFrame, day: date, reverse_on: date | None) -> str:
    """What the journal says, hashed: the same ref with the same content imports once."""
    text = "\n".join([f"{ref}\x1f{day}\x1f{reverse_on or ''}", *(
        "\x1f".join(str(value) for value in (row.account, row.currency, row.amount_minor,
                                              row.customer_id, row.purchase_id or "", row.memo))
        for row in lines.itertuples(index=False))])
    return hashlib.sha256(text.encode()).hexdigest()


def reversal_lines(lines: pd.DataFrame) -> pd.DataFrame:
    """A journal's lines with every amount (and lot change) the other way round."""
    return lines.assign(amount_minor=-lines["amount_minor"],
                        functional_minor=-lines["functional_minor"],
                        deferred_change_minor=-lines["deferred_change_minor"])
