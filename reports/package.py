"""The close package on disk: every report as CSV and JSON, one workbook, an HTML summary,
and a manifest.

Cells that a spreadsheet would run as a formula (text starting with = + - @, tab or
carriage return) are neutralised in both the CSV files and the workbook. Numbers go into
the workbook as exact decimals with the currency's number format; the manifest holds the
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
from pathlib import Path

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

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
        try:
            places = minor_unit_exponent(currency)
        except ValueError:
            places = 2
    else:
        places = len(text.split(".")[1]) if "." in text else 0
    return "#,##0" + ("." + "0" * places if places else "")


def write_workbook(path: Path, reports: dict[str, list[dict]]) -> None:
    """One sheet per report, streamed (openpyxl's write-only mode): header in bold and
    frozen, numbers as exact decimals in their currency's format, totals per currency."""
    workbook = Workbook(write_only=True)
    bold = Font(bold=True)
    for name, rows in reports.items():
        sheet = workbook.create_sheet(title=name[:31])
        columns = list(rows[0]) if rows else ["(no rows)"]
        numeric = {column for column in columns
                   if rows and all(_NUMBER.match(str(row[column])) or row[column] == ""
                                   for row in rows) and any(row[column] != "" for row in rows)
                   and column not in ("version",)}
        # A streamed sheet takes its layout before its first row.
        for column_index, column in enumerate(columns, start=1):
            width = max([len(str(column))] + [len(str(row.get(column, ""))) for row in rows[:500]])
            sheet.column_dimensions[get_column_letter(column_index)].width = min(60, width + 2)
        sheet.freeze_panes = "A2"
        sheet.append([_cell(sheet, column, font=bold) for column in columns])
        totals: dict[tuple[str, str], Decimal] = {}
        for row in rows:
            currency = row.get("currency")
            cells = []
            for column in columns:
                value = row[column]
                if column not in numeric:
                    cells.append(_cell(sheet, neutralise(value), text=True))
                    continue
                if value != "":
                    amount = Decimal(str(value))
                    totals[(currency or "", column)] = totals.get((currency or "", column),
                                                                  Decimal(0)) + amount
                cells.append(_cell(sheet, amount if value != "" else neutralise(value),
                                   number_format=_number_format(currency, str(value))))
            sheet.append(cells)
        if rows and numeric and "currency" in columns:
            for currency in sorted({currency for currency, _ in totals}):
                sheet.append([
                    _cell(sheet, f"Total {currency}", font=bold) if column == columns[0] else
                    _cell(sheet, totals[(currency, column)], font=bold,
                          number_format=_number_format(currency, str(totals[(currency, column)])))
                    if column in numeric and (currency, column) in totals else
                    _cell(sheet, "", font=bold)
                    for column in columns])
    workbook.save(path)


def _cell(sheet, value, *, font: Font | None = None, number_format: str | None = None,
          text: bool = False) -> WriteOnlyCell:
    cell = WriteOnlyCell(sheet, value=value)
    if font is not None:
        cell.font = font
    if number_format is not None:
        cell.number_format = number_format
    if text:
        cell.data_type = "s"
    return cell


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
