"""Foreign currency: every line in its transaction currency and in the functional currency.

Rates (`fx_rates.*` landing files: date, currency, rate_to_functional) give functional
currency per unit of a currency on a date. A line's functional amount follows the kind of
balance it touches (ASC 830; IAS 21; IFRIC 22):

- Deferred revenue is non-monetary. A lot's functional value is fixed by the rate of its
  purchase date, for ever: its deferred lines (purchase, usage, refunds, breakage,
  expiry) take the change in round(rate x (amount - deferred still owed)), cumulative and
  half even, so the lot's functional deferred balance reaches exactly zero when its
  transaction balance does. Its sales tax lines work the same way on the tax.
- The other lines of such an entry (cash, revenue, breakage) take the entry's functional
  remainder, split by largest remainder in proportion to their transaction amounts, so
  every entry balances in both currencies.
- Entries with no lot (costs, overage billed in arrears) use the rate of their day.
- Cash clearing and sales tax payable are monetary: on the last night of each month their
  balances in each foreign currency are remeasured at that day's rate, with an unrealised
  FX gain or loss entry whose lines move only functional amounts. (A lot's tax lines take
  its purchase rate when posted, as above; the month end brings the balance to the
  closing rate.)

A posting that needs a rate the books do not have fails with `FxRateMissingError`, and
the night posts nothing.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pandas as pd

from ledger.accounts import ChartOfAccounts
from ledger.journal import EntryKind, JournalBatch
from ledger.money import divide_round_half_even_array, minor_unit_exponent
from ledger.periods import BusinessDay
from rules.lot_state import deferred_value_minor
from rules.postings import journal_from_lines, line_frame
from rules.recognition import allocate_by_group


class FxRateMissingError(RuntimeError):
    """A posting needs an exchange rate that no fx_rates file has given; nothing is posted."""


def missing_rate_message(missing: list[tuple[date, str]], functional: str) -> str:
    shown = ", ".join(f"{currency} on {day}" for day, currency in sorted(missing)[:5])
    return (f"no exchange rate to {functional} for {shown}: land an fx_rates file with "
            "them and run the night again; nothing was posted")


def minor_rate(rate: Fraction, currency: str, functional: str) -> Fraction:
    """Functional minor units per transaction minor unit."""
    return rate * Fraction(10 ** minor_unit_exponent(functional), 10 ** minor_unit_exponent(currency))


def lot_rates(lots: pd.DataFrame, rates: dict[tuple[date, str], str], functional: str,
              timezone: str) -> pd.Series:
    """Each lot's rate: that of its purchase date (in the reporting timezone), '1' at home."""
    purchased_on = lots["purchased_at"].dt.tz_convert(timezone).dt.date
    keys = list(zip(purchased_on, lots["currency"], strict=True))
    missing = sorted({key for key in keys if key[1] != functional and key not in rates})
    if missing:
        raise FxRateMissingError(missing_rate_message(missing, functional))
    return pd.Series(["1" if currency == functional else rates[(day, currency)]
                      for day, currency in keys], index=lots.index, dtype=object)


def positions(lots: pd.DataFrame, fresh: bool = False) -> pd.DataFrame:
    """What each lot still owes in deferred revenue and tax, before a journal posts.

    fresh: lots being purchased now owe nothing yet (their purchase entry creates it).
    """
    deferred = 0 if fresh else deferred_value_minor(lots).to_numpy()
    tax_owed = 0 if fresh else (lots["tax_minor"] - lots["refunded_tax_minor"]).to_numpy()
    return pd.DataFrame({"amount_minor": lots["amount_minor"].to_numpy(),
                         "tax_minor": lots["tax_minor"].to_numpy(),
                         "rate": lots["rate_to_functional"].to_numpy(),
                         "currency": lots["currency"].to_numpy(),
                         "deferred_minor": deferred, "tax_owed_minor": tax_owed},
                        index=pd.Index(lots["purchase_id"].to_numpy(), name="purchase_id"))


def no_positions() -> pd.DataFrame:
    """Positions for a journal that touches no lot."""
    return pd.DataFrame({column: pd.Series(dtype=object) for column in (
        "amount_minor", "tax_minor", "rate", "currency", "deferred_minor", "tax_owed_minor")},
        index=pd.Index([], name="purchase_id", dtype=object))


def _round_at(amounts, rates: list[Fraction]) -> np.ndarray:
    """round(amount x rate) half even, exactly, element-wise."""
    amounts = np.asarray(amounts, dtype=object)
    numerators = np.array([rate.numerator for rate in rates], dtype=object)
    denominators = np.array([rate.denominator for rate in rates], dtype=object)
    return divide_round_half_even_array(amounts * numerators, denominators)


def rates_in_minor(rates, currencies, functional: str) -> list[Fraction]:
    """Rates as written, as functional minor units per transaction minor unit."""
    return [minor_rate(Fraction(Decimal(rate)), currency, functional)
            for rate, currency in zip(rates, currencies, strict=True)]


def functional_owed_minor(total_minor, owed_minor, rates: list[Fraction]) -> np.ndarray:
    """What a lot still owes, in the functional currency: round(total x rate) less
    round((total - owed) x rate), so it is exactly zero when nothing is owed."""
    total = np.asarray(total_minor, dtype=object)
    return _round_at(total, rates) - _round_at(total - np.asarray(owed_minor, dtype=object), rates)


def translate(journal: JournalBatch, lots: pd.DataFrame, day_rates: dict[str, str],
              functional: str, accounts: ChartOfAccounts, day: date) -> JournalBatch:
    """Give each foreign line its functional amount (see the module docstring).

    lots: `positions` of the lots the journal touches; day_rates: currency -> rate today.
    """
    lines = journal.lines
    foreign = (lines["currency"] != functional).to_numpy()
    if not foreign.any():
        return journal
    lines = lines.copy()
    owed_column = {accounts.deferred_revenue: ("amount_minor", "deferred_minor"),
                   accounts.sales_tax: ("tax_minor", "tax_owed_minor")}
    on_lot = foreign & lines["purchase_id"].isin(lots.index).to_numpy() & lines["account"].isin(
        owed_column).to_numpy()
    for account, (total_column, owed_column_name) in owed_column.items():
        rows = lines[on_lot & (lines["account"] == account).to_numpy()]
        if rows.empty:
            continue
        lot = lots.loc[rows["purchase_id"]]
        rate = rates_in_minor(lot["rate"], lot["currency"], functional)
        # A credit adds to what the lot owes, a debit takes from it.
        owed_after = lot[owed_column_name].to_numpy() + (-rows["amount_minor"]).groupby(
            rows["purchase_id"].to_numpy(), sort=False).cumsum().to_numpy()
        owed_before = owed_after + rows["amount_minor"].to_numpy()
        total = lot[total_column].to_numpy()
        # The line moves the lot's functional balance (a credit) from -owed_before to -owed_after.
        lines.loc[rows.index, "functional_minor"] = (
            functional_owed_minor(total, owed_before, rate)
            - functional_owed_minor(total, owed_after, rate))
    others = foreign & ~on_lot
    group = lines["entry_id"] + "|" + lines["currency"]
    residual = -lines.loc[on_lot].groupby(group[on_lot])["functional_minor"].sum()
    shared = others & group.isin(residual.index).to_numpy()
    if shared.any():
        _share_remainder(lines, shared, group, residual)
    alone = others & ~shared
    if alone.any():
        _at_day_rate(lines, alone, group, day_rates, functional, day)
    return JournalBatch(journal.entries, lines.astype({"functional_minor": "int64"}))


def _share_remainder(lines: pd.DataFrame, shared: np.ndarray, group: pd.Series,
                     residual: pd.Series) -> None:
    """Split each entry's functional remainder over its other lines, by transaction amount."""
    part = pd.DataFrame({"group": group[shared].to_numpy(),
                         "weight": lines.loc[shared, "amount_minor"].abs().to_numpy(),
                         "total": group[shared].map(residual).to_numpy()})
    sign = np.where(part["total"] < 0, -1, 1)
    part["total"] = part["total"].abs()
    part["weight"] = part["weight"].clip(lower=1)
    lines.loc[shared, "functional_minor"] = sign * allocate_by_group(
        part, "group", "weight", "total").to_numpy()


def _at_day_rate(lines: pd.DataFrame, alone: np.ndarray, group: pd.Series,
                 day_rates: dict[str, str], functional: str, day: date) -> None:
    """Lines of entries with no lot: today's rate, the first line of each entry balancing."""
    currencies = lines.loc[alone, "currency"]
    missing = sorted({(day, currency) for currency in currencies if currency not in day_rates})
    if missing:
        raise FxRateMissingError(missing_rate_message(missing, functional))
    rate = rates_in_minor([day_rates[currency] for currency in currencies], currencies, functional)
    lines.loc[alone, "functional_minor"] = _round_at(lines.loc[alone, "amount_minor"], rate)
    chosen = lines[alone]
    first = ~group[alone].duplicated().to_numpy()
    imbalance = chosen.groupby(group[alone])["functional_minor"].sum()
    anchors = chosen.index[first]
    lines.loc[anchors, "functional_minor"] -= group[anchors].map(imbalance).to_numpy()


def remeasure_monetary(balances: pd.DataFrame, day_rates: dict[str, str], functional: str,
                       day: BusinessDay, accounts: ChartOfAccounts) -> JournalBatch:
    """Period-end remeasurement of the foreign monetary balances, cash clearing and sales
    tax payable, at the closing rate (ASC 830-10-45-17; IAS 21.23): one entry per
    currency, each account's change in functional amount on its own line, and the
    unrealised FX gain or loss as their sum, so the entry balances.

    balances: account, currency, amount_minor, functional_minor of those accounts to date.
    """
    foreign = balances[(balances["currency"] != functional)
                       & ((balances["amount_minor"] != 0) | (balances["functional_minor"] != 0))]
    missing = sorted({(day.business_date, currency) for currency in foreign["currency"]
                      if currency not in day_rates})
    if missing:
        raise FxRateMissingError(missing_rate_message(missing, functional))
    if foreign.empty:
        return JournalBatch.empty()
    rate = rates_in_minor([day_rates[currency] for currency in foreign["currency"]],
                          foreign["currency"], functional)
    adjustment = _round_at(foreign["amount_minor"], rate) - foreign["functional_minor"].to_numpy()
    foreign = foreign.assign(adjustment=adjustment.astype("int64"))
    foreign = foreign[foreign["adjustment"] != 0]
    order = {accounts.cash_clearing: 0, accounts.sales_tax: 1}
    foreign = foreign.assign(order=foreign["account"].map(order)).sort_values(
        ["currency", "order"], kind="stable")
    gain = -foreign.groupby("currency", sort=True)["adjustment"].sum()
    gain = gain[gain != 0]
    remeasured = pd.concat([
        foreign[["account", "currency", "adjustment"]],
        pd.DataFrame({"account": accounts.fx_gain_loss, "currency": gain.index,
                      "adjustment": gain.to_numpy()})], ignore_index=True)
    entry_id = "fx/" + day.period + "/" + remeasured["currency"]
    lines = line_frame(account=remeasured["account"], amount_minor=0, entry_id=entry_id,
                       customer_id="", currency=remeasured["currency"]).assign(
        functional_minor=remeasured["adjustment"].to_numpy()).sort_values(
        "entry_id", kind="stable")
    currencies = sorted(set(remeasured["currency"]))
    source_ref = pd.Series([f"{currency} cash and sales tax at {day_rates[currency]}"
                            for currency in currencies],
                           index=["fx/" + day.period + "/" + currency for currency in currencies])
    return journal_from_lines(lines, EntryKind.FX, day, source_ref)


def is_period_end(day: BusinessDay) -> bool:
    return day.business_date == day.period.last_day
