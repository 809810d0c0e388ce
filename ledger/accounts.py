"""The chart of accounts: the accounts creditbooks posts to, and their names' rules.

Names follow beancount (`Assets:Cash:Clearing`): a root type, then capitalised
components, so an exported ledger loads as written. Which concrete names a company
uses is policy; this module only says what a valid chart is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields

_ACCOUNT_NAME = re.compile(r"^(Assets|Liabilities|Equity|Income|Expenses)(:[A-Z0-9][A-Za-z0-9-]*)+$")


def is_valid_account_name(name: str) -> bool:
    return bool(_ACCOUNT_NAME.match(name))


@dataclass(frozen=True)
class ChartOfAccounts:
    cash_clearing: str = "Assets:Cash:Clearing"
    deferred_revenue: str = "Liabilities:DeferredRevenue:Credits"
    usage_revenue: str = "Income:Revenue:Usage"
    breakage_revenue: str = "Income:Revenue:Breakage"
    sales_tax: str = "Liabilities:Tax:Sales"
    cost_of_revenue: str = "Expenses:CostOfRevenue:Serving"
    accrued_costs: str = "Liabilities:AccruedCosts:Serving"
    # Expired value owed to a state under unclaimed-property law: never revenue.
    unclaimed_property: str = "Liabilities:UnclaimedProperty:Credits"
    receivables: str = "Assets:Receivables:Customers"
    overage_revenue: str = "Income:Revenue:Overage"
    # Remeasurement of foreign cash and sales tax at period end (unrealised; a gain is a credit).
    fx_gain_loss: str = "Income:ForeignExchange:Unrealised"

    def __post_init__(self) -> None:
        names = [getattr(self, field.name) for field in fields(self)]
        for field, name in zip(fields(self), names, strict=True):
            if not is_valid_account_name(name):
                raise ValueError(f"account {field.name} = {name!r} is not a valid account name")
        if len(set(names)) != len(names):
            raise ValueError("each role in the chart of accounts needs its own account")

    def all_accounts(self) -> tuple[str, ...]:
        return tuple(getattr(self, field.name) for field in fields(self))
