"""The figures behind the close summary's charts (the HTML summary draws them).

The deferred revenue bridge and waterfall come from the close's own reports; the 12-month
history of the balance and the KPI trends are read from the books. Every figure is an
exact Decimal; a blank one (no costs in a currency, say) is None, never 0.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from ledger.money import minor_unit_exponent
from ledger.periods import Period
from ledger.store import Store
from reports.kpis import TrendMonth, kpi_trends
from reports.line_totals import line_totals
from reports.statements import rollforward
from rules.policy import Policy

# (title, period labels, [(series name, one figure per label)])
Chart = tuple[str, list[str], list[tuple[str, list[Decimal | None]]]]


def close_charts(store: Store, policy: Policy, period: Period, reports: dict,
                 figures_of: Callable[[Period], dict]) -> dict:
    """Every chart of a close's summary: the bridge, the history, the waterfall and trends."""
    bridge = {row["currency"]: [("opening", Decimal(row["opening"])),
                                ("purchases", Decimal(row["purchases"])),
                                ("usage", -Decimal(row["usage_revenue"])),
                                ("breakage", -Decimal(row["breakage"])),
                                ("refunds", -Decimal(row["refunds"])),
                                ("escheat", -Decimal(row["escheat"])),
                                ("manual_journals", Decimal(row["manual_journals"])),
                                ("closing", Decimal(row["closing"]))]
              for row in reports["rollforward"]}
    waterfall_chart: dict[str, dict] = {}
    for row in reports["waterfall"]:
        labels = [key for key in row if key not in ("method", "currency", "total")]
        waterfall_chart.setdefault(row["currency"], {})[row["method"]] = [
            (label, Decimal(row[label])) for label in labels]
    return {"bridge": bridge, "history": _balance_history(store, policy, period),
            "waterfall": waterfall_chart,
            "trends": trend_charts(kpi_trends(store, period, policy, figures_of=figures_of))}


def _balance_history(store: Store, policy: Policy, period: Period) -> dict[str, list]:
    """Per currency, the last 12 months' closing deferred revenue and revenue recognised."""
    history: dict[str, list] = {}
    totals = line_totals(store, period)  # the close's own: each month is a sum over them
    for month in sorted(set(totals["period"]))[-12:]:
        for row in rollforward(store, month, policy.accounts.deferred_revenue, totals=totals):
            exponent = minor_unit_exponent(row.currency)
            history.setdefault(row.currency, []).append((
                month, Decimal(row.closing_minor).scaleb(-exponent),
                Decimal(row.usage_revenue_minor + row.breakage_minor).scaleb(-exponent)))
    return history


def trend_charts(trends: list[TrendMonth]) -> list[Chart]:
    """12-month trends: price vs cost per credit and margin per currency, volume, concentration."""
    labels = [month.period for month in trends]

    def series(metric: str, currency: str = "") -> list[Decimal | None]:
        # A blank figure (no costs in that currency, say) is shown as none, never as 0.
        return [Decimal(figure) if (figure := month.figures.get((metric, currency))) else None
                for month in trends]

    charts = []
    currencies = sorted({currency for month in trends for metric, currency in month.figures
                         if metric == "effective price per credit" and currency})
    for currency in currencies:
        charts.append((f"Price vs cost per credit ({currency})", labels,
                       [("price per credit", series("effective price per credit", currency)),
                        ("cost per credit", series("cost per credit", currency))]))
        margins = series("gross margin %", currency)
        if any(margins):  # no cost lines in this currency: no margin to show
            charts.append((f"Gross margin % ({currency})", labels, [("gross margin %", margins)]))
    charts.append(("Usage volume (credits burned)", labels, [("credits", series("credits burned"))]))
    charts.append(("Active customers", labels, [("active", series("active customers"))]))
    charts.append(("Concentration: top 5 customers' share of credits burned", labels,
                   [("top 5 share", series("top 5 customers' share of credits burned"))]))
    return charts
