"""The chart of accounts: the accounts creditbooks posts to, and their names' rules.

Names follow beancount (`Assets:Cash:Clearing`): a root type, then capitalised
components, so an exported ledger loads as written. Which concrete names a company
uses is policy; this module only says what a valid chart is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields

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


# The roles whose accounts the income statement shows as revenue, and as foreign exchange;
# every other Income account is other income, every Expenses account cost of revenue.
REVENUE_ROLES = ("usage_revenue", "breakage_revenue", "overage_revenue")
FOREIGN_EXCHANGE_ROLES = ("fx_gain_loss",)


def _role_groups(chart: Mapping[str, str], roles: tuple[str, ...]) -> tuple[set, tuple]:
    """The roles' accounts, and the groups they sit in (`Income:Revenue:` for
    `Income:Revenue:Usage`), when a group is below its root: a manual journal's account in
    that group (`Income:Revenue:Services`) belongs with them."""
    accounts = {chart[role] for role in roles}
    groups = tuple(sorted({account.rsplit(":", 1)[0] + ":" for account in accounts
                           if account.count(":") >= 2}))
    return accounts, groups


def income_statement_section(account: str, chart: ChartOfAccounts | Mapping[str, str]
                             ) -> str | None:
    """Which income statement section an account's movement is in, by the chart's roles
    (a policy may rename any account): "Revenue", "Foreign exchange", "Other income",
    "Cost of revenue"; None for a balance sheet account. The one definition that the
    statement (reports/statements.py) and the package check (verify_package) share."""
    roles = asdict(chart) if isinstance(chart, ChartOfAccounts) else chart
    root = account.split(":")[0]
    if root == "Expenses":
        return "Cost of revenue"
    if root != "Income":
        return None
    revenue, revenue_groups = _role_groups(roles, REVENUE_ROLES)
    exchange, exchange_groups = _role_groups(roles, FOREIGN_EXCHANGE_ROLES)
    if account in revenue:
        return "Revenue"
    if account in exchange:
        return "Foreign exchange"
    if account.startswith(revenue_groups):
        return "Revenue"
    if account.startswith(exchange_groups):
        return "Foreign exchange"
    return "Other income"
