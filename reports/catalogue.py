"""The close's report catalogue: every report of a month-end close, written once.

Each entry names a report and says how it is built and what the writers must know of it:
the columns that add up per currency (the workbook's "Total CURRENCY" rows sum these and
nothing else), the header its CSV keeps when the period has no rows, and the report that
is the same one in the functional currency. The close builds and packages the reports in
catalogue order (the workbook's sheets follow it); the command line's `report NAME` shows
them one at a time; `REPORT_NAMES` and the column mappings are read off the catalogue.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import MappingProxyType

from ledger.accounts import ChartOfAccounts
from ledger.once import computed_once
from ledger.periods import Period
from ledger.store import Store
from reports import close_reports
from reports.breakage_review import breakage_estimates
from reports.completeness import completeness_rows
from reports.disclosures import breakage_judgements, disclosure_index, revenue_disaggregation
from reports.kpis import burstiness, credit_runway, kpi_summary, kpis_by, period_figures
from reports.manual_journals import MANUAL_JOURNAL_COLUMNS, manual_journals_rows
from reports.reconciliations import reconcile_period
from reports.statements import balance_sheet, income_statement, rollforward, trial_balance_statement
from reports.subledger import UNCOVERED_COLUMNS, period_exceptions, uncovered_usage_summary
from reports.waterfall import waterfall
from rules.policy import Policy


@dataclass(frozen=True)
class ReportInputs:
    """What the reports of one period are built from. The callables are what several
    reports share, each computed once on whichever thread asks first."""

    store: Store
    policy: Policy
    period: Period
    archive_root: Path
    reconciliations: Callable[[], list]
    figures_of: Callable[[Period], dict]
    runway: Callable[[], list[dict]]
    estimates: Callable[[], list[dict]]

    @property
    def functional_currency(self) -> str:
        return self.policy.functional_currency

    @property
    def accounts(self) -> ChartOfAccounts:
        return self.policy.accounts


@dataclass(frozen=True)
class ReportSpec:
    """One report of the close.

    totalled_columns: the columns that add up over its rows, per currency. Statements
    (trial balance, income statement, balance sheet), the waterfall (two methods of the
    same balance) and the KPIs carry their own totals or have none; rates, ratios and days
    are never summed.
    empty_columns: the header its CSV keeps when the period has no rows for it.
    functional_twin: the name of the same report in the functional currency, if any.
    started_first: it reads a large part of the period on its own, so the close starts
    it before the others."""

    name: str
    build: Callable[[ReportInputs], list[dict]]
    totalled_columns: tuple[str, ...] = ()
    empty_columns: tuple[str, ...] = ()
    functional_twin: str = ""
    started_first: bool = False


_ROLLFORWARD_MOVEMENTS = ("opening", "purchases", "usage_revenue", "breakage", "refunds",
                          "escheat", "manual_journals", "closing")
_RUNWAY_COLUMNS = ("customer_id", "credits_remaining", "daily_burn", "days_left", "top_up_soon")


def _rollforward_rows(inputs: ReportInputs, currency: str | None = None) -> list[dict]:
    return [row.as_strings() for row in rollforward(
        inputs.store, inputs.period, inputs.accounts.deferred_revenue, currency)]


def _statements() -> tuple[ReportSpec, ...]:
    """The statements, then the same statements in the functional currency (over every
    transaction currency)."""
    return (
        ReportSpec("trial_balance", lambda inputs: trial_balance_statement(
            inputs.store, inputs.period), functional_twin="trial_balance_functional"),
        ReportSpec("income_statement", lambda inputs: income_statement(
            inputs.store, inputs.period, chart=inputs.accounts),
            functional_twin="income_statement_functional"),
        ReportSpec("balance_sheet", lambda inputs: balance_sheet(inputs.store, inputs.period),
                   functional_twin="balance_sheet_functional"),
        ReportSpec("rollforward", _rollforward_rows, functional_twin="rollforward_functional"),
        ReportSpec("trial_balance_functional", lambda inputs: trial_balance_statement(
            inputs.store, inputs.period, inputs.functional_currency)),
        ReportSpec("income_statement_functional", lambda inputs: income_statement(
            inputs.store, inputs.period, inputs.functional_currency, chart=inputs.accounts)),
        ReportSpec("balance_sheet_functional", lambda inputs: balance_sheet(
            inputs.store, inputs.period, inputs.functional_currency)),
        ReportSpec("rollforward_functional", lambda inputs: _rollforward_rows(
            inputs, inputs.functional_currency)),
    )


def _subledger_reports() -> tuple[ReportSpec, ...]:
    """The deferred balance by customer and product, the waterfall, revenue and breakage."""
    return (
        ReportSpec("rollforward_by_customer", lambda inputs: close_reports.rollforward_by(
            inputs.store, inputs.period, "customer", inputs.accounts),
            totalled_columns=_ROLLFORWARD_MOVEMENTS),
        ReportSpec("rollforward_by_product", lambda inputs: close_reports.rollforward_by(
            inputs.store, inputs.period, "product", inputs.accounts),
            totalled_columns=_ROLLFORWARD_MOVEMENTS),
        ReportSpec("revenue_from_opening", lambda inputs: close_reports.revenue_from_opening_balance(
            inputs.store, inputs.period, inputs.accounts)),
        ReportSpec("waterfall", lambda inputs: waterfall(inputs.store, inputs.period, inputs.policy),
                   functional_twin="waterfall_functional", started_first=True),
        ReportSpec("waterfall_functional", lambda inputs: waterfall(
            inputs.store, inputs.period, inputs.policy, functional=True), started_first=True),
        ReportSpec("revenue_by_customer", lambda inputs: (
            close_reports.revenue_by_customer_product_meter(
                inputs.store, inputs.period, inputs.figures_of(inputs.period)["usage"])),
            totalled_columns=("credits", "revenue")),
        ReportSpec("breakage_by_lot", lambda inputs: close_reports.breakage_by_lot(
            inputs.store, inputs.period),
            totalled_columns=("credits_expired", "breakage", "escheat"),
            empty_columns=("purchase_id", "customer_id", "product", "currency", "expires_at",
                           "expired_on", "credits_expired", "breakage", "escheat")),
        ReportSpec("breakage_estimates", lambda inputs: inputs.estimates(),
                   totalled_columns=("lots_expired", "value", "estimated_breakage",
                                     "actual_breakage", "difference"),
                   empty_columns=("cumulative_to", "product", "currency", "method",
                                  "lots_expired", "value", "estimated_breakage",
                                  "actual_breakage", "difference", "estimated_rate",
                                  "actual_rate")),
        ReportSpec("lot_aging", lambda inputs: close_reports.lot_aging(
            inputs.store, inputs.period, inputs.policy.reporting_timezone),
            totalled_columns=("lots", "credits_remaining", "value_remaining"), started_first=True),
    )


def _kpi_reports() -> tuple[ReportSpec, ...]:
    """The KPIs, overall and by meter and product, usage's burstiness and credit runway."""
    return (
        ReportSpec("kpis", lambda inputs: kpi_summary(
            inputs.store, inputs.period, inputs.policy, inputs.figures_of), started_first=True),
        ReportSpec("kpis_by_meter", lambda inputs: kpis_by(
            inputs.store, inputs.period, "meter", inputs.figures_of(inputs.period)["usage"]),
            totalled_columns=("credits_burned", "usage_revenue", "costs")),
        ReportSpec("kpis_by_product", lambda inputs: kpis_by(
            inputs.store, inputs.period, "product", inputs.figures_of(inputs.period)["usage"]),
            totalled_columns=("credits_burned", "usage_revenue")),
        ReportSpec("burstiness", lambda inputs: burstiness(
            inputs.store, inputs.period, Path(inputs.archive_root),
            inputs.policy.reporting_timezone), started_first=True),
        ReportSpec("credit_runway", lambda inputs: inputs.runway(),
                   empty_columns=_RUNWAY_COLUMNS, started_first=True),
        ReportSpec("top_up_list", lambda inputs: [
            row for row in inputs.runway() if row["top_up_soon"]], empty_columns=_RUNWAY_COLUMNS),
    )


def _exception_and_disclosure_reports() -> tuple[ReportSpec, ...]:
    """What arrived late or could not be posted, and the disclosures' figures."""
    return (
        ReportSpec("late_entries", lambda inputs: close_reports.late_items(
            inputs.store, inputs.period), totalled_columns=("amount",),
            empty_columns=("business_date", "entry_id", "kind", "customer_id", "currency",
                           "amount")),
        ReportSpec("manual_journals", lambda inputs: manual_journals_rows(
            inputs.store, inputs.period, inputs.functional_currency),
            totalled_columns=("debit", "credit"),
            empty_columns=MANUAL_JOURNAL_COLUMNS),
        ReportSpec("late_usage", lambda inputs: close_reports.late_usage(
            inputs.store, inputs.period, Path(inputs.archive_root),
            inputs.policy.reporting_timezone),
            empty_columns=("business_date", "customer_id", "meter", "occurred_period",
                           "events", "credits")),
        ReportSpec("exceptions", lambda inputs: period_exceptions(inputs.store, inputs.period),
                   empty_columns=("business_date", "kind", "document", "file", "row", "id",
                                  "column", "reason", "raw_values")),
        ReportSpec("uncovered_usage", lambda inputs: uncovered_usage_summary(
            inputs.store, inputs.period), empty_columns=UNCOVERED_COLUMNS),
        ReportSpec("disclosures", lambda inputs: disclosure_index()),
        ReportSpec("disclosure_revenue_disaggregation", lambda inputs: revenue_disaggregation(
            inputs.store, inputs.period, inputs.accounts),
            empty_columns=("dimension", "key", "currency", "usage_revenue", "breakage",
                           "total")),
        ReportSpec("disclosure_breakage_judgements", lambda inputs: breakage_judgements(
            inputs.store, inputs.period, inputs.policy, inputs.estimates())),
    )


def _catalogue(*reports: ReportSpec) -> Mapping[str, ReportSpec]:
    """The reports by name, in order; a name given twice or a twin that is not in the
    catalogue is a mistake in this module, refused when it is imported."""
    by_name = {report.name: report for report in reports}
    if len(by_name) != len(reports):
        raise ValueError("a report name is given twice in the catalogue")
    if untwinned := [report.functional_twin for report in reports
                     if report.functional_twin and report.functional_twin not in by_name]:
        raise ValueError(f"functional twins missing from the catalogue: {', '.join(untwinned)}")
    return MappingProxyType(by_name)


CATALOGUE: Mapping[str, ReportSpec] = _catalogue(
    ReportSpec("completeness", lambda inputs: completeness_rows(inputs.store, inputs.period),
               empty_columns=("business_date", "status")),
    ReportSpec("reconciliations", lambda inputs: [
        row for reconciliation in inputs.reconciliations() for row in reconciliation.rows()]),
    ReportSpec("reconciliation_items", lambda inputs: [
        {"reconciliation": reconciliation.name, "item": item}
        for reconciliation in inputs.reconciliations() for item in reconciliation.items],
        empty_columns=("reconciliation", "item")),
    *_statements(),
    *_subledger_reports(),
    *_kpi_reports(),
    *_exception_and_disclosure_reports(),
)

REPORT_NAMES: tuple[str, ...] = tuple(CATALOGUE)
TOTALLED_COLUMNS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    name: report.totalled_columns for name, report in CATALOGUE.items()
    if report.totalled_columns})
EMPTY_REPORT_COLUMNS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    name: report.empty_columns for name, report in CATALOGUE.items() if report.empty_columns})
FUNCTIONAL_TWINS = frozenset(report.functional_twin for report in CATALOGUE.values()
                             if report.functional_twin)


def report_builders(store: Store, policy: Policy, period: Period, archive_root: Path,
                    reconciled: Callable[[], list] | None = None,
                    figures_of: Callable[[Period], dict] | None = None,
                    ) -> dict[str, Callable[[], list[dict]]]:
    """Every report of a period's close, by name in catalogue order, each computed when
    asked for (on any thread: what two reports share is computed once).

    reconciled, figures_of: what the close works out anyway (the reconciliations, the KPI
    figures by period), so that no report computes them again."""
    accounts = policy.accounts
    inputs = ReportInputs(
        store, policy, period, archive_root,
        reconciliations=computed_once(reconciled or (lambda: reconcile_period(
            store, period, accounts.deferred_revenue, accounts.cash_clearing,
            accounts.sales_tax))),
        figures_of=figures_of or period_figures(store, policy),
        runway=computed_once(lambda: credit_runway(store, period)),
        estimates=computed_once(lambda: breakage_estimates(store, period, policy)))
    return {name: partial(report.build, inputs) for name, report in CATALOGUE.items()}
