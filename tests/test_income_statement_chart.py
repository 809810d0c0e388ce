"""The income statement's sections follow the policy's chart of accounts, not fixed names.

The refund scenario's March (tests/support/refunds.py: P-R 10.00 = usage 6.66 + refund
3.34; P-Q 1.00 refunded whole) closed under a policy whose [accounts] renames usage and
breakage revenue to Income:Sales:Usage and Income:Sales:Breakage: usage revenue 6.66 is
revenue, not "Other income", on the statement and in verify_package's section tie.
"""

from __future__ import annotations

import csv
import tomllib

import pytest

from ledger.accounts import ChartOfAccounts, income_statement_section
from reports.outputs.verify_package import verify_package
from rules.policy import DEFAULT_POLICY_FILE, policy_from_document
from tests.support.close import close_months
from tests.support.refunds import write_refund_scenario

RENAMED_CHART = {"usage_revenue": "Income:Sales:Usage",
                 "breakage_revenue": "Income:Sales:Breakage"}


def renamed_chart_policy():
    """The default policy with RENAMED_CHART, its ERP account codes following the names."""
    document = tomllib.loads(DEFAULT_POLICY_FILE.read_text())
    renamed = {document["accounts"][role]: name for role, name in RENAMED_CHART.items()}
    document["accounts"] |= RENAMED_CHART
    for codes in document["export"]["account_codes"].values():
        for old, new in renamed.items():
            if old in codes:
                codes[new] = codes.pop(old)
    return policy_from_document(document)


def test_sections_are_the_charts_roles_and_their_groups():
    renamed = ChartOfAccounts(usage_revenue="Income:Sales:Usage",
                              breakage_revenue="Income:Sales:Breakage",
                              overage_revenue="Income:Usage")
    assert [income_statement_section(account, renamed) for account in (
        "Income:Sales:Usage", "Income:Sales:Services", "Income:Usage", "Income:Revenue:Usage",
        "Income:ForeignExchange:Realised", "Income:Interest", "Expenses:Hosting",
        "Liabilities:Tax:Sales")] == [
        "Revenue", "Revenue", "Revenue", "Other income", "Foreign exchange", "Other income",
        "Cost of revenue", None]
    assert income_statement_section("Income:Revenue:Usage", ChartOfAccounts()) == "Revenue"


@pytest.mark.slow  # over a second here: not in make test-fast
def test_renamed_usage_revenue_is_revenue_and_the_package_ties(tmp_path):
    write_refund_scenario(tmp_path / "landing")
    package = close_months(tmp_path, renamed_chart_policy(), "2026-03")
    with (package / "income_statement.csv").open() as handle:
        lines = [(row["section"], row["line"], row["amount"]) for row in csv.DictReader(handle)
                 if row["currency"] == "USD"]
    assert ("Revenue", "Income:Sales:Usage", "6.66") in lines
    assert ("Revenue", "Total revenue", "6.66") in lines
    assert not [line for line in lines if line[0] == "Other income"]
    assert verify_package(package) == []
