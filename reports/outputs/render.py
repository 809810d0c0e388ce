"""Rows out as a rich table for people, or CSV / JSON for other programs."""

from __future__ import annotations

import csv
import io
import json
from enum import StrEnum

from rich.console import Console
from rich.table import Table


class OutputFormat(StrEnum):
    TABLE = "table"
    CSV = "csv"
    JSON = "json"


def render_rows(rows: list[dict], output_format: OutputFormat, title: str = "",
                envelope: dict | None = None) -> str:
    """Render rows; `envelope` wraps JSON output as {**envelope, "rows": rows}."""
    if output_format == OutputFormat.JSON:
        document = {**envelope, "rows": rows} if envelope is not None else rows
        return json.dumps(document, indent=2, default=str)
    columns = list(rows[0]) if rows else []
    if output_format == OutputFormat.CSV:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return buffer.getvalue()
    table = Table(title=title or None, show_lines=False)
    for column in columns:
        numeric = rows and all(_looks_numeric(row[column]) for row in rows)
        table.add_column(column, justify="right" if numeric else "left")
    for row in rows:
        table.add_row(*(str(row[column]) for column in columns))
    console = Console(record=True, width=200, force_terminal=False)
    with console.capture() as capture:
        console.print(table if rows else f"{title}: no rows")
    return capture.get()


def _looks_numeric(value) -> bool:
    text = str(value).lstrip("-")
    return bool(text) and text.replace(".", "", 1).isdigit()


def render_document(document: dict, output_format: OutputFormat, title: str = "") -> str:
    """A trace-style document: sections of rows (tables) and of fields (two columns)."""
    if output_format == OutputFormat.JSON:
        return json.dumps(document, indent=2, default=str)
    if output_format == OutputFormat.CSV:
        raise ValueError("this report has several sections: use --format table or json")
    parts = [f"== {title} ==" if title else ""]
    # Plain values at this level (an id, a line number) go together in one two-column table.
    fields = {key: value for key, value in document.items() if not isinstance(value, (dict, list))}
    if fields:
        parts.append(render_rows([{"field": key, "value": value} for key, value in fields.items()],
                                 OutputFormat.TABLE, title))
    for section, content in document.items():
        if section in fields:
            continue
        if isinstance(content, dict):
            rows = [{"field": key, "value": value} for key, value in content.items()]
            parts.append(render_rows(rows, OutputFormat.TABLE, section))
        elif content and all(isinstance(item, dict) and any(isinstance(value, (dict, list))
                                                             for value in item.values())
                             for item in content):
            for number, item in enumerate(content, start=1):
                parts.append(render_document(item, output_format, f"{section} {number}"))
        else:
            parts.append(render_rows(list(content), OutputFormat.TABLE, section))
    return "\n".join(part for part in parts if part)
