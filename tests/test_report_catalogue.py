"""The close's report catalogue holds each report's facts once, and the summary's trend
charts read the currency of a KPI as data, not out of an English label."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ledger.periods import Period
from reports.catalogue import (
    CATALOGUE,
    EMPTY_REPORT_COLUMNS,
    FUNCTIONAL_TWINS,
    REPORT_NAMES,
    TOTALLED_COLUMNS,
    ReportSpec,
    _catalogue,
)
from reports.chart_data import trend_charts
from reports.kpis import TrendMonth


def test_the_names_and_column_facts_are_read_off_the_catalogue():
    assert REPORT_NAMES[:3] == ("completeness", "reconciliations", "reconciliation_items")
    assert len(REPORT_NAMES) == len(set(REPORT_NAMES)) == 34
    assert TOTALLED_COLUMNS["late_entries"] == ("amount",)
    assert TOTALLED_COLUMNS["rollforward_by_customer"] == TOTALLED_COLUMNS[
        "rollforward_by_product"] == ("opening", "purchases", "usage_revenue", "breakage",
                                      "refunds", "escheat", "manual_journals", "closing")
    # Statements, the waterfall and the KPIs carry their own totals: nothing to add up.
    assert not {"trial_balance", "income_statement", "balance_sheet", "waterfall",
                "kpis"} & set(TOTALLED_COLUMNS)
    assert EMPTY_REPORT_COLUMNS["reconciliation_items"] == ("reconciliation", "item")
    assert EMPTY_REPORT_COLUMNS["top_up_list"] == EMPTY_REPORT_COLUMNS["credit_runway"]
    with pytest.raises(TypeError):
        TOTALLED_COLUMNS["kpis"] = ("credits_burned",)  # read-only


def test_each_functional_twin_is_a_report_of_its_own_and_named_once():
    twins = {name: report.functional_twin for name, report in CATALOGUE.items()
             if report.functional_twin}
    assert twins == {"trial_balance": "trial_balance_functional",
                     "income_statement": "income_statement_functional",
                     "balance_sheet": "balance_sheet_functional",
                     "rollforward": "rollforward_functional",
                     "waterfall": "waterfall_functional"}
    assert FUNCTIONAL_TWINS == set(twins.values()) and FUNCTIONAL_TWINS <= set(REPORT_NAMES)


def test_a_catalogue_with_a_name_twice_or_a_missing_twin_is_refused():
    def rows(inputs) -> list[dict]:
        return []

    with pytest.raises(ValueError, match="a report name is given twice"):
        _catalogue(ReportSpec("kpis", rows), ReportSpec("kpis", rows))
    with pytest.raises(ValueError, match="functional twins missing from the catalogue: "
                                         "kpis_functional"):
        _catalogue(ReportSpec("kpis", rows, functional_twin="kpis_functional"))
    assert list(_catalogue(ReportSpec("b", rows), ReportSpec("a", rows))) == ["b", "a"]


def test_trend_charts_take_the_currency_from_the_figures_key():
    january = TrendMonth(Period("2026-01"), {
        ("effective price per credit", "USD"): "0.010000", ("cost per credit", "USD"): "0.004",
        ("gross margin %", "USD"): "60.00", ("effective price per credit", "EUR"): "0.0095",
        ("cost per credit", "EUR"): "", ("gross margin %", "EUR"): "",
        ("credits burned", ""): "1500.000000", ("active customers", ""): "3",
        ("top 5 customers' share of credits burned", ""): "1.0000"})
    # February: no EUR figures at all, and no costs in USD (a blank, never a 0).
    february = TrendMonth(Period("2026-02"), {
        ("effective price per credit", "USD"): "0.012000", ("cost per credit", "USD"): "",
        ("gross margin %", "USD"): "", ("credits burned", ""): "0.000000",
        ("active customers", ""): "0", ("top 5 customers' share of credits burned", ""): ""})
    labels = ["2026-01", "2026-02"]
    assert trend_charts([january, february]) == [
        ("Price vs cost per credit (EUR)", labels,
         [("price per credit", [Decimal("0.0095"), None]), ("cost per credit", [None, None])]),
        # EUR had no cost lines: no margin chart for it.
        ("Price vs cost per credit (USD)", labels,
         [("price per credit", [Decimal("0.010000"), Decimal("0.012000")]),
          ("cost per credit", [Decimal("0.004"), None])]),
        ("Gross margin % (USD)", labels, [("gross margin %", [Decimal("60.00"), None])]),
        ("Usage volume (credits burned)", labels,
         [("credits", [Decimal("1500.000000"), Decimal("0.000000")])]),
        ("Active customers", labels, [("active", [Decimal("3"), Decimal("0")])]),
        ("Concentration: top 5 customers' share of credits burned", labels,
         [("top 5 share", [Decimal("1.0000"), None])]),
    ]
