"""An independent reader of a close package: does every figure in it tie out?

It reads only the files (CSV, JSON, the workbook, summary.html, manifest.json) and knows
the reports' layouts from the product guide, never from the code that wrote them:
nothing here imports the close or the reports. It recomputes every total from its
detail rows, checks the ties between reports (trial balance, income statement and
balance sheet; the rollforward and its breakdowns; the waterfall; revenue by customer,
product and meter; the KPIs; the reconciliations; the HTML summary's tables and its
bridge), compares the workbook and the JSON files with the CSV files, and checks each
file against the SHA-256 the manifest recorded.

Each tie takes its two sides from different files, so that an edit made consistently
in several files (and the manifest re-hashed) is still found: the trial balance's income
and expense accounts are the income statement's lines, its accounts grouped by type the
balance sheet's sections, retained earnings its opening income plus the income
statement's net income; the rollforward's opening, purchases and refunds are the trial
balance's deferred revenue; revenue by customer, product and meter and breakage by lot
add up to the income statement; revenue from the opening balance is at most that
balance; the waterfalls' totals are the trial balances' closing deferred revenue; the
workbook's rows after the CSV rows are totals only, and each chart's bar on the summary
page shows its CSV figure. Each problem is one line naming the
file, the sheet, the row and the column that does not tie.

Given the ledger (`ledger=`, a connection), it also ties the package to the books it
came from, from a source other than the package's files: each trial balance (per
account and currency, and in the functional currency) against sums of `journal_lines`
by its own SQL, and the manifest's journal digest, line count, chain head and ledger id
against the journal recomputed by `ledger.digest` and `ledger.chain`. Even then it
imports nothing of the close or of the reports that wrote the package.

Figures are compared exactly, as decimals; a workbook cell holds a double, so it is
compared at the currency's places (the CSV holds the exact text).

Account names are those of the chart the close wrote the package under, as its manifest
records them (`accounts`: role -> account, `recorded_chart`): a policy may rename any of
them. A manifest from before the chart was recorded is read under the default chart
(`ledger.accounts.ChartOfAccounts`).
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import tomllib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict
from decimal import Decimal, InvalidOperation
from html.parser import HTMLParser
from pathlib import Path

from sqlalchemy import Connection, text

from ledger.accounts import ChartOfAccounts, income_statement_section
from ledger.anchors import known_ledger_id
from ledger.chain import verify_chain
from ledger.digest import journal_digest
from ledger.domain import BatchStatus, PeriodAction
from ledger.evidence import MANIFEST_HASH_NOT_RECORDED
from ledger.money import is_known_currency, minor_unit_exponent
from ledger.periods import Period

ROLLFORWARD_COLUMNS = ("opening", "purchases", "usage_revenue", "breakage", "refunds",
                       "escheat", "manual_journals", "closing")
TRIAL_BALANCE_FIGURES = ("opening_debit", "opening_credit", "period_debit", "period_credit",
                         "closing_debit", "closing_credit")
# Column names that hold rates, ratios or days: a "Total" row must never add them.
NEVER_SUMMED = re.compile(r"rate|ratio|per_credit|share|days|percent|%")
ZERO = Decimal(0)


class PackageProblems(list):
    """The problems found, one line each; `notes`: what could not be checked, and why
    (not problems: the package still ties out)."""

    def __init__(self) -> None:
        super().__init__()
        self.notes: list[str] = []

    def add(self, where: str, message: str) -> None:
        self.append(f"{where}: {message}")


def number(text) -> Decimal | None:
    if text is None or text == "":
        return None
    try:
        return Decimal(str(text).replace(",", ""))
    except InvalidOperation:
        return None


def read_csv(path: Path) -> tuple[list[str], list[dict]]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def recorded_chart(directory: Path) -> dict[str, str]:
    """{role: account} of the chart the package was written under (its manifest's
    `accounts`); a manifest from before the chart was recorded, or none, means the
    default chart."""
    chart = asdict(ChartOfAccounts())
    try:
        recorded = json.loads((directory / "manifest.json").read_text()).get("accounts")
    except (OSError, ValueError, AttributeError):  # check_manifest names such a manifest
        recorded = None
    if isinstance(recorded, dict):
        chart |= {role: name for role, name in recorded.items() if isinstance(name, str)}
    return chart


class Package:
    """The package's CSV reports, read once, and the chart it was written under
    (`accounts`: role -> account); `where` names a cell for a problem line."""

    def __init__(self, directory: Path, problems: PackageProblems) -> None:
        self.directory, self.problems = directory, problems
        self.reports: dict[str, list[dict]] = {}
        self.headers: dict[str, list[str]] = {}
        for path in sorted(directory.glob("*.csv")):
            self.headers[path.stem], self.reports[path.stem] = read_csv(path)
        self.accounts = recorded_chart(directory)

    def rows(self, name: str) -> list[dict]:
        return self.reports.get(name, [])

    def figure(self, name: str, index: int, column: str) -> Decimal:
        value = number(self.reports[name][index].get(column))
        if value is None:
            self.problems.add(self.where(name, index, column), "is not a number")
            return ZERO
        return value

    @staticmethod
    def where(name: str, index: int, column: str) -> str:
        # Row numbers as a spreadsheet shows the CSV: the header is row 1.
        return f"{name}.csv row {index + 2} column {column}"

    def expect(self, name: str, index: int, column: str, expected: Decimal, why: str) -> None:
        found = self.figure(name, index, column)
        if found != expected:
            self.problems.add(self.where(name, index, column),
                              f"{found} but {why} is {expected}")


def check_manifest(directory: Path, problems: PackageProblems) -> None:
    manifest_path = directory / "manifest.json"
    if not manifest_path.exists():
        problems.add("manifest.json", "missing")
        return
    manifest = json.loads(manifest_path.read_text())
    files = manifest.get("files", {})
    for name, recorded in sorted(files.items()):
        path = directory / name
        if not path.exists():
            problems.add(name, "listed in manifest.json but missing")
        elif hashlib.sha256(path.read_bytes()).hexdigest() != recorded:
            problems.add(name, "SHA-256 differs from the one manifest.json recorded")
    for path in sorted(directory.iterdir()):
        if path.name != "manifest.json" and path.name not in files:
            problems.add(path.name, "not listed in manifest.json")
    check_policy_text(directory, manifest, problems)


def check_policy_text(directory: Path, manifest: dict, problems: PackageProblems) -> None:
    """The policy text the package carries (the manifest's `policy_file`, from issue 21 on)
    is the policy version the manifest names: the version is the first 16 hex digits of
    the SHA-256 of the parsed TOML without its [sources] section, as canonical JSON
    (sorted keys, no spaces), recomputed here as rules/policy.py defines it, not imported."""
    name = manifest.get("policy_file")
    if name is None:
        return  # a package from before the policy text was kept
    path = directory / str(name)
    if not isinstance(name, str) or "/" in name or not path.is_file():
        problems.add("manifest.json", f"policy_file {name!r} is not a file of the package")
        return
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        problems.add(path.name, f"is not a policy file (TOML): {error}")
        return
    rules = {section: value for section, value in document.items() if section != "sources"}
    canonical = json.dumps(rules, sort_keys=True, separators=(",", ":"), default=str)
    version = hashlib.sha256(canonical.encode()).hexdigest()[:16]
    if version != manifest.get("policy_version"):
        problems.add(path.name, f"is policy version {version} but manifest.json says "
                                f"policy_version {manifest.get('policy_version')}")


def _grouped(rows: Iterable[tuple[int, dict]], *keys: str) -> dict[tuple, list[tuple[int, dict]]]:
    groups: dict[tuple, list[tuple[int, dict]]] = defaultdict(list)
    for index, row in rows:
        groups[tuple(row[key] for key in keys)].append((index, row))
    return groups


def check_trial_balance(package: Package, name: str) -> dict[tuple[str, str], dict]:
    """Totals per currency equal the account rows' sums; debits equal credits; every
    figure positive. Returns the account rows by (currency, account)."""
    rows = package.rows(name)
    accounts = {}
    for (currency,), members in _grouped(enumerate(rows), "currency").items():
        detail = [(index, row) for index, row in members if row["row_type"] == "account"]
        totals = [(index, row) for index, row in members if row["row_type"] == "total"]
        for index, _row in members:
            for column in TRIAL_BALANCE_FIGURES:
                if package.figure(name, index, column) < 0:
                    package.problems.add(package.where(name, index, column), "is negative")
        if len(totals) != 1:
            package.problems.add(f"{name}.csv currency {currency}", "needs one Total row")
            continue
        total_index = totals[0][0]
        for column in TRIAL_BALANCE_FIGURES:
            package.expect(name, total_index, column,
                           sum((package.figure(name, i, column) for i, _ in detail), ZERO),
                           "the sum of the account rows")
        for side in ("opening", "period", "closing"):
            debit = package.figure(name, total_index, f"{side}_debit")
            package.expect(name, total_index, f"{side}_credit", debit,
                           f"the total {side}_debit")
        for index, row in detail:
            figures = {column: package.figure(name, index, column)
                       for column in TRIAL_BALANCE_FIGURES}
            accounts[(currency, row["account"])] = figures
            _check_account_moves(package, name, index, figures)
    return accounts


def _check_account_moves(package: Package, name: str, index: int, figures: dict) -> None:
    """An account's closing balance is its opening balance moved by the period's debits
    and credits."""
    moved = (figures["opening_debit"] - figures["opening_credit"] + figures["period_debit"]
             - figures["period_credit"])
    closing = figures["closing_debit"] - figures["closing_credit"]
    if moved != closing:
        package.problems.add(f"{name}.csv row {index + 2} columns closing_debit, closing_credit",
                             f"a balance of {closing} but opening + period debits - credits "
                             f"is {moved}")


def _check_sections(package: Package, name: str, members: list[tuple[int, dict]]
                    ) -> dict[str, Decimal]:
    """Each section's subtotal is the sum of its account rows; returns the sums."""
    sums: dict[str, Decimal] = defaultdict(Decimal)
    for index, row in members:
        if row["row_type"] == "account":
            sums[row["section"]] += package.figure(name, index, "amount")
    for index, row in members:
        if row["row_type"] == "subtotal" and row["section"] in sums:
            package.expect(name, index, "amount", sums[row["section"]],
                           f"the sum of the {row['section']} lines")
    return sums


def check_income_statement(package: Package, name: str, trial_balance: dict) -> dict:
    """Subtotals, gross profit and net income from the lines; each line equals the trial
    balance's period credits less debits. Returns the lines by (currency, account)."""
    lines = {}
    for (currency,), members in _grouped(enumerate(package.rows(name)), "currency").items():
        sums = _check_sections(package, name, members)
        for index, row in members:
            if row["row_type"] == "account":
                lines[(currency, row["line"])] = package.figure(name, index, "amount")
                account = trial_balance.get((currency, row["line"]))
                moved = (account["period_credit"] - account["period_debit"]) if account else ZERO
                package.expect(name, index, "amount", moved,
                               "the trial balance's period credits less debits")
            elif row["line"] == "Gross profit":
                package.expect(name, index, "amount",
                               sums["Revenue"] + sums.get("Cost of revenue", ZERO),
                               "total revenue plus cost of revenue")
            elif row["row_type"] == "total":
                package.expect(name, index, "amount", sum(sums.values(), ZERO),
                               "the sum of every line")
    return lines


def check_balance_sheet(package: Package, name: str, trial_balance: dict) -> dict:
    """Subtotals; liabilities + equity; A = L + E; each line against the trial balance's
    closing balance, retained earnings against the income and expense accounts."""
    lines = {}
    for (currency,), members in _grouped(enumerate(package.rows(name)), "currency").items():
        sums = _check_sections(package, name, members)
        for index, row in members:
            account, row_type = row["line"], row["row_type"]
            if row_type == "account":
                lines[(currency, account)] = package.figure(name, index, "amount")
                package.expect(name, index, "amount",
                               _closing(trial_balance, currency, account),
                               "the trial balance's closing balance")
            elif row_type == "total":
                package.expect(name, index, "amount", sums["Liabilities"] + sums["Equity"],
                               "total liabilities plus total equity")
            elif row_type == "check":
                package.expect(name, index, "amount",
                               sums["Assets"] - sums["Liabilities"] - sums["Equity"],
                               "assets less liabilities and equity")
                package.expect(name, index, "amount", ZERO, "assets = liabilities + equity: 0")
    return lines


def _closing(trial_balance: dict, currency: str, account: str) -> Decimal:
    def balance(name: str) -> Decimal:
        figures = trial_balance.get((currency, name))
        return figures["closing_debit"] - figures["closing_credit"] if figures else ZERO

    if account == "Equity:RetainedEarnings":
        return -sum((balance(name) for (row_currency, name) in trial_balance
                     if row_currency == currency and name.split(":")[0] in ("Income", "Expenses")),
                    ZERO)
    return balance(account) if account.startswith("Assets") else -balance(account)


def _revenue_accounts(package: Package) -> tuple[tuple[str, str], ...]:
    """The revenue columns of the rollforward and the disclosure, each with its account."""
    return (("usage_revenue", package.accounts["usage_revenue"]),
            ("breakage", package.accounts["breakage_revenue"]))


def check_rollforwards(package: Package, income: dict, sheet: dict, suffix: str = "") -> None:
    """Each row foots; closing = the balance sheet's deferred revenue; usage and breakage
    = the income statement's lines; the breakdowns add up to the rollforward."""
    name = f"rollforward{suffix}"
    for report in (name, *(() if suffix else ("rollforward_by_customer",
                                               "rollforward_by_product"))):
        for index, _ in enumerate(package.rows(report)):
            moved = (package.figure(report, index, "opening")
                     + package.figure(report, index, "purchases")
                     + _manual_journals(package, report, index)
                     - sum((package.figure(report, index, column) for column in
                            ("usage_revenue", "breakage", "refunds", "escheat")), ZERO))
            package.expect(report, index, "closing", moved, "opening + purchases + manual "
                           "journals - usage - breakage - refunds - escheat")
    for index, row in enumerate(package.rows(name)):
        currency = row["currency"]
        deferred = next((amount for (line_currency, line), amount in sheet.items()
                         if line_currency == currency
                         and line == package.accounts["deferred_revenue"]),
                        ZERO)
        package.expect(name, index, "closing", deferred,
                       f"balance_sheet{suffix}'s deferred revenue")
        for column, account in _revenue_accounts(package):
            package.expect(name, index, column, income.get((currency, account), ZERO)
                           - _manual_revenue(package, currency, account, bool(suffix)),
                           f"income_statement{suffix}'s {account} less what manual journals "
                           "posted to it")
        if suffix:
            continue
        for breakdown in ("rollforward_by_customer", "rollforward_by_product"):
            members = [i for i, other in enumerate(package.rows(breakdown))
                       if other["currency"] == currency]
            for column in ROLLFORWARD_COLUMNS:
                if column not in row:  # a package from before manual journals
                    continue
                package.expect(name, index, column,
                               sum((package.figure(breakdown, i, column) for i in members), ZERO),
                               f"the sum of {breakdown}")


def _manual_journals(package: Package, report: str, index: int) -> Decimal:
    """The rollforward's manual journals column (a package from before issue 21 has none)."""
    if "manual_journals" not in package.rows(report)[index]:
        return ZERO
    return package.figure(report, index, "manual_journals")


def _manual_revenue(package: Package, currency: str, account: str, functional: bool) -> Decimal:
    """What the period's posted manual journals credited to `account` in `currency` (their
    lines in manual_journals.csv; with `functional`, their functional amounts, of every
    transaction currency): revenue that no rollforward movement but theirs moved."""
    name = "manual_journals"
    prefix, currency_column = ("functional_", "functional_currency") if functional else (
        "", "currency")
    return sum((package.figure(name, index, prefix + "credit")
                - package.figure(name, index, prefix + "debit")
                for index, row in enumerate(package.rows(name))
                if row["entry_id"] and row.get(currency_column) == currency
                and row["account"] == account), ZERO)


def check_manual_journals(package: Package) -> None:
    """manual_journals.csv (one row per line): each journal balances, its debits equal
    its credits in each currency; a posted one was approved by someone other than its
    preparer (its reversal, made from it, excepted)."""
    name = "manual_journals"
    sums: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for index, row in enumerate(package.rows(name)):
        sums[(row["ref"], row["currency"])] += (package.figure(name, index, "debit")
                                                - package.figure(name, index, "credit"))
        if (row["approved_by"] and row["approved_by"] == row["prepared_by"]
                and not row["reverses_ref"]):
            package.problems.add(package.where(name, index, "approved_by"),
                                 f"{row['approved_by']} approved a journal they prepared")
    for (ref, currency), difference in sorted(sums.items()):
        if difference:
            package.problems.add(f"{name}.csv journal {ref} currency {currency}",
                                 f"debits and credits differ by {difference}")


def check_waterfall(package: Package, suffix: str = "") -> None:
    """Each row's months add up to its total, which is the rollforward's closing balance."""
    name = f"waterfall{suffix}"
    closing = {row["currency"]: package.figure(f"rollforward{suffix}", index, "closing")
               for index, row in enumerate(package.rows(f"rollforward{suffix}"))}
    for index, row in enumerate(package.rows(name)):
        months = [column for column in row if column not in ("method", "currency", "total")]
        package.expect(name, index, "total",
                       sum((package.figure(name, index, column) for column in months), ZERO),
                       "the sum of the months")
        package.expect(name, index, "total", closing.get(row["currency"], ZERO),
                       f"rollforward{suffix}'s closing")


def _sums_by_currency(package: Package, name: str, column: str) -> dict[str, Decimal]:
    sums: dict[str, Decimal] = defaultdict(Decimal)
    for index, row in enumerate(package.rows(name)):
        sums[row["currency"]] += package.figure(name, index, column)
    return sums


def check_revenue_and_kpis(package: Package) -> None:
    """Revenue by customer, by meter and by product, the KPIs' usage revenue and credits
    burned, and the rollforward's usage revenue all agree per currency."""
    by_customer = _sums_by_currency(package, "revenue_by_customer", "revenue")
    for name in ("kpis_by_meter", "kpis_by_product"):
        sums = _sums_by_currency(package, name, "usage_revenue")
        for currency in sorted(set(sums) | set(by_customer)):
            if sums.get(currency, ZERO) != by_customer.get(currency, ZERO):
                package.problems.add(f"{name}.csv currency {currency} column usage_revenue",
                                     f"sums to {sums.get(currency, ZERO)} but "
                                     f"revenue_by_customer to {by_customer.get(currency, ZERO)}")
    credits = sum((package.figure("revenue_by_customer", index, "credits")
                   for index, _ in enumerate(package.rows("revenue_by_customer"))), ZERO)
    kpis = package.rows("kpis")
    this_period = next((column for column in package.headers.get("kpis", [])
                        if column.startswith("this_period")), None)
    for index, row in enumerate(kpis):
        if this_period is None:
            break
        expected = {"usage revenue": by_customer.get(row["currency"], ZERO),
                    "credits burned": credits}.get(row["metric"])
        # A blank cell: the currency had no figure this period (it shows in another).
        found = number(row[this_period]) or ZERO
        if expected is not None and found != expected:
            package.problems.add(package.where("kpis", index, this_period),
                                 f"{row[this_period]!r} but revenue_by_customer says {expected}")


def check_revenue_by_customer_against_rollforward(package: Package) -> None:
    """Each customer's usage revenue in a currency: the sum of its revenue_by_customer
    rows (by product and meter) is its rollforward_by_customer row's usage_revenue. A
    figure moved between customers keeps every total, but not this."""
    listed: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for index, row in enumerate(package.rows("revenue_by_customer")):
        listed[(row["customer_id"], row["currency"])] += package.figure(
            "revenue_by_customer", index, "revenue")
    name = "rollforward_by_customer"
    in_rollforward = set()
    for index, row in enumerate(package.rows(name)):
        key = (row["customer"], row["currency"])
        in_rollforward.add(key)
        package.expect(name, index, "usage_revenue", listed.get(key, ZERO),
                       f"revenue_by_customer's sum for customer {key[0]} in {key[1]}")
    for customer, currency in sorted(set(listed) - in_rollforward):
        if listed[(customer, currency)]:
            package.problems.add(f"revenue_by_customer.csv customer {customer} currency "
                                 f"{currency} column revenue", f"sums to "
                                 f"{listed[(customer, currency)]} but {name} has no row for it")


def check_other_reports(package: Package) -> None:
    for index, _ in enumerate(package.rows("revenue_from_opening")):
        package.expect("revenue_from_opening", index, "total",
                       package.figure("revenue_from_opening", index, "usage_revenue")
                       + package.figure("revenue_from_opening", index, "breakage"),
                       "usage_revenue + breakage")
    for index, _ in enumerate(package.rows("breakage_estimates")):
        package.expect("breakage_estimates", index, "difference",
                       package.figure("breakage_estimates", index, "actual_breakage")
                       - package.figure("breakage_estimates", index, "estimated_breakage"),
                       "actual_breakage - estimated_breakage")
    for index, row in enumerate(package.rows("reconciliations")):
        if not (row["left_amount"] or row["right_amount"] or row["difference"]):
            continue  # a reconciliation with nothing to compare this period
        difference = package.figure("reconciliations", index, "left_amount") - package.figure(
            "reconciliations", index, "right_amount")
        package.expect("reconciliations", index, "difference", difference,
                       "left_amount - right_amount")
        if (row["passed"] == "True") != (difference == 0):
            package.problems.add(package.where("reconciliations", index, "passed"),
                                 f"{row['passed']} but the difference is {difference}")
    closing = _sums_by_currency(package, "rollforward", "closing")
    aging = _sums_by_currency(package, "lot_aging", "value_remaining")
    for currency in sorted(set(aging)):
        if aging[currency] != closing.get(currency, ZERO):
            package.problems.add(f"lot_aging.csv currency {currency} column value_remaining",
                                 f"sums to {aging[currency]} but the rollforward closes at "
                                 f"{closing.get(currency, ZERO)}")


def check_disaggregation(package: Package, income: dict) -> None:
    """Each dimension of the revenue disaggregation adds up, per currency, to the income
    statement's usage and breakage revenue; each row's total is usage + breakage."""
    name = "disclosure_revenue_disaggregation"
    sums: dict[tuple[str, str], dict[str, Decimal]] = defaultdict(
        lambda: defaultdict(Decimal))
    for index, row in enumerate(package.rows(name)):
        package.expect(name, index, "total", package.figure(name, index, "usage_revenue")
                       + package.figure(name, index, "breakage"), "usage_revenue + breakage")
        for column in ("usage_revenue", "breakage"):
            sums[(row["dimension"], row["currency"])][column] += package.figure(name, index,
                                                                                column)
    for (dimension, currency), figures in sorted(sums.items()):
        for column, account in _revenue_accounts(package):
            expected = income.get((currency, account), ZERO)
            if figures[column] != expected:
                package.problems.add(f"{name}.csv dimension {dimension} currency {currency} "
                                     f"column {column}", f"sums to {figures[column]} but the "
                                     f"income statement's {account} is {expected}")


def check_uncovered_usage(package: Package) -> None:
    """The "all meters" row adds up the meters' events and credits; each share is credits
    / accepted credits."""
    name = "uncovered_usage"
    rows = list(enumerate(package.rows(name)))
    every = [(index, row) for index, row in rows if row["meter"] == "all meters"]
    for index, _row in rows:
        accepted = package.figure(name, index, "accepted_credits")
        if accepted:
            share = (package.figure(name, index, "credits") * 100 / accepted).quantize(
                Decimal("0.01"))
            package.expect(name, index, "share_of_accepted_credits_percent", share,
                           "credits / accepted_credits, in percent")
    # accepted_credits of "all meters" covers every meter, listed (some uncovered) or not.
    for index, _ in every:
        for column in ("events", "credits"):
            package.expect(name, index, column,
                           sum((package.figure(name, i, column) for i, row in rows
                                if row["meter"] != "all meters"), ZERO), "the meters' sum")


# Ties between files (issue 19): each takes its two sides from different files, so a
# consistent edit of one report and its own totals no longer passes. None is a plug.
INCOME_STATEMENT_ROOTS = ("Income", "Expenses")
# Each balance sheet section and the trial balance roots it is made of; a liability or an
# equity figure is a credit balance (credit less debit), an asset a debit balance.
SECTION_ROOTS = {"Assets": ("Assets",), "Liabilities": ("Liabilities",),
                 "Equity": ("Equity", "Income", "Expenses")}


def _credit_balance(figures: dict | None, side: str) -> Decimal:
    """An account's credit less debit at `side` (opening, period, closing); none: 0."""
    if figures is None:
        return ZERO
    return figures[f"{side}_credit"] - figures[f"{side}_debit"]


def _trial_balance_row(package: Package, name: str, currency: str, account: str) -> int:
    return next((index for index, row in enumerate(package.rows(name))
                 if row["currency"] == currency and row["account"] == account), -1)


def check_income_accounts_are_on_the_statement(package: Package, suffix: str,
                                               trial_balance: dict, income: dict) -> None:
    """Every income and expense account the trial balance moved in the period has its
    line on the income statement (the lines themselves are tied by
    check_income_statement)."""
    name = f"trial_balance{suffix}"
    for (currency, account), figures in sorted(trial_balance.items()):
        moved = _credit_balance(figures, "period")
        if (account.split(":")[0] in INCOME_STATEMENT_ROOTS and moved
                and (currency, account) not in income):
            row = _trial_balance_row(package, name, currency, account)
            package.problems.add(f"income_statement{suffix}.csv currency {currency} column "
                                 "line", f"no line for {account}, which {name}.csv row "
                                 f"{row + 2} moves by {moved} (period_credit - period_debit)")


# The income statement's sections, each holding the trial balance accounts that
# `income_statement_section` puts there under the package's recorded chart (the one
# definition the statement itself uses); "Net income" holds them all.
INCOME_STATEMENT_SECTIONS = ("Revenue", "Cost of revenue", "Foreign exchange", "Other income",
                             "Net income")


def _in_section(section: str, account: str, chart: dict[str, str]) -> bool:
    if section == "Net income":
        return account.split(":")[0] in INCOME_STATEMENT_ROOTS
    return income_statement_section(account, chart) == section


def check_income_statement_against_trial_balance(package: Package, suffix: str,
                                                 trial_balance: dict) -> None:
    """Each section's subtotal, and net income, is the period's movement of the trial
    balance's accounts of that section: a line moved to another section is found."""
    name = f"income_statement{suffix}"
    for index, row in enumerate(package.rows(name)):
        section = row["section"]
        if row["row_type"] not in ("subtotal", "total") or section not in (
                INCOME_STATEMENT_SECTIONS):
            continue
        moved = sum((_credit_balance(figures, "period") for (currency, account), figures
                     in trial_balance.items() if currency == row["currency"]
                     and _in_section(section, account, package.accounts)), ZERO)
        package.expect(name, index, "amount", moved, f"trial_balance{suffix}.csv's "
                       f"{row['section']} accounts' period_credit - period_debit")


def check_balance_sheet_against_trial_balance(package: Package, suffix: str,
                                              trial_balance: dict) -> None:
    """Each section's subtotal is the trial balance's accounts of its roots (equity with
    the income and expense accounts: retained earnings), and retained earnings is the
    opening income and expense balances plus the income statement's net income."""
    name, statement = f"balance_sheet{suffix}", f"income_statement{suffix}"
    net_income = {row["currency"]: package.figure(statement, index, "amount")
                  for index, row in enumerate(package.rows(statement))
                  if row["row_type"] == "total"}
    for index, row in enumerate(package.rows(name)):
        currency, section = row["currency"], row["section"]
        accounts = [(account, figures) for (row_currency, account), figures
                    in trial_balance.items() if row_currency == currency]
        if row["row_type"] == "subtotal" and section in SECTION_ROOTS:
            roots = SECTION_ROOTS[section]
            balances = sum((_credit_balance(figures, "closing") for account, figures
                            in accounts if account.split(":")[0] in roots), ZERO)
            package.expect(name, index, "amount", -balances if section == "Assets" else balances,
                           f"trial_balance{suffix}.csv's {'/'.join(roots)} accounts' closing "
                           "balance")
        elif row["row_type"] == "account" and row["line"] == "Equity:RetainedEarnings":
            opening = sum((_credit_balance(figures, "opening") for account, figures in accounts
                           if account.split(":")[0] in INCOME_STATEMENT_ROOTS), ZERO)
            package.expect(name, index, "amount", opening + net_income.get(currency, ZERO),
                           f"trial_balance{suffix}.csv's opening income and expense balances "
                           f"plus {statement}.csv's net income")
    shown = {row["currency"] for row in package.rows(name)}
    for currency in sorted({currency for currency, _ in trial_balance} - shown):
        package.problems.add(f"{name}.csv column currency", f"no rows for {currency}, which "
                             f"trial_balance{suffix}.csv has")


def _manual_lines(package: Package, currency: str, account: str, functional: bool
                  ) -> tuple[Decimal, Decimal]:
    """(debits, credits) the period's posted manual journals put on `account` in
    `currency`, from manual_journals.csv (functional: their functional amounts)."""
    name = "manual_journals"
    prefix, currency_column = ("functional_", "functional_currency") if functional else (
        "", "currency")
    lines = [index for index, row in enumerate(package.rows(name))
             if row["entry_id"] and row.get(currency_column) == currency
             and row["account"] == account]
    return (sum((package.figure(name, index, prefix + "debit") for index in lines), ZERO),
            sum((package.figure(name, index, prefix + "credit") for index in lines), ZERO))


def check_rollforward_against_trial_balance(package: Package, suffix: str,
                                            trial_balance: dict) -> None:
    """The rollforward's opening is the trial balance's deferred revenue at the period's
    start; its purchases are the deferred account's period credits, and refunds what its
    period debits leave after usage, breakage and escheat, both net of manual journals
    (from manual_journals.csv) and of revenue reversed back into deferred revenue (the
    revenue accounts' period debits, as a negative proportional breakage catch-up posts)."""
    name, tb_name = f"rollforward{suffix}", f"trial_balance{suffix}"
    deferred = package.accounts["deferred_revenue"]
    for index, row in enumerate(package.rows(name)):
        currency = row["currency"]
        figures = trial_balance.get((currency, deferred))
        where = f"{tb_name}.csv's {deferred}"
        package.expect(name, index, "opening", _credit_balance(figures, "opening"),
                       f"{where} opening_credit - opening_debit")
        manual_debit, manual_credit = _manual_lines(package, currency, deferred, bool(suffix))
        reversed_revenue = ZERO
        for _column, account in _revenue_accounts(package):
            revenue = trial_balance.get((currency, account))
            reversed_revenue += (revenue["period_debit"] if revenue else ZERO) - _manual_lines(
                package, currency, account, bool(suffix))[0]
        credits = figures["period_credit"] if figures else ZERO
        debits = figures["period_debit"] if figures else ZERO
        package.expect(name, index, "purchases", credits - manual_credit - reversed_revenue,
                       f"{where} period_credit less manual journals and reversed revenue")
        recognised = sum((package.figure(name, index, column)
                          for column in ("usage_revenue", "breakage", "escheat")), ZERO)
        package.expect(name, index, "refunds",
                       debits - manual_debit - reversed_revenue - recognised,
                       f"{where} period_debit less manual journals, reversed revenue, "
                       "usage, breakage and escheat")
        if "manual_journals" in row:
            package.expect(name, index, "manual_journals", manual_credit - manual_debit,
                           f"manual_journals.csv's credits less debits to {deferred}")
    shown = {row["currency"] for row in package.rows(name)}
    for currency, account in sorted(trial_balance):
        if account == deferred and currency not in shown:
            package.problems.add(f"{name}.csv column currency", f"no row for {currency}, whose "
                                 f"{deferred} is {tb_name}.csv row "
                                 f"{_trial_balance_row(package, tb_name, currency, account) + 2}")


def check_waterfall_against_trial_balance(package: Package, suffix: str,
                                          trial_balance: dict) -> None:
    """Each method's total (the remaining performance obligations) is the trial balance's
    closing deferred revenue, whatever rates valued the months."""
    name, deferred = f"waterfall{suffix}", package.accounts["deferred_revenue"]
    for index, row in enumerate(package.rows(name)):
        package.expect(name, index, "total",
                       _credit_balance(trial_balance.get((row["currency"], deferred)),
                                       "closing"),
                       f"trial_balance{suffix}.csv's {deferred} closing_credit - closing_debit")


def _income_less_manual(package: Package, income: dict, currency: str, role: str) -> Decimal:
    """The income statement's line of the chart's `role` less what manual journals
    posted to it: the revenue the credit lots earned."""
    account = package.accounts[role]
    return income.get((currency, account), ZERO) - _manual_revenue(package, currency, account,
                                                                  False)


# Each listing of usage revenue, the column that holds it.
USAGE_REVENUE_LISTINGS = (("revenue_by_customer", "revenue"), ("kpis_by_product", "usage_revenue"),
                          ("kpis_by_meter", "usage_revenue"))


def check_revenue_listings_against_income(package: Package, income: dict) -> None:
    """Revenue by customer, by product and by meter each add up, per currency, to the
    income statement's usage revenue; breakage by lot to its breakage revenue where every
    product of the currency recognises breakage at expiry (remote method, by
    disclosure_breakage_judgements.csv), and its escheat to the rollforward's."""
    currencies = sorted({currency for currency, _ in income}
                        | {row["currency"] for row in package.rows("rollforward")})
    proportional = {row["currency"] for row in package.rows("disclosure_breakage_judgements")
                    if row.get("method") != "remote"}
    for currency in currencies:
        usage = _income_less_manual(package, income, currency, "usage_revenue")
        for name, column in USAGE_REVENUE_LISTINGS:
            _expect_sum(package, name, currency, column, usage,
                        f"income_statement.csv's {package.accounts['usage_revenue']} less "
                        "manual journals")
        if currency not in proportional and "" not in proportional:
            _expect_sum(package, "breakage_by_lot", currency, "breakage",
                        _income_less_manual(package, income, currency, "breakage_revenue"),
                        f"income_statement.csv's {package.accounts['breakage_revenue']} less "
                        "manual journals")
        escheat = sum((package.figure("rollforward", index, "escheat")
                       for index, row in enumerate(package.rows("rollforward"))
                       if row["currency"] == currency), ZERO)
        _expect_sum(package, "breakage_by_lot", currency, "escheat", escheat,
                    "rollforward.csv's escheat")


def _expect_sum(package: Package, name: str, currency: str, column: str, expected: Decimal,
                why: str) -> None:
    if name not in package.reports:
        return  # a package from before the report
    found = sum((package.figure(name, index, column) for index, row
                 in enumerate(package.rows(name)) if row["currency"] == currency), ZERO)
    if found != expected:
        package.problems.add(f"{name}.csv currency {currency} column {column}",
                             f"sums to {found} but {why} is {expected}")


def check_revenue_from_opening(package: Package) -> None:
    """Revenue recognised out of the opening balance is at most that balance (the
    rollforward's opening), and its usage and breakage at most the rollforward's."""
    rollforward = {row["currency"]: index for index, row in enumerate(package.rows("rollforward"))}
    name = "revenue_from_opening"
    for index, row in enumerate(package.rows(name)):
        position = rollforward.get(row["currency"])
        for column, limit in (("total", "opening"), ("usage_revenue", "usage_revenue"),
                              ("breakage", "breakage")):
            ceiling = ZERO if position is None else package.figure("rollforward", position,
                                                                   limit)
            found = package.figure(name, index, column)
            if found > ceiling:
                package.problems.add(package.where(name, index, column),
                                     f"{found} but rollforward.csv's {limit} is only {ceiling}")


def check_reports(package: Package) -> None:
    def statements(suffix: str) -> None:
        trial_balance = check_trial_balance(package, f"trial_balance{suffix}")
        income = check_income_statement(package, f"income_statement{suffix}", trial_balance)
        sheet = check_balance_sheet(package, f"balance_sheet{suffix}", trial_balance)
        check_rollforwards(package, income, sheet, suffix)
        check_waterfall(package, suffix)
        check_income_accounts_are_on_the_statement(package, suffix, trial_balance, income)
        check_income_statement_against_trial_balance(package, suffix, trial_balance)
        check_balance_sheet_against_trial_balance(package, suffix, trial_balance)
        check_rollforward_against_trial_balance(package, suffix, trial_balance)
        check_waterfall_against_trial_balance(package, suffix, trial_balance)
        if not suffix:
            check_disaggregation(package, income)
            check_revenue_listings_against_income(package, income)

    checks = [(f"statements{suffix or ''}", lambda suffix=suffix: statements(suffix))
              for suffix in ("", "_functional") if f"trial_balance{suffix}" in package.reports]
    checks += [("revenue and KPIs", lambda: check_revenue_and_kpis(package)),
               ("revenue by customer", lambda: check_revenue_by_customer_against_rollforward(
                   package)),
               ("other reports", lambda: check_other_reports(package)),
               ("revenue from the opening balance", lambda: check_revenue_from_opening(package)),
               ("uncovered usage", lambda: check_uncovered_usage(package)),
               ("manual journals", lambda: check_manual_journals(package))]
    for what, check in checks:
        try:
            check()
        except KeyError as missing:  # a file of another layout: say so, check the rest
            package.problems.add(f"{what}", f"a report has no column {missing} (a layout this "
                                            "reader does not know)")


def check_workbook(package: Package, workbook_path: Path) -> None:
    """Each sheet holds its CSV's rows (numbers to the currency's places), and each
    "Total CURRENCY" row is the sum of that currency's rows, never of a rate."""
    import openpyxl

    workbook = openpyxl.load_workbook(workbook_path, read_only=True)
    for name, rows in package.reports.items():
        sheet_name = name[:31]
        if sheet_name not in workbook.sheetnames:
            package.problems.add(f"{workbook_path.name} sheet {sheet_name}", "missing")
            continue
        cells = list(workbook[sheet_name].iter_rows(values_only=True))
        header = list(package.headers[name])
        if rows and list(cells[0][:len(header)]) != header:
            package.problems.add(f"{workbook_path.name} sheet {sheet_name} row 1",
                                 "header differs from the CSV's")
            continue
        for index, row in enumerate(rows):
            found = cells[index + 1] if index + 1 < len(cells) else ()
            for position, column in enumerate(header):
                _compare_cell(package, workbook_path.name, sheet_name, index + 2, column,
                              row[column], found[position] if position < len(found) else None)
        _check_sheet_totals(package, f"{workbook_path.name} sheet {sheet_name}", header, rows,
                            cells[len(rows) + 1:], name in HAVE_THEIR_OWN_TOTALS)
    known = {name[:31] for name in package.reports}
    for sheet_name in workbook.sheetnames:
        if sheet_name not in known:
            package.problems.add(f"{workbook_path.name} sheet {sheet_name}",
                                 "a sheet no CSV file of the package has")
    workbook.close()


def _compare_cell(package: Package, book: str, sheet: str, row_number: int, column: str,
                  expected: str, found) -> None:
    where = f"{book} sheet {sheet} row {row_number} column {column}"
    expected_number = number(expected) if re.fullmatch(r"-?[0-9]+(\.[0-9]+)?", expected) else None
    if isinstance(found, (int, float)) and expected_number is not None:
        places = max(0, -expected_number.as_tuple().exponent)
        if Decimal(repr(found)).quantize(Decimal(1).scaleb(-places)) != expected_number:
            package.problems.add(where, f"{found} but the CSV says {expected}")
    elif (found if found is not None else "") != expected and f"'{expected}" != found \
            and str(found) != expected:
        package.problems.add(where, f"{found!r} but the CSV says {expected!r}")


# Reports whose rows are not to be added up by a sheet's "Total" row: statements with
# totals of their own, one balance shown two ways (the waterfall), one row per currency,
# and the KPIs (counts and ratios of different things).
HAVE_THEIR_OWN_TOTALS = frozenset({
    *(f"{name}{suffix}" for suffix in ("", "_functional") for name in (
        "trial_balance", "income_statement", "balance_sheet", "waterfall", "rollforward")),
    "revenue_from_opening", "kpis", "reconciliations"})


def _check_sheet_totals(package: Package, where: str, header: list[str], rows: list[dict],
                        total_rows: list[tuple], has_own_totals: bool) -> None:
    """The rows after the CSV's: "Total CURRENCY" rows only, one per currency the rows
    have, each the sum of that currency's rows; any other row is one the CSV has not."""
    currencies = {row.get("currency") for row in rows}
    totalled: set[str] = set()
    for offset, cells in enumerate(total_rows):
        row_where = f"{where} row {len(rows) + offset + 2}"
        label = cells[0] if cells else None
        if all(cell is None or cell == "" for cell in cells):
            continue
        if not (isinstance(label, str) and label.startswith("Total ")):
            package.problems.add(row_where, f"{label!r}: a row the CSV does not have")
            continue
        if has_own_totals:
            package.problems.add(row_where, "a Total row adds rows that must not be added up")
            continue
        currency = label.removeprefix("Total ")
        if currency not in currencies or currency in totalled:
            why = "a second total" if currency in totalled else "no rows in the CSV"
            package.problems.add(f"{row_where} column {header[0]}", f"{label!r}: {why} for "
                                 f"currency {currency}")
            continue
        totalled.add(currency)
        _check_total_row(package, row_where, header, rows, cells, currency)


def _check_total_row(package: Package, where: str, header: list[str], rows: list[dict],
                     cells: tuple, currency: str) -> None:
    for position, column in enumerate(header[1:], start=1):
        value = cells[position] if position < len(cells) else None
        if value is None:
            continue
        cell = f"{where} column {column}"
        if NEVER_SUMMED.search(column) or "currency" not in header:
            package.problems.add(cell, "a total of a rate, ratio or across currencies")
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            package.problems.add(cell, f"{value!r} is not a number")
            continue
        expected = sum((number(row[column]) or ZERO for row in rows
                        if row.get("currency") == currency), ZERO)
        places = max(0, -expected.as_tuple().exponent)
        if Decimal(repr(value)).quantize(Decimal(1).scaleb(-places)) != expected:
            package.problems.add(cell, f"{value} but the {currency} rows sum to {expected}")


def _json_text(value) -> str:
    """A JSON cell as the CSV writes it: nothing as an empty cell, anything else as text."""
    return "" if value is None else str(value)


def check_json(package: Package) -> None:
    """Each report's JSON file holds its CSV's rows, cell for cell (a text the CSV writes
    with an apostrophe, so that a spreadsheet does not run it as a formula, keeps it)."""
    for path in sorted(package.directory.glob("*.json")):
        name = path.stem
        if path.name == "manifest.json":
            continue
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            document = None
        rows = document.get("rows") if isinstance(document, dict) else None
        if not isinstance(rows, list) or document.get("report") != name:
            package.problems.add(path.name, f"is not report {name}'s rows as JSON")
            continue
        if name not in package.reports:
            package.problems.add(path.name, f"has no {name}.csv beside it")
            continue
        csv_rows, header = package.rows(name), package.headers[name]
        if len(rows) != len(csv_rows):
            package.problems.add(path.name, f"{len(rows)} rows but {name}.csv has {len(csv_rows)}")
            continue
        for index, (row, csv_row) in enumerate(zip(rows, csv_rows, strict=True)):
            where = f"{path.name} row {index + 1}"
            if not isinstance(row, dict):
                package.problems.add(where, "is not an object")
                continue
            if missing := [column for column in row if column not in header]:
                package.problems.add(where, f"has {', '.join(missing)}: {name}.csv has no such "
                                            "column")
            for column in header:
                text = _json_text(row.get(column))
                if csv_row.get(column) not in (text, "'" + text):
                    package.problems.add(f"{where} column {column}", f"{text!r} but {name}.csv "
                                         f"says {csv_row.get(column)!r}")


class _SummaryReader(HTMLParser):
    """The summary page's tables (by their heading) and the bridge charts' figures."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.bridges: dict[str, list[tuple[str, str]]] = {}
        self._heading = self._text = None
        self._bridge: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._in_heading = self._in_value = self._in_label = False
        self._labels: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "h2":
            self._in_heading, self._heading = True, ""
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "svg" and "bridge" in (attributes.get("class") or "").split():
            title = attributes.get("aria-label", "")
            self._bridge = title.rsplit("(", 1)[-1].rstrip(")")
            self.bridges[self._bridge] = []
        elif tag == "text" and self._bridge is not None:
            self._in_value = attributes.get("class") == "value"
            self._in_label = not self._in_value and attributes.get("font-size") == "9"

    def handle_endtag(self, tag):
        if tag == "h2":
            self._in_heading = False
            self.tables.setdefault(self._heading, [])
        elif tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.tables.setdefault(self._heading or "", []).append(self._row)
            self._row = None
        elif tag == "svg" and self._bridge is not None:
            values = self.bridges[self._bridge]
            self.bridges[self._bridge] = list(zip(self._labels, [v for _, v in values],
                                                  strict=False))
            self._bridge, self._labels = None, []
        elif tag == "text":
            self._in_value = self._in_label = False

    def handle_data(self, data):
        if self._in_heading:
            self._heading += data
        if self._cell is not None:
            self._cell.append(data)
        if self._bridge is not None and self._in_value:
            self.bridges[self._bridge].append(("", data.strip()))
        if self._bridge is not None and self._in_label:
            self._labels.append(data.strip())


# The summary page's tables, by heading, and the CSV file each must show row for row. The
# functional-currency statements are read back too: the page is where most people see them.
SUMMARY_TABLES = {
    "Deferred revenue rollforward": "rollforward", "Trial balance": "trial_balance",
    "Burstiness by meter": "burstiness",
    "Income statement": "income_statement", "Balance sheet": "balance_sheet",
    "Reconciliations": "reconciliations", "Unit economics and usage KPIs": "kpis",
    "Trial balance (functional currency)": "trial_balance_functional",
    "Income statement (functional currency)": "income_statement_functional",
    "Balance sheet (functional currency)": "balance_sheet_functional",
    "Deferred revenue rollforward (functional currency)": "rollforward_functional",
    "Waterfall of the closing balance (functional currency)": "waterfall_functional"}


def check_summary(package: Package, html: str, source: str = "summary.html") -> None:
    """The summary's tables show the CSV files' figures, and each currency's deferred
    revenue bridge foots: opening + every movement = closing, as the rollforward says."""
    reader = _SummaryReader()
    reader.feed(html)
    for title, name in SUMMARY_TABLES.items():
        table = reader.tables.get(title)
        if table is None:
            package.problems.add(f"{source} table {title!r}", "missing")
            continue
        header, body = (table[0], table[1:]) if table else ([], [])
        rows = package.rows(name)
        if len(body) != len(rows):
            package.problems.add(f"{source} table {title!r}",
                                 f"{len(body)} rows but {name}.csv has {len(rows)}")
        for index, (cells, row) in enumerate(zip(body, rows, strict=False)):
            for column, cell in zip(header, cells, strict=False):
                if str(row.get(column, "")) != cell:
                    package.problems.add(f"{source} table {title!r} row {index + 1} column "
                                         f"{column}", f"{cell!r} but {name}.csv says "
                                         f"{row.get(column, '')!r}")
    rollforward = {row["currency"]: row for row in package.rows("rollforward")}
    if set(reader.bridges) != set(rollforward):
        package.problems.add(f"{source} bridge", f"currencies {sorted(reader.bridges)} but the "
                             f"rollforward has {sorted(rollforward)}")
    for currency, steps in sorted(reader.bridges.items()):
        _check_bridge(package, f"{source} bridge {currency}", steps, rollforward.get(currency))
    check_charts(package, html, source)


BRIDGE_SIGNS = {"opening": 1, "purchases": 1, "usage": -1, "breakage": -1, "refunds": -1,
                "escheat": -1, "manual_journals": 1}
BRIDGE_COLUMNS = {"opening": "opening", "purchases": "purchases", "usage": "usage_revenue",
                  "breakage": "breakage", "refunds": "refunds", "escheat": "escheat",
                  "manual_journals": "manual_journals", "closing": "closing"}
# A summary from before manual journals has no such step; the bridge still has to foot.
OPTIONAL_BRIDGE_STEPS = ("manual_journals",)


def _check_bridge(package: Package, where: str, steps: list[tuple[str, str]],
                  rollforward: dict | None) -> None:
    figures = {label: number(value) for label, value in steps}
    if None in figures.values() or "closing" not in figures:
        package.problems.add(where, f"unreadable figures {steps}")
        return
    movement = sum((figures.get(label, ZERO) for label in BRIDGE_SIGNS), ZERO)
    if missing := [label for label in BRIDGE_SIGNS
                   if label not in figures and label not in OPTIONAL_BRIDGE_STEPS]:
        package.problems.add(where, f"leaves out {', '.join(missing)}")
    if movement != figures["closing"]:
        package.problems.add(f"{where} closing", f"{figures['closing']} but opening and the "
                             f"movements come to {movement}: the bridge does not foot")
    for label, column in BRIDGE_COLUMNS.items():
        if rollforward is None or label not in figures or column not in rollforward:
            continue
        expected = number(rollforward[column]) * BRIDGE_SIGNS.get(label, 1)
        if figures[label] != expected:
            package.problems.add(f"{where} {label}",
                                 f"{figures[label]} but rollforward.csv says {expected}")


class _ChartReader(HTMLParser):
    """Each chart of the summary page: its class, its title (aria-label) and the tooltip
    of each bar ("<series> <period or month>: <figure>")."""

    def __init__(self) -> None:
        super().__init__()
        self.charts: list[tuple[str, str, list[str]]] = []
        self._tooltip: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        classes = (attributes.get("class") or "").split()
        if tag == "svg" and "chart" in classes:
            kind = next((name for name in classes if name != "chart"), "")
            self.charts.append((kind, attributes.get("aria-label") or "", []))
        elif tag == "title" and self.charts:
            self._tooltip = []

    def handle_endtag(self, tag):
        if tag == "title" and self._tooltip is not None:
            self.charts[-1][2].append("".join(self._tooltip).strip())
            self._tooltip = None

    def handle_data(self, data):
        if self._tooltip is not None:
            self._tooltip.append(data)


TOOLTIP = re.compile(r"(?P<series>.+) (?P<when>\d{4}-\d{2}|thereafter|[a-z_]+): (?P<figure>\S*)")
# The trend charts' series and the KPI (kpis.csv metric) each plots.
TREND_METRICS = {"price per credit": "effective price per credit",
                 "cost per credit": "cost per credit", "gross margin %": "gross margin %",
                 "credits": "credits burned", "active": "active customers",
                 "top 5 share": "top 5 customers' share of credits burned"}


def _chart_currency(title: str) -> str:
    found = re.search(r"\(([A-Z]{3})\)$", title)
    return found.group(1) if found else ""


def check_charts(package: Package, html: str, source: str = "summary.html") -> None:
    """Every bar's tooltip on the summary page shows the figure of the CSV file it plots:
    the bridge the rollforward's, the history this period's closing deferred revenue and
    revenue recognised out of it, the waterfall each month of waterfall.csv (each with its bar), the
    trends the KPIs of the periods kpis.csv has."""
    reader = _ChartReader()
    reader.feed(html)
    period = _package_period(package)
    for kind, title, tooltips in reader.charts:
        where, currency = f"{source} chart {title!r}", _chart_currency(title)
        shown = {}
        for tooltip in tooltips:
            match = TOOLTIP.fullmatch(tooltip)
            if match is None:
                package.problems.add(f"{where} bar {tooltip!r}", "unreadable tooltip")
                continue
            key = (match["series"], match["when"])
            shown[key] = match["figure"]
            source_cell = _plotted_cell(package, kind, currency, key, period)
            if source_cell is not None:
                _compare_bar(package, f"{where} bar {tooltip!r}", match["figure"], source_cell)
        if kind == "waterfall":
            _check_waterfall_bars(package, where, currency, shown)


def _package_period(package: Package) -> str | None:
    try:
        return str(Period(json.loads((package.directory / "manifest.json").read_text())
                          ["period"]))
    except (OSError, ValueError, KeyError, TypeError):  # the manifest's checks name it
        return None


def _plotted_cell(package: Package, kind: str, currency: str, key: tuple[str, str],
                  period: str | None) -> tuple[str, int, str, int] | None:
    """(report, row index, column, sign) of the figure a bar plots ("a+b": the sum of two
    columns); None: one the package does not hold (a month of the history before the
    previous one, whose closing balance is this period's opening)."""
    series, when = key
    if kind == "bridge" and series == "movement" and when in BRIDGE_COLUMNS:
        index = _row_index(package, "rollforward", currency=currency)
        return ("rollforward", index, BRIDGE_COLUMNS[when], BRIDGE_SIGNS.get(when, 1))
    if kind == "history" and period and series == "deferred balance" \
            and when == str(Period(period).previous()):  # last month's closing: our opening
        return ("rollforward", _row_index(package, "rollforward", currency=currency),
                "opening", 1)
    if kind == "history" and when == period:
        if series == "deferred balance":
            return ("rollforward", _row_index(package, "rollforward", currency=currency),
                    "closing", 1)
        if series == "revenue":  # recognised out of deferred revenue: usage and breakage
            return ("rollforward", _row_index(package, "rollforward", currency=currency),
                    "usage_revenue+breakage", 1)
    if kind == "waterfall":
        return ("waterfall", _row_index(package, "waterfall", currency=currency, method=series),
                when, 1)
    if kind == "trend" and series in TREND_METRICS:
        column = next((name for name in package.headers.get("kpis", [])
                       if name.endswith(f"({when})")), None)
        if column is not None:
            return ("kpis", _row_index(package, "kpis", currency=currency,
                                       metric=TREND_METRICS[series]), column, 1)
    return None


def _row_index(package: Package, name: str, **wanted: str) -> int:
    """The first row of `name` with these values; -1: none."""
    return next((index for index, row in enumerate(package.rows(name))
                 if all(row.get(column) == value for column, value in wanted.items())), -1)


def _compare_bar(package: Package, where: str, figure: str,
                 source_cell: tuple[str, int, str, int]) -> None:
    name, index, column, sign = source_cell
    columns = column.split("+")  # a bar of two columns' sum
    if index < 0 or any(part not in package.rows(name)[index] for part in columns):
        package.problems.add(where, f"{name}.csv has no such figure")
        return
    texts = [package.rows(name)[index][part] for part in columns]
    text_in_file = " + ".join(texts)
    figures = [number(text) for text in texts]
    expected = None if None in figures else sign * sum(figures, ZERO)
    shown = number(figure)
    if shown != expected:
        package.problems.add(where, f"{figure} but {package.where(name, index, column)} says "
                             f"{expected if expected is not None else repr(text_in_file)}")


def _check_waterfall_bars(package: Package, where: str, currency: str, shown: dict) -> None:
    """Each month of each method of waterfall.csv has its bar."""
    for index, row in enumerate(package.rows("waterfall")):
        if row["currency"] != currency:
            continue
        for column in row:
            if column not in ("method", "currency", "total") and (row["method"], column) \
                    not in shown:
                package.problems.add(f"{where}", f"no bar for {row['method']} {column}, "
                                     f"{package.where('waterfall', index, column)}")


# The ledger's own sums per account and currency, from its journal (published batches,
# as the books' statements count them): balance before the period, the period's debits and
# credits (each line on its side, not netted), balance at its end; integer minor units.
LEDGER_TRIAL_BALANCE_SQL = """
    SELECT {keys},
           SUM(CASE WHEN e.period < :period THEN l.{amount} ELSE 0 END) AS opening_minor,
           SUM(CASE WHEN e.period = :period AND l.{amount} > 0 THEN l.{amount} ELSE 0 END)
             AS period_debit_minor,
           SUM(CASE WHEN e.period = :period AND l.{amount} < 0 THEN -l.{amount} ELSE 0 END)
             AS period_credit_minor,
           SUM(l.{amount}) AS closing_minor
    FROM journal_lines l JOIN journal_entries e ON e.entry_id = l.entry_id
         JOIN batches b ON b.batch_id = e.batch_id
    WHERE e.period <= :period AND b.status <> :open
    GROUP BY {keys}
"""
# Two fixed texts, no value spliced in: the functional form sums every currency's lines
# per account in the functional amount.
LEDGER_TRIAL_BALANCE_QUERIES = {
    "transaction": LEDGER_TRIAL_BALANCE_SQL.format(keys="l.account, l.currency",
                                                   amount="amount_minor"),
    "functional": LEDGER_TRIAL_BALANCE_SQL.format(keys="l.account", amount="functional_minor")}


def _ledger_trial_balance(connection: Connection, period: Period, functional_currency: str | None
                          ) -> dict[tuple[str, str], dict[str, Decimal]]:
    """{(currency, account): the six trial balance figures as decimals} from the journal."""
    query = LEDGER_TRIAL_BALANCE_QUERIES["functional" if functional_currency else "transaction"]
    figures = {}
    for account, *rest in connection.execute(text(query), {"period": period,
                                                           "open": BatchStatus.OPEN}):
        currency = functional_currency or rest.pop(0)
        opening, debit, credit, closing = rest
        exponent = minor_unit_exponent(currency)
        opening, closing = int(opening), int(closing)
        in_minor = {"opening_debit": max(opening, 0), "opening_credit": max(-opening, 0),
                    "period_debit": int(debit), "period_credit": int(credit),
                    "closing_debit": max(closing, 0), "closing_credit": max(-closing, 0)}
        figures[(currency, account)] = {column: Decimal(value).scaleb(-exponent)
                                        for column, value in in_minor.items()}
    return figures


def check_trial_balance_against_ledger(package: Package, connection: Connection, period: Period,
                                       suffix: str = "") -> None:
    """Each account row of trial_balance{suffix}.csv is the ledger's own sum of its journal
    lines; an account the journal has and the file leaves out, or the reverse, is named."""
    name = f"trial_balance{suffix}"
    rows = list(enumerate(package.rows(name)))
    functional_currency = None
    if suffix:
        currencies = sorted({row.get("currency") or "" for _, row in rows})
        if len(currencies) > 1:
            package.problems.add(f"{name}.csv column currency",
                                 f"{', '.join(currencies)}: one functional currency expected")
            return
        functional_currency = currencies[0] if currencies else None
        if functional_currency is None:
            return
        if not is_known_currency(functional_currency):
            package.problems.add(f"{name}.csv column currency", f"{functional_currency!r} is "
                                 "not an ISO 4217 currency with a minor unit")
            return
    ledger = _ledger_trial_balance(connection, period, functional_currency)
    listed = set()
    for index, row in rows:
        if row.get("row_type") != "account":
            continue
        key = (row.get("currency"), row.get("account"))
        listed.add(key)
        if key not in ledger:
            package.problems.add(f"{name}.csv row {index + 2}", f"{key[0]} {key[1]} has no "
                                 f"lines in the ledger's journal up to {period}")
            continue
        for column in TRIAL_BALANCE_FIGURES:
            package.expect(name, index, column, ledger[key][column],
                           f"the ledger's journal ({key[0]} {key[1]})")
    for currency, account in sorted(set(ledger) - listed):
        package.problems.add(f"{name}.csv", f"no row for {currency} {account}, which the "
                             f"ledger's journal has (closing debit "
                             f"{ledger[(currency, account)]['closing_debit']}, credit "
                             f"{ledger[(currency, account)]['closing_credit']})")


def _manifest_and_period(directory: Path, problems: PackageProblems
                         ) -> tuple[dict, Period] | tuple[None, None]:
    """The manifest and its period, or (None, None) with the reason among the problems."""
    try:
        manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        manifest = None
    if not isinstance(manifest, dict):
        problems.add("manifest.json", "cannot be read, so the package cannot be tied to a ledger")
        return None, None
    try:
        return manifest, Period(manifest.get("period"))
    except ValueError:  # the file's text, whatever it is, is named
        problems.add("manifest.json key period", f"{manifest.get('period')!r} is not a period YYYY-MM")
        return None, None


def check_manifest_against_ledger(directory: Path, connection: Connection,
                                  problems: PackageProblems) -> Period | None:
    """The manifest's ledger id, journal digest and line count, and chain head, against the
    ledger's journal recomputed; returns the package's period (None: it cannot be read)."""
    manifest, period = _manifest_and_period(directory, problems)
    if period is None:
        return None
    anchor = manifest.get("anchor")
    recorded_ledger = anchor.get("ledger") if isinstance(anchor, dict) else None
    this_ledger = known_ledger_id(connection)
    if recorded_ledger is not None and recorded_ledger != this_ledger:
        problems.add("manifest.json key anchor.ledger", f"{recorded_ledger} but this ledger is "
                     f"{this_ledger or 'one with no id yet (nothing posted)'}: the package is "
                     "another ledger's")
        return None  # every figure would differ: the one line that says why is enough
    digest, lines = journal_digest(connection, period)
    if manifest.get("journal_digest") != digest:
        problems.add("manifest.json key journal_digest", f"{manifest.get('journal_digest')} but "
                     f"the ledger's journal up to {period} digests to {digest}")
    if manifest.get("journal_lines") != lines:
        problems.add("manifest.json key journal_lines", f"{manifest.get('journal_lines')} but the "
                     f"ledger's journal has {lines} lines up to {period}")
    _check_chain_head(manifest.get("chain_head"), connection, problems)
    _check_manifest_hash(directory, manifest, period, connection, problems)
    return period


def _check_manifest_hash(directory: Path, manifest: dict, period: Period,
                         connection: Connection, problems: PackageProblems) -> None:
    """manifest.json's SHA-256 against the one its close recorded in its period event
    (sealed on the record chain): the manifest lists every file's SHA-256, so a file
    changed and the manifest re-hashed to match still differs here."""
    version = manifest.get("version")
    event = connection.execute(text(
        "SELECT id, manifest_sha256 FROM period_events WHERE period = :period "
        "AND action = :close AND version = :version"), {
            "period": period, "close": PeriodAction.CLOSE,
            "version": version if isinstance(version, int) else -1}).first()
    if event is None:
        problems.add("manifest.json key version", f"{version!r} but the ledger records no close "
                     f"of {period} version {version!r}")
    elif event.manifest_sha256 is None:
        problems.notes.append(f"manifest.json SHA-256 against the ledger: not recorded "
                              f"({MANIFEST_HASH_NOT_RECORDED})")
    elif (found := hashlib.sha256((directory / "manifest.json").read_bytes()).hexdigest()
          ) != event.manifest_sha256:
        problems.add("manifest.json", f"SHA-256 {found} but its close (period event id "
                     f"{event.id}) recorded {event.manifest_sha256}: the manifest was altered")


def _check_chain_head(head, connection: Connection, problems: PackageProblems) -> None:
    sequence = head.get("sequence") if isinstance(head, dict) else None
    if not isinstance(sequence, int) or isinstance(sequence, bool) or sequence < 0:
        problems.add("manifest.json key chain_head", f"{head!r} has no sequence")
        return
    chain = verify_chain(connection, {sequence})
    if not chain.holds:
        problems.add("ledger journal hash chain", chain.first_mismatch)
    elif sequence not in chain.links:
        problems.add("manifest.json key chain_head.sequence", f"{sequence} but the ledger's "
                     f"chain has {chain.entries_checked} seals")
    elif chain.links[sequence] != head.get("hash"):
        problems.add("manifest.json key chain_head.hash", f"{head.get('hash')} but the ledger's "
                     f"chain at seal {sequence} is {chain.links[sequence]}")


def check_against_ledger(package: Package, connection: Connection,
                         with_manifest: bool = True) -> None:
    """The package tied to the ledger it came from (see the module's docstring).

    with_manifest=False leaves out the manifest's digest and chain head (the close that
    is writing the package worked them out itself a moment ago, and re-reading the whole
    chain would only repeat that) and ties the figures: both trial balances."""
    if with_manifest:
        period = check_manifest_against_ledger(package.directory, connection, package.problems)
    else:
        period = _manifest_and_period(package.directory, package.problems)[1]
    if period is None:
        return
    for suffix in ("", "_functional"):
        if f"trial_balance{suffix}" in package.reports:
            check_trial_balance_against_ledger(package, connection, period, suffix)


def verify_package(directory: Path, rendered_html: str | None = None,
                   ledger: Connection | None = None,
                   ledger_manifest_checks: bool = True) -> list[str]:
    """Every problem of the package in `directory`, one line each (none: it ties out).

    rendered_html: the summary page as a browser rendered it (a DOM dump), checked
    instead of the file's own text. ledger: a connection to the ledger the package came
    from; given, the package is also tied to its journal (`check_against_ledger`, with
    the manifest's digest and chain head unless `ledger_manifest_checks` is False)."""
    directory = Path(directory)
    problems = PackageProblems()
    if not directory.is_dir():
        problems.add(str(directory), "is not a directory")
        return problems
    check_manifest(directory, problems)
    package = Package(directory, problems)
    check_reports(package)
    check_json(package)
    for workbook in sorted(directory.glob("*.xlsx")):
        check_workbook(package, workbook)
    summary = directory / "summary.html"
    if rendered_html is not None or summary.exists():
        check_summary(package, rendered_html if rendered_html is not None
                      else summary.read_text(encoding="utf-8"))
    if ledger is not None:
        check_against_ledger(package, ledger, ledger_manifest_checks)
    return problems
