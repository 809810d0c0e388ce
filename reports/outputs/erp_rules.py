"""Each ERP's published journal import rules, as code, and the validator every export passes.

A target's rules (`TARGET_RULES`) say which columns its import file has, which are
required, how long each may be, how dates and amounts are written, how many lines a
journal and a file may hold, and how it handles currency. `validate_rows` reads an export
as the rows it is written as (so an export edited by hand is checked the same way) and
returns every rule it breaks, each naming the journal, the line and the field; when the
ledger's expected functional amounts are given it also checks that the ERP, posting each
line at the journal's exchange rate, arrives at them to the cent. The README's "Audit
trail and exports" section names the vendor document each rule comes from, and each rule
below cites it too; a limit no vendor page was found for says so and how it was chosen.

`mapping_problems` checks the account codes themselves (the policy's
`[export.account_codes.<target>]`) before anything is written: an account code the export
would have to change (a spreadsheet's formula guard) or one the ERP refuses in a journal
(Xero's system accounts) is refused, never sent.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from ledger.money import minor_unit_exponent

MAX_RATE_DECIMAL_PLACES = 8  # our own bound: the rate column's precision is not published
MAX_PROBLEMS_SHOWN = 5
# What a spreadsheet runs as a formula; the export's cells starting so get an apostrophe
# (reports.outputs.package.FORMULA_PREFIXES), which an account code must never need.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_NUMBER_TEXT = re.compile(r"-?[0-9]+(\.[0-9]+)?")

# Xero's system accounts that take no manual journal ("No" in the table of Xero Central,
# "Locked and system accounts in your chart of accounts", help.xero.com/uk/Chart-LockedSystem:
# Accounts Payable, Accounts Receivable, Bank Revaluation, Current Earnings, Tracking
# Transfers, Unpaid Expense Claims; Xero Central, "Record movements in system accounts",
# help.xero.com/nz/Q_Accruals_ARAP: journal to a secondary account instead), under their
# codes in Xero's default chart of accounts. 610, 800, 801 and 877 are as a third-party copy
# of Xero's standard New Zealand chart lists them; 497 and 498 (the multi-currency accounts,
# absent from that copy) are unconfirmed, and so is Unrealised Currency Gains' "No" (its row
# was cut off in the copy read here). An organisation may renumber its accounts, so this
# catches the default chart's codes only. Current Earnings has no code (Xero computes it).
XERO_SYSTEM_ACCOUNTS_WITHOUT_MANUAL_JOURNALS = {
    "610": "Accounts Receivable",
    "800": "Accounts Payable",
    "801": "Unpaid Expense Claims",
    "877": "Tracking Transfers",
    "497": "Bank Revaluations",
    "498": "Unrealised Currency Gains (unconfirmed)",
}
XERO_SYSTEM_ACCOUNT_RULE = ('Xero refuses manual journals to its system accounts (Xero Central, '
                            '"Locked and system accounts in your chart of accounts")')


class ExportRefused(ValueError):
    """An export breaks its target's import rules or cannot be expressed exactly; one line."""


@dataclass(frozen=True)
class TargetRules:
    """One ERP's journal import rules."""

    name: str
    columns: tuple[str, ...]
    required: tuple[str, ...]
    max_lengths: dict[str, int]
    id_column: str
    date_columns: tuple[str, ...]
    date_format: str  # strftime pattern
    # How a line's amount is written: "debit_credit" (two unsigned columns) or a signed column.
    amount_columns: tuple[str, ...]
    max_amount_decimal_places: int
    max_lines_per_journal: int | None
    max_lines_per_file: int | None
    # "rate": one exchange rate per journal; "functional_only": base currency only;
    # "document_and_local": document and local currency amounts on every line.
    currency_handling: str
    currency_column: str | None = None
    rate_column: str | None = None
    local_currency_column: str | None = None
    local_amount_column: str | None = None
    header_text_column: str | None = None
    # Columns that must hold the same value on every row of one journal.
    header_columns: tuple[str, ...] = ()
    zero_padded_numeric: dict[str, int] = field(default_factory=dict)  # SAP ALPHA conversion
    max_integer_digits: int | None = None  # digits before the decimal point of an amount
    account_column: str = ""
    # Why an account code must reach the ERP exactly as in its chart, with its source.
    account_rule: str = ""
    # Account codes the ERP refuses in an imported journal: code -> the account's name.
    refused_accounts: dict[str, str] = field(default_factory=dict)
    refused_account_rule: str = ""


NETSUITE = TargetRules(
    name="netsuite",
    columns=("External ID", "Date", "Posting Period", "Subsidiary", "Currency", "Exchange Rate",
             "Memo", "Account", "Debit", "Credit", "Line Memo", "Name", "Department", "Class",
             "Location"),
    required=("External ID", "Date", "Subsidiary", "Currency", "Exchange Rate", "Account"),
    max_lengths={},
    id_column="External ID", date_columns=("Date",), date_format="%m/%d/%Y",
    amount_columns=("Debit", "Credit"), max_amount_decimal_places=2,
    max_lines_per_journal=10_000, max_lines_per_file=None,
    currency_handling="rate", currency_column="Currency", rate_column="Exchange Rate",
    header_text_column="Memo",
    header_columns=("Date", "Posting Period", "Subsidiary", "Currency", "Exchange Rate", "Memo"),
    # Oracle NetSuite Help, "Journal Entry and Intercompany Journal Entry Line-Level Fields
    # Table": Debit and Credit at most 10 digits before and 2 after the decimal point.
    max_integer_digits=10,
    account_column="Account",
    account_rule=('NetSuite matches Account to an account of the chart by its number and name '
                  '(Oracle NetSuite Help, "Journal Entry and Intercompany Journal Entry '
                  'Line-Level Fields Table")'),
)
QUICKBOOKS = TargetRules(
    name="quickbooks",
    columns=("Journal No", "Journal Date", "Currency Code", "Exchange Rate", "Account Name",
             "Description", "Debits", "Credits", "Name", "Location", "Class"),
    required=("Journal No", "Journal Date", "Currency Code", "Exchange Rate", "Account Name"),
    # Intuit, QuickBooks Online Accounting API reference, "JournalEntry"
    # (developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/journalentry):
    # DocNumber (the import's Journal No) "Maximum of 21 chars"; line Description "Max 4000
    # chars"; CurrencyRef "a three letter string representing the ISO 4217 code".
    max_lengths={"Journal No": 21, "Description": 4000, "Currency Code": 3},
    id_column="Journal No", date_columns=("Journal Date",), date_format="%m/%d/%Y",
    amount_columns=("Debits", "Credits"), max_amount_decimal_places=2,
    max_lines_per_journal=None, max_lines_per_file=None,  # no published limit found
    # The same reference: ExchangeRate is "the number of home currency units it takes to
    # equal one unit of currency specified by CurrencyRef".
    currency_handling="rate", currency_column="Currency Code", rate_column="Exchange Rate",
    header_text_column="Description",
    header_columns=("Journal Date", "Currency Code", "Exchange Rate", "Description"),
    # The same reference: a line's Amount is "Max 15 digits in 10.5 format".
    max_integer_digits=10,
    account_column="Account Name",
    account_rule=('QuickBooks Online imports a line only to an account already in the chart of '
                  'accounts, under its name as there (QuickBooks Learn & Support, "Import '
                  'journal entries": add new accounts to the chart before importing; a '
                  'subaccount as Parent:Subaccount)'),
)
XERO = TargetRules(
    name="xero",
    columns=("Narration", "Date", "Description", "AccountCode", "TaxRate", "Amount",
             "TrackingName1", "TrackingOption1"),
    required=("Narration", "Date", "AccountCode", "TaxRate", "Amount"),
    # Xero Accounting API, Accounts (developer.xero.com/documentation/api/accounting/accounts;
    # Xero's OpenAPI xero_accounting.yaml, Account.Code): "Customer defined alpha numeric
    # account code e.g 200 or SALES (max length = 10)". Narration and Description: no
    # maximum found in Xero's import help or its ManualJournals API, so none is checked.
    max_lengths={"AccountCode": 10},
    id_column="Narration", date_columns=("Date",), date_format="%d/%m/%Y",
    amount_columns=("Amount",), max_amount_decimal_places=2,
    # Xero Central, "Enter multiple manual journals using an import template"
    # (help.xero.com/ManualJournalsImport): at most 300 lines a file.
    max_lines_per_journal=300, max_lines_per_file=300,
    currency_handling="functional_only", header_text_column="Narration",
    header_columns=("Date",),
    account_column="AccountCode",
    account_rule=('Xero posts a manual journal line to the account of the chart with that '
                  'AccountCode (Xero Central, "Enter multiple manual journals using an import '
                  'template")'),
    refused_accounts=XERO_SYSTEM_ACCOUNTS_WITHOUT_MANUAL_JOURNALS,
    refused_account_rule=XERO_SYSTEM_ACCOUNT_RULE,
)
SAP = TargetRules(
    name="sap",
    columns=("REF_DOC_NO", "COMP_CODE", "DOC_DATE", "PSTNG_DATE", "DOC_TYPE", "HEADER_TXT",
             "ITEMNO_ACC", "GL_ACCOUNT", "ITEM_TEXT", "CURRENCY", "AMT_DOCCUR",
             "LOCAL_CURRENCY", "AMT_LOCAL"),
    required=("REF_DOC_NO", "COMP_CODE", "DOC_DATE", "PSTNG_DATE", "DOC_TYPE", "ITEMNO_ACC",
              "GL_ACCOUNT", "CURRENCY", "AMT_DOCCUR", "LOCAL_CURRENCY", "AMT_LOCAL"),
    # REF_DOC_NO is XBLNR, CHAR 16; HEADER_TXT is BKTXT, CHAR 25 (SAP data dictionary,
    # BAPIACHE01 / BAPI2017_SAP_HEADER, via sapdatasheet.org and leanx.eu, third party;
    # SAP's own help.sap.com, SAP Cloud SDK "Material Document Header", the same BKTXT:
    # "Document Header Text ... Maximum length: 25"). COMP_CODE 4 and DOC_TYPE 2:
    # help.sap.com, SAP Cloud SDK "Trial Balance" results ("Company Code. Maximum length: 4",
    # "Journal Entry Type. Maximum length: 2"). ITEM_TEXT (SGTXT) 50: unconfirmed, no SAP
    # page found here; 50 is the data element's length as data-dictionary mirrors give it
    # (our ITEM_TEXT holds only the customer id). CURRENCY / LOCAL_CURRENCY 5 (WAERS):
    # BAPIACCR09 via sapdatasheet.org.
    max_lengths={"REF_DOC_NO": 16, "HEADER_TXT": 25, "COMP_CODE": 4, "DOC_TYPE": 2,
                 "ITEMNO_ACC": 10, "GL_ACCOUNT": 10, "ITEM_TEXT": 50, "CURRENCY": 5,
                 "LOCAL_CURRENCY": 5},
    id_column="REF_DOC_NO", date_columns=("DOC_DATE", "PSTNG_DATE"), date_format="%Y%m%d",
    amount_columns=("AMT_DOCCUR",), max_amount_decimal_places=4,
    max_lines_per_journal=999, max_lines_per_file=None,
    currency_handling="document_and_local", currency_column="CURRENCY",
    local_currency_column="LOCAL_CURRENCY", local_amount_column="AMT_LOCAL",
    header_text_column="HEADER_TXT",
    header_columns=("COMP_CODE", "DOC_DATE", "PSTNG_DATE", "DOC_TYPE", "HEADER_TXT", "CURRENCY",
                    "LOCAL_CURRENCY"),
    zero_padded_numeric={"GL_ACCOUNT": 10, "ITEMNO_ACC": 10},
    max_integer_digits=19,  # DEC 23 with 4 decimals
    account_column="GL_ACCOUNT",
    account_rule=('SAP posts to the G/L account with that number, stored with ALPHA\'s leading '
                  'zeros (SAP Help, "CONVERSION_EXIT_ALPHA_INPUT")'),
)
TARGET_RULES = {rules.name: rules for rules in (NETSUITE, QUICKBOOKS, XERO, SAP)}

_DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def decimal_places(text: str) -> int:
    return len(text.split(".", 1)[1]) if "." in text else 0


def posted_minor(amount_minor: int, rate: Decimal, currency: str, functional: str) -> int:
    """The functional minor units an ERP posts for a line: amount x rate, rounded to the
    functional currency's minor unit (half up; an exported rate never lands on a half)."""
    scale = Decimal(10) ** (minor_unit_exponent(functional) - minor_unit_exponent(currency))
    return int((Decimal(amount_minor) * rate * scale).to_integral_value(ROUND_HALF_UP))


@dataclass
class _Journal:
    rows: list[tuple[int, dict]] = field(default_factory=list)


def _signed_minor(rules: TargetRules, row: dict, currency: str) -> int:
    if len(rules.amount_columns) == 2:
        debit, credit = (row[column] or "0" for column in rules.amount_columns)
        value = Decimal(debit) - Decimal(credit)
    else:
        value = Decimal(row[rules.amount_columns[0]])
    return int(value.scaleb(minor_unit_exponent(currency)))


def _field_problems(rules: TargetRules, row: dict, where: str, functional: str) -> list[str]:
    problems = []
    for column in rules.required:
        if not row.get(column):
            problems.append(f"{where} {column}: required, empty")
    for column, limit in rules.max_lengths.items():
        if len(row.get(column) or "") > limit:
            problems.append(f"{where} {column}: {row[column]!r} is {len(row[column])} characters; "
                            f"{rules.name} takes at most {limit}")
    for column in rules.date_columns:
        try:
            datetime.strptime(row[column], rules.date_format)
        except (ValueError, TypeError):
            problems.append(f"{where} {column}: {row.get(column)!r} is not a date in "
                            f"{rules.date_format}")
    if rules.account_column:
        problems += _account_problems(rules, row, where)
    for column, width in rules.zero_padded_numeric.items():
        value = row.get(column) or ""
        if value.isdigit() and len(value) != width:
            problems.append(f"{where} {column}: {value!r} must have its leading zeros "
                            f"({width} digits, SAP's ALPHA conversion)")
    currency = row.get(rules.currency_column) if rules.currency_column else functional
    for column in (*rules.amount_columns, *((rules.local_amount_column,)
                                            if rules.local_amount_column else ())):
        value = row.get(column) or ""
        if value and not _DECIMAL.fullmatch(value):
            problems.append(f"{where} {column}: {value!r} is not a number")
            continue
        amount_currency = (row.get(rules.local_currency_column) if column ==
                           rules.local_amount_column else currency) or functional
        allowed = min(rules.max_amount_decimal_places, _exponent(amount_currency))
        digits = len(value.lstrip("-").split(".", 1)[0])
        if value and rules.max_integer_digits is not None and digits > rules.max_integer_digits:
            problems.append(f"{where} {column}: {value} has {digits} digits before the decimal "
                            f"point; {rules.name} takes at most {rules.max_integer_digits}")
        if value and decimal_places(value) > allowed:
            problems.append(f"{where} {column}: {value} has {decimal_places(value)} decimals; "
                            f"{amount_currency} in {rules.name} takes at most {allowed}")
    return problems


def _account_problems(rules: TargetRules, row: dict, where: str) -> list[str]:
    """An account cell that is not the chart's account as is: one carrying a formula guard
    (the ERP would look up an account named with the apostrophe), or one the ERP refuses."""
    code = row.get(rules.account_column) or ""
    problems = []
    if code.startswith("'") and code[1:].startswith(FORMULA_PREFIXES):
        problems.append(f"{where} {rules.account_column}: {code!r} carries a spreadsheet's "
                        f"formula guard, so names no account of the chart: {rules.account_rule}")
    if code in rules.refused_accounts:
        problems.append(f"{where} {rules.account_column}: {code!r} is "
                        f"{rules.refused_accounts[code]}, a system account: "
                        f"{rules.refused_account_rule}")
    return problems


def needs_formula_guard(text: str) -> bool:
    """Whether an export cell would get a spreadsheet's formula guard (an apostrophe)."""
    return text.startswith(FORMULA_PREFIXES) and not _NUMBER_TEXT.fullmatch(text)


def mapping_problems(target: str, codes: dict[str, str]) -> list[str]:
    """What is wrong with a target's account codes themselves (account -> code), each
    naming the account, its code and the rule: a code the export would have to change to
    write it safely, or one the ERP refuses in an imported journal."""
    rules = TARGET_RULES[target]
    problems = []
    for account, code in sorted(codes.items()):
        if needs_formula_guard(code):
            problems.append(
                f'"{account}" = "{code}" starts with {code[0]!r}, which a spreadsheet runs as a '
                f"formula: written safely it would be \"'{code}\", an account {rules.name} does "
                f"not have ({rules.account_rule}); rename the account in {rules.name} and here")
        if code in rules.refused_accounts:
            problems.append(
                f'"{account}" = "{code}" is {rules.refused_accounts[code]} in Xero\'s default '
                f"chart, a system account ({rules.refused_account_rule}); map it to an account "
                "manual journals accept, e.g. a current asset clearing account")
    return problems


def _exponent(currency: str) -> int:
    try:
        return minor_unit_exponent(currency)
    except (KeyError, ValueError):
        return 2


def _rate_problems(rules: TargetRules, rows: list[tuple[int, dict]], journal: str,
                   functional: str, expected: dict | None) -> list[str]:
    line, head = rows[0]
    currency = head[rules.currency_column]
    text = head[rules.rate_column]
    where = f"journal {journal} line {line} {rules.rate_column}"
    try:
        rate = Decimal(text)
    except InvalidOperation:
        return [f"{where}: {text!r} is not a number"]
    if rate <= 0 or decimal_places(text) > MAX_RATE_DECIMAL_PLACES:
        return [f"{where}: {text} must be above 0 with at most {MAX_RATE_DECIMAL_PLACES} decimals"]
    if currency == functional and rate != 1:
        return [f"{where}: {text} on a {functional} journal; the base currency's rate is 1"]
    if currency != functional and rate == 1:
        return [f"{where}: 1 on a {currency} journal would post {currency} amounts as "
                f"{functional}"]
    problems = []
    posted_total = 0
    for number, row in rows:
        amount = _signed_minor(rules, row, currency)
        posted = posted_minor(amount, rate, currency, functional)
        posted_total += posted
        if expected is not None:
            want = expected.get((journal, number))
            if want is not None and want != posted:
                problems.append(f"journal {journal} line {number} {rules.rate_column}: at {text} "
                                f"the ERP posts {posted} {functional} minor units, the ledger "
                                f"has {want}")
    if posted_total != 0:
        problems.append(f"{where}: at {text} the lines post {posted_total} {functional} minor "
                        "units out of balance")
    return problems


def _journal_problems(rules: TargetRules, journal: str, rows: list[tuple[int, dict]],
                      functional: str, expected: dict | None) -> list[str]:
    first_line, head = rows[0]
    problems = []
    if len(rows) < 2:
        problems.append(f"journal {journal} line {first_line}: a journal needs at least 2 lines")
    if rules.max_lines_per_journal is not None and len(rows) > rules.max_lines_per_journal:
        problems.append(f"journal {journal}: {len(rows)} lines; {rules.name} takes at most "
                        f"{rules.max_lines_per_journal} per journal")
    for column in rules.header_columns:
        for number, row in rows:
            if row.get(column) != head.get(column):
                problems.append(f"journal {journal} line {number} {column}: {row.get(column)!r} "
                                f"differs from line {first_line}'s {head.get(column)!r}")
                break
    if problems:
        return problems
    currency = head[rules.currency_column] if rules.currency_column else functional
    if sum(_signed_minor(rules, row, currency) for _, row in rows) != 0:
        problems.append(f"journal {journal} line {first_line}: debits and credits in {currency} "
                        "do not balance")
    if rules.currency_handling == "rate":
        problems += _rate_problems(rules, rows, journal, functional, expected)
    elif rules.currency_handling == "document_and_local":
        problems += _local_problems(rules, journal, rows, functional, expected)
    return problems


def _local_problems(rules: TargetRules, journal: str, rows: list[tuple[int, dict]],
                    functional: str, expected: dict | None) -> list[str]:
    problems = []
    total = 0
    for number, row in rows:
        where = f"journal {journal} line {number}"
        if row[rules.local_currency_column] != functional:
            problems.append(f"{where} {rules.local_currency_column}: "
                            f"{row[rules.local_currency_column]!r}; the local currency is "
                            f"{functional}")
            continue
        local = int(Decimal(row[rules.local_amount_column]).scaleb(minor_unit_exponent(functional)))
        total += local
        document = _signed_minor(rules, row, row[rules.currency_column])
        if row[rules.currency_column] == functional and document != local:
            problems.append(f"{where} {rules.local_amount_column}: differs from AMT_DOCCUR in a "
                            f"{functional} document")
        want = expected.get((journal, number)) if expected is not None else None
        if want is not None and want != local:
            problems.append(f"{where} {rules.local_amount_column}: {local} {functional} minor "
                            f"units, the ledger has {want}")
    if total != 0:
        problems.append(f"journal {journal}: local currency amounts do not balance")
    return problems


def validate_rows(target: str, files: list[list[dict]], functional: str,
                  expected: dict | None = None, date_format: str | None = None) -> list[str]:
    """Every rule the rows of an export break (empty: it imports as-is).

    files: each file's rows as a csv.DictReader gives them; expected: (journal id, line
    number) -> the ledger's functional minor units for that line, when known."""
    rules = TARGET_RULES[target]
    if date_format:  # NetSuite's and Xero's follow the user's preference
        rules = replace(rules, date_format=date_format)
    problems: list[str] = []
    journals: dict[str, list[tuple[int, dict]]] = defaultdict(list)
    file_of: dict[str, int] = {}
    for file_number, rows in enumerate(files, start=1):
        if rules.max_lines_per_file is not None and len(rows) > rules.max_lines_per_file:
            problems.append(f"file {file_number}: {len(rows)} lines; {rules.name} takes at most "
                            f"{rules.max_lines_per_file} per file")
        for row in rows:
            if tuple(row) != rules.columns:
                problems.append(f"file {file_number}: columns {', '.join(row)} are not "
                                f"{rules.name}'s {', '.join(rules.columns)}")
                return problems
            journal = row[rules.id_column]
            if file_of.setdefault(journal, file_number) != file_number:
                problems.append(f"journal {journal}: split across files {file_of[journal]} and "
                                f"{file_number}")
            journals[journal].append((len(journals[journal]) + 1, row))
    for journal, rows in journals.items():
        for number, row in rows:
            problems += _field_problems(rules, row, f"journal {journal} line {number}", functional)
        if not problems:
            problems += _journal_problems(rules, journal, rows, functional, expected)
    return problems


def refuse_if_broken(target: str, problems: list[str]) -> None:
    if problems:
        shown = "; ".join(problems[:MAX_PROBLEMS_SHOWN])
        more = f" (and {len(problems) - MAX_PROBLEMS_SHOWN} more)" if len(
            problems) > MAX_PROBLEMS_SHOWN else ""
        raise ExportRefused(f"{target} export refused, nothing written: {shown}{more}")
