"""Issue 19: every figure that leaves the books ties out, on the hand-worked January close
(see test_close.py for its figures: USD net income 5.67 = breakage 5.00 + usage 0.67,
assets 26.08 = deferred 20.33 + tax 0.08 + earnings 5.67; JPY usage 338)."""

from __future__ import annotations

import csv
import json
from datetime import datetime
from pathlib import Path

import openpyxl
import pytest

from creditbooks.close import EMPTY_REPORT_COLUMNS, close_period

pytestmark = pytest.mark.slow  # posts and closes whole months


@pytest.fixture
def package(january, policy, tmp_path) -> Path:
    return close_period(january, policy, "2026-01", tmp_path / "close", tmp_path / "archive",
                        actor="tester").package


def sheet_rows(package: Path, name: str) -> list[tuple]:
    workbook = openpyxl.load_workbook(package / "close-2026-01.xlsx")
    return [row for row in workbook[name].iter_rows(values_only=True)]


def total_rows(package: Path, name: str) -> dict[str, dict]:
    rows = sheet_rows(package, name)
    header = rows[0]
    return {row[0]: dict(zip(header, row, strict=True)) for row in rows[1:]
            if isinstance(row[0], str) and row[0].startswith("Total ")}


def header_of(package: Path, name: str) -> list[str]:
    with (package / f"{name}.csv").open() as handle:
        return next(csv.reader(handle))


def test_workbook_totals_only_add_what_adds_up_per_currency(package):
    # Statements carry their own totals; the waterfall is one balance shown two ways; KPIs
    # are counts and ratios of different things: none gets a "Total" row that adds them.
    for name in ("income_statement", "balance_sheet", "waterfall", "kpis", "trial_balance"):
        assert total_rows(package, name) == {}, name
    # Listing reports: amounts and counts, per currency; rates never.
    estimates = total_rows(package, "breakage_estimates")
    assert set(estimates) == {"Total USD"}
    assert float(estimates["Total USD"]["actual_breakage"]) == pytest.approx(5.00)
    assert estimates["Total USD"]["actual_rate"] is None
    assert estimates["Total USD"]["estimated_rate"] is None
    by_customer = total_rows(package, "rollforward_by_customer")
    assert float(by_customer["Total USD"]["closing"]) == pytest.approx(20.33)
    assert float(by_customer["Total JPY"]["closing"]) == pytest.approx(662)
    by_meter = total_rows(package, "kpis_by_meter")
    assert by_meter["Total USD"]["price_per_credit"] is None
    assert float(by_meter["Total USD"]["usage_revenue"]) == pytest.approx(0.67)


def test_empty_reports_keep_their_header(package):
    assert (package / "late_entries.csv").read_text() == (
        "business_date,entry_id,kind,customer_id,currency,amount\n")
    assert (package / "reconciliation_items.csv").read_text() == "reconciliation,item\n"
    # The catalogue's headers are the ones the reports write when they have rows.
    for name in EMPTY_REPORT_COLUMNS:
        with (package / f"{name}.csv").open() as handle:
            rows = list(csv.reader(handle))
        assert tuple(rows[0]) == EMPTY_REPORT_COLUMNS[name], name


def test_timestamps_carry_their_offset(package):
    manifest = json.loads((package / "manifest.json").read_text())
    assert datetime.fromisoformat(manifest["closed_at"]).utcoffset() is not None
    with (package / "breakage_by_lot.csv").open() as handle:
        expiring = next(csv.DictReader(handle))
    assert expiring["purchase_id"] == "P-M"
    assert datetime.fromisoformat(expiring["expires_at"]).utcoffset() is not None
