"""Editing a close package as a forger would (issue 19): a figure changed in its CSV file
and, the same way, in its JSON twin, its workbook sheet (and the sheet's Total row) and the
summary page's table, then the manifest re-hashed, so every copy and every SHA-256 agrees
and only a tie between different reports can catch the change."""

from __future__ import annotations

import csv
import hashlib
import json
import re
from pathlib import Path

import openpyxl

from reports.outputs.verify_package import SUMMARY_TABLES

# The summary page's tables, by the CSV file each shows (as the page titles them).
SUMMARY_TABLE_TITLES = {name: title for title, name in SUMMARY_TABLES.items()}


def rehash_manifest(package: Path) -> None:
    """Record each file's SHA-256 again, so the file checks pass."""
    manifest = json.loads((package / "manifest.json").read_text())
    manifest["files"] = {name: hashlib.sha256((package / name).read_bytes()).hexdigest()
                         for name in manifest["files"]}
    (package / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))


def row_of(package: Path, name: str, **wanted: str) -> int:
    """The index (0 = the first row under the header) of the one row with these values."""
    with (package / f"{name}.csv").open(newline="") as handle:
        matches = [index for index, row in enumerate(csv.DictReader(handle))
                   if all(row[column] == value for column, value in wanted.items())]
    assert len(matches) == 1, (name, wanted, matches)
    return matches[0]


def edit(package: Path, name: str, wanted: dict[str, str], **cells: str) -> None:
    """Set `cells` (column -> text) in the row of report `name` matching `wanted`, in
    every copy of the report the package has. Call rehash_manifest when done."""
    index = row_of(package, name, **wanted)
    with (package / f"{name}.csv").open(newline="") as handle:
        reader = csv.DictReader(handle)
        header, rows = list(reader.fieldnames), list(reader)
    rows[index].update(cells)
    with (package / f"{name}.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, header, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    document = json.loads((package / f"{name}.json").read_text())
    document["rows"][index].update(cells)
    (package / f"{name}.json").write_text(json.dumps(document, indent=2))
    _edit_sheet(package, name, header, rows, index, cells)
    if name in SUMMARY_TABLE_TITLES:
        _edit_table(package / "summary.html", SUMMARY_TABLE_TITLES[name], header, index, cells)


def _edit_sheet(package: Path, name: str, header: list[str], rows: list[dict], index: int,
                cells: dict[str, str]) -> None:
    workbook_path = next(package.glob("*.xlsx"))
    workbook = openpyxl.load_workbook(workbook_path)
    sheet = workbook[name[:31]]
    for column, text in cells.items():
        sheet.cell(row=index + 2, column=header.index(column) + 1).value = _cell_value(text)
    for cells_of_row in sheet.iter_rows(min_row=len(rows) + 2):
        label = cells_of_row[0].value
        if isinstance(label, str) and label.startswith("Total "):
            currency = label.removeprefix("Total ")
            for column in cells:
                cell = cells_of_row[header.index(column)]
                if cell.value is not None and not isinstance(cell.value, str):  # a label
                    cell.value = sum(_cell_value(row[column]) for row in rows
                                     if row["currency"] == currency)
    workbook.save(workbook_path)


def _cell_value(text: str):
    return float(text) if re.fullmatch(r"-?[0-9]+\.[0-9]+", text) else (
        int(text) if re.fullmatch(r"-?[0-9]+", text) else text)


def _edit_table(page: Path, title: str, header: list[str], index: int,
                cells: dict[str, str]) -> None:
    """The page's table under <h2>title</h2>: its (index + 1)-th body row's cells."""
    html = page.read_text()
    start = html.index(f"<h2>{title}</h2>")
    body = html.index("<tbody>", start)
    end = html.index("</table>", start)
    rows = html[body:end].split("<tr>")
    row = rows[index + 1]
    parts = re.split(r"(<td[^>]*>.*?</td>)", row)
    tds = [position for position, part in enumerate(parts) if part.startswith("<td")]
    for column, text in cells.items():
        position = tds[header.index(column)]
        parts[position] = re.sub(r">.*?</td>$", f">{text}</td>", parts[position])
    rows[index + 1] = "".join(parts)
    page.write_text(html[:body] + "<tr>".join(rows) + html[end:])


def replace_in_page(package: Path, old: str, new: str) -> None:
    """Change a figure of the summary page outside its tables (a chart's bar or tooltip)."""
    page = package / "summary.html"
    html = page.read_text()
    assert old in html, old
    page.write_text(html.replace(old, new))


def edit_bridge(package: Path, currency: str, step: str, figure: str) -> None:
    """The summary's deferred revenue bridge of `currency`: the bar of `step` (opening,
    purchases, usage, ...) shows `figure`, in its tooltip and its label."""
    page = package / "summary.html"
    html = page.read_text()
    start = re.search(rf'<svg class="chart bridge"[^>]*\({currency}\)"', html).start()
    end = html.index("</svg>", start)
    chart = re.sub(rf'<title>movement {step}: [^<]*</title></rect>(<text class="value"[^>]*>)'
                   r"[^<]*</text>", rf"<title>movement {step}: {figure}</title></rect>\g<1>"
                   f"{figure}</text>", html[start:end])
    assert chart != html[start:end], (currency, step)
    page.write_text(html[:start] + chart + html[end:])


def drop_row(package: Path, name: str, wanted: dict[str, str]) -> None:
    """Take the row of report `name` matching `wanted` out of every copy of the report."""
    index = row_of(package, name, **wanted)
    with (package / f"{name}.csv").open(newline="") as handle:
        reader = csv.DictReader(handle)
        header, rows = list(reader.fieldnames), list(reader)
    del rows[index]
    with (package / f"{name}.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, header, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    document = json.loads((package / f"{name}.json").read_text())
    del document["rows"][index]
    (package / f"{name}.json").write_text(json.dumps(document, indent=2))
    workbook_path = next(package.glob("*.xlsx"))
    workbook = openpyxl.load_workbook(workbook_path)
    workbook[name[:31]].delete_rows(index + 2)
    workbook.save(workbook_path)
    if name in SUMMARY_TABLE_TITLES:
        page = package / "summary.html"
        html = page.read_text()
        start = html.index(f"<h2>{SUMMARY_TABLE_TITLES[name]}</h2>")
        body, end = html.index("<tbody>", start), html.index("</table>", start)
        table_rows = html[body:end].split("<tr>")
        del table_rows[index + 1]
        page.write_text(html[:body] + "<tr>".join(table_rows) + html[end:])
