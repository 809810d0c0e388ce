"""The controller's summary page of a close: key tables and charts as inline SVG.

Self-contained HTML (no scripts, no network) so it opens anywhere, including an
auditor's offline machine. Charts: the rollforward bridge, deferred balance and revenue
by month, the waterfall of the closing balance (one set per currency), and 12-month
trends of price vs cost per credit, margin, usage volume, active customers and
concentration. Tables: the reconciliations; the statements per transaction currency and
again in the functional currency (trial balance, income statement with its foreign
exchange line, balance sheet, rollforward, waterfall), each the package's CSV rows as
they are; the KPIs and burstiness.
"""

from __future__ import annotations

from decimal import Decimal
from html import escape

from ledger.periods import Period

WIDTH, HEIGHT, MARGIN = 720, 260, 48
COLOURS = ("#2b6cb0", "#c05621", "#2f855a", "#6b46c1", "#b7791f")


def _bar_chart(title: str, labels: list[str], series: list[tuple[str, list[Decimal | None]]],
               chart_class: str) -> str:
    """Bars per label and series; a None point (no figure that month) draws no bar."""
    values = [value for _, points in series for value in points if value is not None] or [
        Decimal(0)]
    top, bottom = max(max(values), Decimal(0)), min(min(values), Decimal(0))
    span = (top - bottom) or Decimal(1)
    plot_height = HEIGHT - 2 * MARGIN
    slot = (WIDTH - 2 * MARGIN) / max(1, len(labels))
    bar = slot * 0.8 / max(1, len(series))

    def y(value: Decimal) -> float:
        return MARGIN + float((top - value) / span) * plot_height

    parts = [f'<svg class="chart {chart_class}" role="img" aria-label="{escape(title)}" '
             f'width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" '
             'xmlns="http://www.w3.org/2000/svg">',
             f'<text x="{MARGIN}" y="20" font-size="14" font-weight="bold">{escape(title)}</text>',
             f'<line x1="{MARGIN}" x2="{WIDTH - MARGIN}" y1="{y(Decimal(0)):.1f}" '
             f'y2="{y(Decimal(0)):.1f}" stroke="#555"/>']
    for index, label in enumerate(labels):
        x0 = MARGIN + index * slot + slot * 0.1
        for number, (name, points) in enumerate(series):
            value = points[index]
            if value is None:
                continue
            top_y, base_y = sorted((y(value), y(Decimal(0))))
            parts.append(f'<rect class="bar" x="{x0 + number * bar:.1f}" y="{top_y:.1f}" '
                         f'width="{bar:.1f}" height="{max(base_y - top_y, 0.5):.1f}" '
                         f'fill="{COLOURS[number % len(COLOURS)]}"><title>{escape(name)} '
                         f'{escape(label)}: {value}</title></rect>')
            if len(series) == 1:  # figures on single-series charts (bridges); legends otherwise
                parts.append(f'<text class="value" x="{x0 + number * bar + bar / 2:.1f}" '
                             f'y="{top_y - 3:.1f}" font-size="10" text-anchor="middle">'
                             f'{escape(str(value))}</text>')
        parts.append(f'<text x="{x0 + slot * 0.4:.1f}" y="{HEIGHT - MARGIN + 14}" font-size="9" '
                     f'text-anchor="middle">{escape(label)}</text>')
    for number, (name, _) in enumerate(series):
        parts.append(f'<text x="{WIDTH - MARGIN - 160}" y="{20 + 14 * number}" font-size="11" '
                     f'fill="{COLOURS[number % len(COLOURS)]}">&#9632; {escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _table(title: str, rows: list[dict]) -> str:
    if not rows:
        return f"<h2>{escape(title)}</h2><p>No rows.</p>"
    columns = list(dict.fromkeys(column for row in rows for column in row))  # as the CSV's
    head = "".join(f"<th>{escape(str(column))}</th>" for column in columns)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(row.get(column, '')))}</td>"
                                    for column in columns) + "</tr>" for row in rows)
    return f"<h2>{escape(title)}</h2><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


# (report, heading) of each table on the page, in order; a report with no rows shows its
# heading and "No rows.".
TABLES = (
    ("reconciliations", "Reconciliations"), ("rollforward", "Deferred revenue rollforward"),
    ("trial_balance", "Trial balance"), ("income_statement", "Income statement"),
    ("balance_sheet", "Balance sheet"),
    ("trial_balance_functional", "Trial balance (functional currency)"),
    ("income_statement_functional", "Income statement (functional currency)"),
    ("balance_sheet_functional", "Balance sheet (functional currency)"),
    ("rollforward_functional", "Deferred revenue rollforward (functional currency)"),
    ("waterfall_functional", "Waterfall of the closing balance (functional currency)"),
    ("kpis", "Unit economics and usage KPIs"), ("burstiness", "Burstiness by meter"))


def summary_html(period: Period, reports: dict[str, list[dict]], charts: dict) -> str:
    sections = []
    for currency, steps in sorted(charts.get("bridge", {}).items()):
        sections.append(_bar_chart(f"Deferred revenue bridge {period} ({currency})",
                                   [label for label, _ in steps],
                                   [("movement", [value for _, value in steps])], "bridge"))
    for currency, months in sorted(charts.get("history", {}).items()):
        sections.append(_bar_chart(f"Deferred balance and revenue by month ({currency})",
                                   [month for month, _, _ in months],
                                   [("deferred balance", [balance for _, balance, _ in months]),
                                    ("revenue", [revenue for _, _, revenue in months])], "history"))
    for currency, methods in sorted(charts.get("waterfall", {}).items()):
        labels = [label for label, _ in next(iter(methods.values()))]
        sections.append(_bar_chart(f"Waterfall of the closing balance ({currency})", labels,
                                   [(method, [value for _, value in points])
                                    for method, points in methods.items()], "waterfall"))
    for title, labels, series in charts.get("trends", []):
        sections.append(_bar_chart(title, labels, series, "trend"))
    tables = [_table(title, reports.get(name, [])) for name, title in TABLES]
    style = ("body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;"
             "margin-bottom:1.5em}td,th{border:1px solid #ccc;padding:3px 8px;font-size:12px}"
             "td{text-align:right}th{background:#eee}.chart{display:block;margin:1em 0}")
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>Close {escape(period)}</title><style>{style}</style></head><body>"
            f"<h1>Month-end close {escape(period)}</h1>{''.join(sections)}{''.join(tables)}"
            "</body></html>")
