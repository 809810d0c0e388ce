"""An independent reader of a close package: does every figure in it tie out?

It reads only the files (CSV, the workbook, summary.html, manifest.json) and knows the
reports' layouts from the product guide, never from the code that wrote them: nothing
here imports the close, the reports or the ledger. It recomputes every total from its
detail rows, checks the ties between reports (trial balance, income statement and
balance sheet; the rollforward and its breakdowns; the waterfall; revenue by customer,
product and meter; the KPIs; the reconciliations; the HTML summary's tables and its
bridge), compares the workbook with the CSV files, and checks each file against the
SHA-256 the manifest recorded. Each problem is one line naming the file, the sheet, the
row and the column that does not tie.

Figures are compared exactly, as decimals; a workbook cell holds a double, so it is
compared at the currency's places (the CSV holds the exact text).
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from html.parser import HTMLParser
from pathlib import Path

ROLLFORWARD_COLUMNS = ("opening", "purchases", "usage_revenue", "breakage", "refunds",
                       "escheat", "closing")
TRIAL_BALANCE_FIGURES = ("opening_debit", "opening_credit", "period_debit", "period_credit",
                         "closing_debit", "closing_credit")
# Column names that hold rates, ratios or days: a "Total" row must never add them.
NEVER_SUMMED = re.compile(r"rate|ratio|per_credit|share|days|percent|%")
ZERO = Decimal(0)


class PackageProblems(list):
    """The problems found, one line each."""

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


class Package:
    """The package's CSV reports, read once; `where` names a cell for a problem line."""

    def __init__(self, directory: Path, problems: PackageProblems) -> None:
        self.directory, self.problems = directory, problems
        self.reports: dict[str, list[dict]] = {}
        self.headers: dict[str, list[str]] = {}
        for path in sorted(directory.glob("*.csv")):
            self.headers[path.stem], self.reports[path.stem] = read_csv(path)

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
    files = json.loads(manifest_path.read_text()).get("files", {})
    for name, recorded in sorted(files.items()):
        path = directory / name
        if not path.exists():
            problems.add(name, "listed in manifest.json but missing")
        elif hashlib.sha256(path.read_bytes()).hexdigest() != recorded:
            problems.add(name, "SHA-256 differs from the one manifest.json recorded")
    for path in sorted(directory.iterdir()):
        if path.name != "manifest.json" and path.name not in files:
            problems.add(path.name, "not listed in manifest.json")


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
            accounts[(currency, row["account"])] = {
                column: package.figure(name, index, column) for column in TRIAL_BALANCE_FIGURES}
    return accounts


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
        return -sum((balance(name) for (cur, name) in trial_balance
                     if cur == currency and name.split(":")[0] in ("Income", "Expenses")), ZERO)
    return balance(account) if account.startswith("Assets") else -balance(account)


def check_rollforwards(package: Package, income: dict, sheet: dict, suffix: str = "") -> None:
    """Each row foots; closing = the balance sheet's deferred revenue; usage and breakage
    = the income statement's lines; the breakdowns add up to the rollforward."""
    name = f"rollforward{suffix}"
    for report in (name, *(() if suffix else ("rollforward_by_customer",
                                               "rollforward_by_product"))):
        for index, _ in enumerate(package.rows(report)):
            moved = (package.figure(report, index, "opening")
                     + package.figure(report, index, "purchases")
                     - sum((package.figure(report, index, column) for column in
                            ("usage_revenue", "breakage", "refunds", "escheat")), ZERO))
            package.expect(report, index, "closing", moved,
                           "opening + purchases - usage - breakage - refunds - escheat")
    for index, row in enumerate(package.rows(name)):
        currency = row["currency"]
        deferred = next((amount for (cur, line), amount in sheet.items()
                         if cur == currency and line.startswith("Liabilities:DeferredRevenue")),
                        ZERO)
        package.expect(name, index, "closing", deferred,
                       f"balance_sheet{suffix}'s deferred revenue")
        for column, account in (("usage_revenue", "Income:Revenue:Usage"),
                                ("breakage", "Income:Revenue:Breakage")):
            package.expect(name, index, column, income.get((currency, account), ZERO),
                           f"income_statement{suffix}'s {account}")
        if suffix:
            continue
        for breakdown in ("rollforward_by_customer", "rollforward_by_product"):
            members = [i for i, other in enumerate(package.rows(breakdown))
                       if other["currency"] == currency]
            for column in ROLLFORWARD_COLUMNS:
                package.expect(name, index, column,
                               sum((package.figure(breakdown, i, column) for i in members), ZERO),
                               f"the sum of {breakdown}")


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
        for column, account in (("usage_revenue", "Income:Revenue:Usage"),
                                ("breakage", "Income:Revenue:Breakage")):
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


def check_reports(package: Package) -> None:
    def statements(suffix: str) -> None:
        trial_balance = check_trial_balance(package, f"trial_balance{suffix}")
        income = check_income_statement(package, f"income_statement{suffix}", trial_balance)
        sheet = check_balance_sheet(package, f"balance_sheet{suffix}", trial_balance)
        check_rollforwards(package, income, sheet, suffix)
        check_waterfall(package, suffix)
        if not suffix:
            check_disaggregation(package, income)

    checks = [(f"statements{suffix or ''}", lambda suffix=suffix: statements(suffix))
              for suffix in ("", "_functional") if f"trial_balance{suffix}" in package.reports]
    checks += [("revenue and KPIs", lambda: check_revenue_and_kpis(package)),
               ("other reports", lambda: check_other_reports(package)),
               ("uncovered usage", lambda: check_uncovered_usage(package))]
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
    for offset, cells in enumerate(total_rows):
        label = cells[0] if cells else None
        if not (isinstance(label, str) and label.startswith("Total ")):
            continue
        if has_own_totals:
            package.problems.add(f"{where} row {len(rows) + offset + 2}",
                                 "a Total row adds rows that must not be added up")
            continue
        currency = label.removeprefix("Total ")
        for position, column in enumerate(header[1:], start=1):
            value = cells[position] if position < len(cells) else None
            if value is None:
                continue
            cell = f"{where} row {len(rows) + offset + 2} column {column}"
            if NEVER_SUMMED.search(column) or "currency" not in header:
                package.problems.add(cell, "a total of a rate, ratio or across currencies")
                continue
            expected = sum((number(row[column]) or ZERO for row in rows
                            if row.get("currency") == currency), ZERO)
            places = max(0, -expected.as_tuple().exponent)
            if Decimal(repr(value)).quantize(Decimal(1).scaleb(-places)) != expected:
                package.problems.add(cell, f"{value} but the {currency} rows sum to {expected}")


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


SUMMARY_TABLES = {"Deferred revenue rollforward": "rollforward", "Trial balance": "trial_balance",
                  "Income statement": "income_statement", "Reconciliations": "reconciliations",
                  "Unit economics and usage KPIs": "kpis"}


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


BRIDGE_SIGNS = {"opening": 1, "purchases": 1, "usage": -1, "breakage": -1, "refunds": -1,
                "escheat": -1}
BRIDGE_COLUMNS = {"opening": "opening", "purchases": "purchases", "usage": "usage_revenue",
                  "breakage": "breakage", "refunds": "refunds", "escheat": "escheat",
                  "closing": "closing"}


def _check_bridge(package: Package, where: str, steps: list[tuple[str, str]],
                  rollforward: dict | None) -> None:
    figures = {label: number(value) for label, value in steps}
    if None in figures.values() or "closing" not in figures:
        package.problems.add(where, f"unreadable figures {steps}")
        return
    movement = sum((figures.get(label, ZERO) for label in BRIDGE_SIGNS), ZERO)
    if missing := [label for label in BRIDGE_SIGNS if label not in figures]:
        package.problems.add(where, f"leaves out {', '.join(missing)}")
    if movement != figures["closing"]:
        package.problems.add(f"{where} closing", f"{figures['closing']} but opening and the "
                             f"movements come to {movement}: the bridge does not foot")
    for label, column in BRIDGE_COLUMNS.items():
        if rollforward is None or label not in figures:
            continue
        expected = number(rollforward[column]) * BRIDGE_SIGNS.get(label, 1)
        if figures[label] != expected:
            package.problems.add(f"{where} {label}",
                                 f"{figures[label]} but rollforward.csv says {expected}")


def verify_package(directory: Path, rendered_html: str | None = None) -> list[str]:
    """Every problem of the package in `directory`, one line each (none: it ties out).

    rendered_html: the summary page as a browser rendered it (a DOM dump), checked
    instead of the file's own text."""
    directory = Path(directory)
    problems = PackageProblems()
    if not directory.is_dir():
        problems.add(str(directory), "is not a directory")
        return problems
    check_manifest(directory, problems)
    package = Package(directory, problems)
    check_reports(package)
    for workbook in sorted(directory.glob("*.xlsx")):
        check_workbook(package, workbook)
    summary = directory / "summary.html"
    if rendered_html is not None or summary.exists():
        check_summary(package, rendered_html if rendered_html is not None
                      else summary.read_text(encoding="utf-8"))
    return problems
