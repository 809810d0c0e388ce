"""The close package on disk: every report as CSV and JSON, one workbook, an HTML summary,
and a manifest.

Cells that a spreadsheet would run as a formula (text starting with = + - @, tab or
carriage return) are neutralised in both the CSV files and the workbook. Numbers go into
the workbook as numbers with the currency's number format (a spreadsheet holds doubles:
exact to 15 digits; the CSV and JSON files keep the exact text); the manifest holds the
SHA-256 of every file so the package can be checked later.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import shutil
from decimal import Decimal
from functools import cache
from pathlib import Path

import xlsxwriter

from ledger.money import minor_unit_exponent
from reports.summary_html import summary_html

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")


def neutralise(value) -> str:
    """Text safe to open in a spreadsheet: formula-like text gets a leading apostrophe."""
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_PREFIXES) and not _NUMBER.match(text):
        return "'" + text
    return text


def write_csv(path: Path, rows: list[dict]) -> None:
    columns = list(rows[0]) if rows else []
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([neutralise(row[column]) for column in columns])


def _number_format(currency: str | None, text: str) -> str:
    if currency:
        return _currency_format(currency)
    places = len(text.split(".")[1]) if "." in text else 0
    return "#,##0" + ("." + "0" * places if places else "")


@cache
def _currency_format(currency: str) -> str:
    try:
        places = minor_unit_exponent(currency)
    except ValueError:
        places = 2
    return "#,##0" + ("." + "0" * places if places else "")


def write_workbook(path: Path, reports: dict[str, list[dict]]) -> None:
    """One sheet per report, streamed row by row (xlsxwriter's constant-memory mode): header
    in bold and frozen, numbers in their currency's format, totals per currency.

    Text is written as text, never read as a formula, number or link. A number cell holds
    what a spreadsheet can hold, a double: exact for amounts of up to 15 digits."""
    workbook = xlsxwriter.Workbook(str(path), {
        "constant_memory": True, "strings_to_numbers": False, "strings_to_formulas": False,
        "strings_to_urls": False})
    formats = _Formats(workbook)
    for name, rows in reports.items():
        sheet = workbook.add_worksheet(name[:31])
        columns = list(rows[0]) if rows else ["(no rows)"]
        numeric = {column for column in columns
                   if rows and all(_NUMBER.match(str(row[column])) or row[column] == ""
                                   for row in rows) and any(row[column] != "" for row in rows)
                   and column not in ("version",)}
        # A streamed sheet takes its layout before its first row.
        for column_index, column in enumerate(columns):
            width = max([len(str(column))] + [len(str(row.get(column, ""))) for row in rows[:500]])
            sheet.set_column(column_index, column_index, min(60, width + 2))
        sheet.freeze_panes(1, 0)
        sheet.write_row(0, 0, columns, formats.of(bold=True))
        totals: dict[tuple[str, str], Decimal] = {}
        for row_index, row in enumerate(rows, start=1):
            currency = row.get("currency")
            for column_index, column in enumerate(columns):
                value = row[column]
                if column not in numeric or value == "":
                    if text := neutralise(value):  # an empty cell is left unwritten
                        sheet.write_string(row_index, column_index, text)
                    continue
                amount = Decimal(str(value))
                totals[(currency or "", column)] = totals.get((currency or "", column),
                                                              Decimal(0)) + amount
                sheet.write_number(row_index, column_index, amount,
                                   formats.of(_number_format(currency, str(value))))
        if rows and numeric and "currency" in columns:
            row_index = len(rows)
            for currency in sorted({currency for currency, _ in totals}):
                row_index += 1
                sheet.write_string(row_index, 0, f"Total {currency}", formats.of(bold=True))
                for column_index, column in enumerate(columns[1:], start=1):
                    if column in numeric and (currency, column) in totals:
                        total = totals[(currency, column)]
                        sheet.write_number(row_index, column_index, total, formats.of(
                            _number_format(currency, str(total)), bold=True))
    workbook.close()


class _Formats:
    """A workbook's cell formats, one per (number format, bold): xlsxwriter keeps every
    format object it is given, so they are made once and shared."""

    def __init__(self, workbook: xlsxwriter.Workbook) -> None:
        self._workbook = workbook
        self._made: dict[tuple[str | None, bool], object] = {}

    def of(self, number_format: str | None = None, bold: bool = False):
        key = (number_format, bold)
        if key not in self._made:
            properties = {"bold": True} if bold else {}
            if number_format:
                properties["num_format"] = number_format
            self._made[key] = self._workbook.add_format(properties)
        return self._made[key]


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_package(directory: Path, period: str, reports: dict[str, list[dict]],
                  charts: dict, manifest_facts: dict) -> Path:
    """Write the package into `directory`; return the manifest's path.

    The files are written into a `.partial-PID` sibling and renamed into place whole, so
    a crash never leaves half a package under the real name. The caller writes a version
    only before recording that version's lock, so a `directory` (or a partial one)
    already there is what a crashed or refused close left behind, and is replaced.
    """
    final_directory = directory
    for leftover in final_directory.parent.glob(f"{final_directory.name}.partial-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    directory = final_directory.with_name(f"{final_directory.name}.partial-{os.getpid()}")
    directory.mkdir(parents=True)
    for name, rows in reports.items():
        write_csv(directory / f"{name}.csv", rows)
        (directory / f"{name}.json").write_text(json.dumps(
            {"period": period, "report": name, "rows": rows}, indent=2, default=str) + "\n")
    write_workbook(directory / f"close-{period}.xlsx", reports)
    (directory / "summary.html").write_text(summary_html(period, reports, charts), encoding="utf-8")
    files = {path.name: sha256_of(path) for path in sorted(directory.iterdir())}
    manifest = {"period": period, **manifest_facts, "files": files}
    (directory / "manifest.json").write_text(
        json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n")
    shutil.rmtree(final_directory, ignore_errors=True)
    os.replace(directory, final_directory)
    return final_directory / "manifest.json"
