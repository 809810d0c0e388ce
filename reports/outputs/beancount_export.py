"""A beancount ledger of a period, for checking the books with tools nobody here wrote.

The file opens every account, carries the balances from before the period in one
opening transaction (against Equity:Opening-Balances) dated the day before the period,
then one transaction per exported journal, with explicit amounts on every posting and
`tolerance_multiplier 0`, so beancount's own loader checks every transaction balances
exactly. A `balance` assertion for every account and currency stands at both period
boundaries (a balance directive asserts the balance at the start of its date). Links and
metadata carry the source: the journal id, entry kind, period and batch.

In transaction currencies, an entry that moves only functional amounts (the month-end FX
remeasurement of foreign cash: zero in its own currency) has nothing to post; the file
says so in a comment naming each such entry, its accounts and amounts, and that
`--functional` carries it.
"""

from __future__ import annotations

from datetime import timedelta
from itertools import groupby
from pathlib import Path

from ledger.domain import batch_id_for
from ledger.money import format_minor
from ledger.periods import Period
from ledger.store import Store
from reports.outputs.exports import journal_lines

OPENING_ACCOUNT = "Equity:Opening-Balances"


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _balances(store: Store, condition: str, period: Period,
              functional_currency: str | None) -> dict[tuple[str, str], int]:
    amount = "functional_minor" if functional_currency else "amount_minor"
    frame = store.read_frame(f"""
        SELECT l.account, l.currency, SUM(l.{amount}) AS amount FROM journal_lines l
        JOIN journal_entries e ON e.entry_id = l.entry_id WHERE e.period {condition} :period
        GROUP BY l.account, l.currency ORDER BY l.account, l.currency
    """, period=period)
    balances: dict[tuple[str, str], int] = {}
    for row in frame.itertuples(index=False):
        key = (row.account, functional_currency or row.currency)
        balances[key] = balances.get(key, 0) + int(row.amount)
    return balances


def _functional_only(store: Store, period: Period) -> list[tuple[str, str, int]]:
    """(entry, account, functional minor units) of the period's entries that move only
    functional amounts."""
    frame = store.read_frame("""
        SELECT l.entry_id, l.account, SUM(l.functional_minor) AS functional FROM journal_lines l
        JOIN journal_entries e ON e.entry_id = l.entry_id WHERE e.period = :period
          AND NOT EXISTS (SELECT 1 FROM journal_lines other WHERE other.entry_id = l.entry_id
                          AND other.amount_minor <> 0)
        GROUP BY l.entry_id, l.account ORDER BY l.entry_id, l.account
    """, period=period)
    return [(row.entry_id, row.account, int(row.functional))
            for row in frame.itertuples(index=False) if int(row.functional)]


def _left_out(write, store: Store, period: Period, ledger_currency: str) -> None:
    for entry_id, account, functional in _functional_only(store, period):
        write(f"; left out: {entry_id} moves only {ledger_currency} (functional) amounts: "
              f"{account} {format_minor(functional, ledger_currency)} {ledger_currency}; "
              "export with --functional to carry it\n")


def write_beancount(store: Store, period: Period, out: Path, summary: str = "daily",
                    by_customer: bool = False, draft: bool = False,
                    functional_currency: str | None = None, *,
                    ledger_currency: str = "USD") -> Path:
    """The period as a beancount ledger, in transaction currencies or all in the functional
    one (its foreign-cash remeasurements included)."""
    first, following = Period(period).first_day, Period(period).following_first_day
    opening_date = first - timedelta(days=1)
    opening = _balances(store, "<", period, functional_currency)
    closing = _balances(store, "<=", period, functional_currency)
    currencies = sorted({currency for _, currency in closing})
    accounts = sorted({account for account, _ in closing})
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as handle:
        write = handle.write
        write(f'option "title" "creditbooks {period}{" DRAFT" if draft else ""}"\n')
        for currency in currencies:
            write(f'option "operating_currency" "{currency}"\n')
        write('option "tolerance_multiplier" "0"\n\n')
        if not functional_currency:
            _left_out(write, store, period, ledger_currency)
        for account in [*accounts, OPENING_ACCOUNT]:
            write(f"{opening_date.isoformat()} open {account}\n")
        write("\n")
        nonzero_opening = {key: value for key, value in opening.items() if value}
        if nonzero_opening:
            write(f'{opening_date.isoformat()} * "creditbooks" "Balances before {period}"\n')
            for (account, currency), amount in sorted(nonzero_opening.items()):
                write(f"  {account}  {format_minor(amount, currency)} {currency}\n")
            for currency in currencies:
                total = sum(value for (_, opening_currency), value in nonzero_opening.items()
                            if opening_currency == currency)
                if total:
                    write(f"  {OPENING_ACCOUNT}  {format_minor(-total, currency)} {currency}\n")
            write("\n")
        _assertions(write, first.isoformat(), opening, accounts, currencies, closing)
        for journal_id, grouped in groupby(journal_lines(store, period, summary, by_customer,
                                                         functional_currency),
                                           key=lambda line: line.journal_id):
            lines = list(grouped)
            head = lines[0]
            link = f" ^{head.journal_id}" + (f" ^batch-{batch_id_for(head.date)}"
                                             if summary == "daily" else "")
            write(f"{head.date.isoformat()} * \"creditbooks\" "
                  f"{_quoted(f'{head.kind} {head.date.isoformat()} {head.currency}')}{link}\n")
            write(f"  journal: {_quoted(journal_id)}\n  kind: {_quoted(head.kind)}\n"
                  f"  period: {_quoted(period)}\n")
            for line in lines:
                write(f"  {line.account}  {format_minor(line.amount_minor, line.currency)} "
                      f"{line.currency}\n")
                if line.customer_id:
                    write(f"    customer: {_quoted(line.customer_id)}\n")
            write("\n")
        _assertions(write, following.isoformat(), closing, accounts, currencies, closing)
    return out


def _assertions(write, on: str, balances: dict, accounts: list[str], currencies: list[str],
                known: dict) -> None:
    for account in accounts:
        for currency in currencies:
            if (account, currency) in known:
                amount = balances.get((account, currency), 0)
                write(f"{on} balance {account}  {format_minor(amount, currency)} {currency}\n")
    write("\n")
