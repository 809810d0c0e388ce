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
from collections.abc import Callable
from decimal import Decimal
from functools import cache
from pathlib import Path

import xlsxwriter

from ledger.money import minor_unit_exponent
from ledger.periods import Period
from reports.outputs.summary_html import summary_html

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")


def neutralise(value) -> str:
    """Text safe to open in a spreadsheet: formula-like text gets a leading apostrophe."""
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_PREFIXES) and not _NUMBER.match(text):
        return "'" + text
    return text


def report_columns(rows: list[dict]) -> list[str]:
    """Every column any row has, in the order they first appear: a row may leave out a
    figure it has none of (a currency with no cost lines has no cost per credit), and the
    file must still carry the rows that have it. A left-out figure is a blank cell."""
    return list(dict.fromkeys(column for row in rows for column in row))


def write_csv(path: Path, rows: list[dict], empty_columns: tuple[str, ...] = ()) -> None:
    """The rows under their header; with no rows, the header `empty_columns` alone."""
    columns = report_columns(rows) if rows else list(empty_columns)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([neutralise(row.get(column)) for column in columns])


def report_json(period: Period, name: str, rows: list[dict]) -> str:
    """A report as JSON, one row a line: each row goes through the json module's C encoder
    (an indented dump would run the pure-Python one over every row)."""
    rows_text = ",\n".join(f"    {json.dumps(row, default=str)}" for row in rows)
    rows_text = f"\n{rows_text}\n  " if rows else ""
    return (f'{{\n  "period": {json.dumps(period)},\n  "report": {json.dumps(name)},\n'
            f'  "rows": [{rows_text}]\n}}\n')


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


def _new_workbook(path: Path) -> xlsxwriter.Workbook:
    # Constant memory: each sheet is streamed to its own file, row by row, so sheets can
    # be filled in any order; strings are written inline, so a sheet's bytes do not
    # depend on the order either.
    return xlsxwriter.Workbook(str(path), {
        "constant_memory": True, "strings_to_numbers": False, "strings_to_formulas": False,
        "strings_to_urls": False})


def _numeric_columns(columns: list[str], rows: list[dict]) -> set[str]:
    return {column for column in columns
            if rows and all(_NUMBER.match(str(row.get(column, ""))) or row.get(column, "") == ""
                            for row in rows)
            and any(row.get(column, "") != "" for row in rows) and column not in ("version",)}


def _write_sheet(sheet, rows: list[dict], formats: _Formats,
                 totalled_columns: tuple[str, ...] = ()) -> None:
    """A report's rows: header in bold and frozen, numbers in their currency's format,
    then one "Total CURRENCY" row per currency over `totalled_columns` only.

    Only columns whose figures add up are totalled (amounts, credits, counts): never a
    rate, a ratio, a balance carried over, or a report that has totals of its own (the
    statements), and never across currencies. Text is written as text, never read as a
    formula, number or link. A number cell holds what a spreadsheet can hold, a double:
    exact for amounts of up to 15 digits."""
    columns = report_columns(rows) if rows else ["(no rows)"]
    numeric = _numeric_columns(columns, rows)
    # A streamed sheet takes its layout before its first row.
    for column_index, column in enumerate(columns):
        width = max([len(str(column))] + [len(str(row.get(column, ""))) for row in rows[:500]])
        sheet.set_column(column_index, column_index, min(60, width + 2))
    sheet.freeze_panes(1, 0)
    sheet.write_row(0, 0, columns, formats.of(bold=True))
    totalled = [column for column in columns if column in totalled_columns and column in numeric]
    totals: dict[tuple[str, str], Decimal] = {}
    for row_index, row in enumerate(rows, start=1):
        currency = row.get("currency") or ""
        for column_index, column in enumerate(columns):
            value = row.get(column, "")
            if column not in numeric or value == "":
                if text := neutralise(value):  # an empty cell is left unwritten
                    sheet.write_string(row_index, column_index, text)
                continue
            amount = Decimal(str(value))
            if column in totalled:
                totals[(currency, column)] = totals.get((currency, column), Decimal(0)) + amount
            sheet.write_number(row_index, column_index, amount,
                               formats.of(_number_format(currency, str(value))))
    if not (rows and totalled and "currency" in columns):
        return
    row_index = len(rows)
    for currency in sorted({currency for currency, _ in totals}):
        row_index += 1
        sheet.write_string(row_index, 0, f"Total {currency}", formats.of(bold=True))
        for column_index, column in enumerate(columns):
            if column in totalled and (currency, column) in totals and column_index:
                total = totals[(currency, column)]
                sheet.write_number(row_index, column_index, total, formats.of(
                    _number_format(currency, str(total)), bold=True))


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


class PackageWriter:
    """A close package being written into `directory`: each report's files as soon as
    the report is ready, in any order; the summary and the manifest last.

    The files are written into a `.partial-PID` sibling (`finish` ends with the manifest
    there) and renamed into place whole by `move_into_place`, which the close calls only
    once its lock is committed: a crash never leaves half a package under the real name,
    nor a package of a close that never locked. A package, once in place, is never
    overwritten: a `directory` already there stops the close (`PackageExistsError`);
    partial ones of its version are what a crashed or refused close left behind, and are
    removed."""

    def __init__(self, directory: Path, period: Period, report_names: list[str],
                 totalled_columns: dict[str, tuple[str, ...]] | None = None,
                 empty_columns: dict[str, tuple[str, ...]] | None = None) -> None:
        refuse_existing_package(directory)
        for leftover in directory.parent.glob(f"{directory.name}.partial-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        self.final_directory, self.period = directory, period
        self.directory = directory.with_name(f"{directory.name}.partial-{os.getpid()}")
        self.directory.mkdir(parents=True)
        self._workbook = _new_workbook(self.directory / f"close-{period}.xlsx")
        self._formats = _Formats(self._workbook)
        self._sheets = {name: self._workbook.add_worksheet(name[:31]) for name in report_names}
        self._totalled_columns = totalled_columns or {}
        self._empty_columns = empty_columns or {}

    def add(self, name: str, rows: list[dict]) -> None:
        """A report's CSV and JSON files and its workbook sheet."""
        write_csv(self.directory / f"{name}.csv", rows, self._empty_columns.get(name, ()))
        (self.directory / f"{name}.json").write_text(report_json(self.period, name, rows))
        _write_sheet(self._sheets.pop(name), rows, self._formats,
                     self._totalled_columns.get(name, ()))

    def finish(self, reports: dict[str, list[dict]], charts: dict,
               manifest_facts: Callable[[], dict]) -> Path:
        """The summary, then the manifest (manifest_facts is asked for last: a close works
        out the journal digest meanwhile), in the partial directory. Returns the manifest's
        path there."""
        if self._sheets:
            raise ValueError(f"reports never added to the package: {', '.join(self._sheets)}")
        self._workbook.close()
        (self.directory / "summary.html").write_text(summary_html(self.period, reports, charts),
                                                     encoding="utf-8")
        files = {path.name: sha256_of(path) for path in sorted(self.directory.iterdir())}
        manifest = {"period": self.period, **manifest_facts(), "files": files}
        (self.directory / "manifest.json").write_text(
            json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n")
        return self.directory / "manifest.json"

    def move_into_place(self) -> Path:
        """The finished package renamed to its version directory, never over one."""
        return move_package_into_place(self.directory, self.final_directory)


class PackageExistsError(RuntimeError):
    """A close package's version directory is already there; it is never overwritten."""


def refuse_existing_package(directory: Path) -> None:
    if directory.exists():
        raise PackageExistsError(
            f"close package {directory} already exists and is never overwritten; the ledger "
            "records no close of that version (a removed period event, or a package copied "
            "in): run creditbooks verify --close-dir to see which")


def move_package_into_place(partial: Path, directory: Path) -> Path:
    """Rename a finished partial package to its version directory (refused if that
    exists: renaming onto an empty directory would replace it). Returns the manifest."""
    refuse_existing_package(directory)
    os.rename(partial, directory)
    return directory / "manifest.json"
