"""Month-end close and reopen: the period lifecycle accountants run.

close: periods close in order -> completeness (every day of the period has a published
nightly batch; quiet days are listed) -> reconciliations (a failure refuses the lock
unless exceptions are accepted with a reason, which is recorded) -> every report ->
the package, written beside `OUT/YYYY-MM/vN/` -> the lock, recorded (and sealed onto the
record chain) with who, when, why and the journal digest -> the package renamed to
`OUT/YYYY-MM/vN/` -> an anchor of both chains' heads appended to the anchor file
(`ledger/anchors.py`). A version directory already there stops the close: a package is
never overwritten. Closing a closed period changes nothing. reopen is explicit and
recorded, and the next close writes a new package version.
"""

from __future__ import annotations

import getpass
import json
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from ledger.anchors import (
    ANCHORS_ENVIRONMENT_VARIABLE,
    Anchor,
    anchor_file,
    known_ledger_id,
    write_anchor,
)
from ledger.chain import ChainHead, chain_head
from ledger.digest import entry_count, journal_digest
from ledger.evidence import utc_instant
from ledger.locks import locked_periods, period_states, record_period_event, take_posting_lock
from ledger.money import minor_unit_exponent
from ledger.once import computed_once
from ledger.periods import days_between, parse_period, period_of
from ledger.record_chain import record_chain_head
from ledger.store import ReadOnceStore, Store, store_at
from reports import close_reports
from reports.breakage_review import breakage_estimates
from reports.disclosures import breakage_judgements, disclosure_index, revenue_disaggregation
from reports.kpis import (
    burstiness,
    credit_runway,
    kpi_summary,
    kpi_trends,
    kpis_by,
    period_figures,
)
from reports.line_totals import line_totals, line_totals_query
from reports.package import (
    PackageExistsError,
    PackageWriter,
    move_package_into_place,
    refuse_existing_package,
)
from reports.reconciliations import (
    reconcile_period,
    reconciliations_of,
    unbalanced_entries_query,
)
from reports.statements import (
    balance_sheet,
    income_statement,
    rollforward,
    trial_balance_statement,
)
from reports.subledger import UNCOVERED_COLUMNS, period_exceptions, uncovered_usage_summary
from reports.verify_package import verify_package
from reports.waterfall import waterfall
from rules.policy import Policy


class CloseRefusedError(RuntimeError):
    """The period cannot be closed (or reopened); the message says what to do."""


@dataclass(frozen=True)
class CloseOutcome:
    period: str
    status: str  # closed | already closed
    version: int
    package: Path | None
    empty_days: tuple[str, ...]
    failed_reconciliations: tuple[str, ...]


def current_actor() -> str:
    return os.environ.get("CREDITBOOKS_ACTOR") or getpass.getuser()


def close_period(store: Store, policy: Policy, period: str, out: Path, archive_root: Path,
                 accept_exceptions: bool = False, reason: str = "",
                 actor: str | None = None, anchors: Path | None = None) -> CloseOutcome:
    """anchors: the anchor file (`ledger.anchors.anchor_file`: else $CREDITBOOKS_ANCHORS,
    else beside `out`)."""
    parse_period(period)  # a malformed period is refused before anything is read
    with store.engine.connect() as connection:
        states = period_states(connection)
    if states.get(period, {}).get("action") == "close":
        _finish_interrupted_package(Path(out), states[period])
        return CloseOutcome(period, "already closed", int(states[period]["version"]), None, (), ())
    if accept_exceptions and not reason.strip():
        raise CloseRefusedError("--accept-exceptions needs --reason saying why")
    _require_previous_closed(store, period, states)
    _refuse_written_version(Path(out), period, _next_version(store, period))
    empty_days = require_complete(store, period)
    with store.engine.connect() as connection:
        # Counted before anything is read and again under the lock: the same count means
        # nothing was posted into the period while it was being reconciled and reported.
        entries = entry_count(connection, period)
    books = ReadOnceStore(store)  # the reports ask for the same lots and slices many times
    accounts = policy.accounts
    with ThreadPoolExecutor(max_workers=REPORT_THREADS) as pool, _elsewhere(entries) as elsewhere:
        # The reads of every journal line: the totals most statements are sums of, the
        # entries that do not balance, then the digest (needed last).
        for sql, parameters in (line_totals_query(period), unbalanced_entries_query(period)):
            books.read_elsewhere(elsewhere, sql, **parameters)
        digested = elsewhere.submit(_digest_and_head, store.url, period)
        # The reads run in the database driver, which lets go of the interpreter: on
        # several threads they use every core. A task waits only on tasks submitted before
        # it, so the first-in, first-out pool always has one running that can finish.
        reconciling = [pool.submit(reconcile) for reconcile in reconciliations_of(
            books, period, accounts.deferred_revenue, accounts.cash_clearing, accounts.sales_tax)]
        figures_of = period_figures(books, policy)
        builders = report_builders(books, policy, period, archive_root, lambda: [
            reconciliation.result() for reconciliation in reconciling], figures_of)
        building = {name: pool.submit(builders[name]) for name in
                    sorted(builders, key=lambda name: name not in _LONGEST_REPORTS)}
        reconciliations = [reconciliation.result() for reconciliation in reconciling]
        failed = tuple(r.name for r in reconciliations if not r.passed)
        if failed and not accept_exceptions:
            pool.shutdown(cancel_futures=True)
            elsewhere.shutdown(cancel_futures=True)
            raise _refusal(period, reconciliations)
        version = _next_version(store, period)
        _refuse_written_version(Path(out), period, version)
        package = PackageWriter(Path(out) / period / f"v{version}", period, list(builders),
                                TOTALLED_COLUMNS, EMPTY_REPORT_COLUMNS)
        # Each report's files are written as it comes, while the others are worked out.
        name_of = {future: name for name, future in building.items()}
        for built in as_completed(name_of):
            package.add(name_of[built], built.result())
        reports = {name: building[name].result() for name in builders}
        charts = _charts(books, policy, period, reports, figures_of)
        recorded_at = datetime.now(UTC).replace(tzinfo=None)
        who = actor or current_actor()

        def manifest_facts() -> dict:
            digest, lines, head, record_head, ledger = digested.result()
            return {"version": version, "closed_by": who,
                    "closed_at": recorded_at.replace(tzinfo=UTC).isoformat(),
                    "policy_version": policy.version, "journal_digest": digest,
                    "journal_lines": lines,
                    "chain_head": {"sequence": head.sequence, "hash": head.chain_hash},
                    "empty_days": list(empty_days), "reconciliations_failed": list(failed),
                    "accepted_exceptions_reason": reason if failed else "",
                    # The heads as the package saw them; the anchor file gets them again
                    # once the lock (itself sealed) is committed.
                    "anchor": Anchor(ledger, f"close {period} v{version} (package)",
                                     recorded_at.replace(tzinfo=UTC).isoformat(), head,
                                     record_head).as_dict()}

        manifest = package.finish(reports, charts, manifest_facts)
        digest = digested.result()[0]
    # Read back by the independent reader before the lock: a package that does not tie
    # out is never the locked one (the next close replaces it).
    if problems := verify_package(manifest.parent):
        with store.engine.connect() as connection:  # a posting that raced the reads comes first
            _require_unchanged(connection, period, entries)
        raise CloseRefusedError(f"period {period} not locked: the package does not tie out "
                                f"({len(problems)} problem(s)), the first: {problems[0]}")
    with store.transaction() as connection:
        take_posting_lock(connection)
        if period in locked_periods(connection):
            return CloseOutcome(period, "already closed", version, None, empty_days, failed)
        _require_unchanged(connection, period, entries)
        _refuse_written_version(Path(out), period, version)
        record_period_event(connection, period, "close", version, who, reason, bool(failed),
                            digest, recorded_at)
    # Into place only once the lock is committed: a package in place is a close recorded.
    manifest = package.move_into_place()
    write_anchor(store, f"close {period} v{version}", anchor_file(anchors, Path(out)))
    return CloseOutcome(period, "closed", version, manifest.parent, empty_days, failed)




def _require_unchanged(connection, period: str, entries: int) -> None:
    """Refuse the lock if entries were posted into the period after the close counted them."""
    if entry_count(connection, period) != entries:
        raise CloseRefusedError(f"period {period} not locked: entries were posted into it "
                                "while it was closing; run the close again")


def _refuse_written_version(out: Path, period: str, version: int) -> None:
    """A version directory already there stops the close: a package is never overwritten
    (the ledger counting fewer closes than there are packages is itself a sign that its
    period events were removed)."""
    try:
        refuse_existing_package(out / period / f"v{version}")
    except PackageExistsError as error:
        raise CloseRefusedError(f"period {period} not locked: {error}") from None


def _finish_interrupted_package(out: Path, close_event: dict) -> None:
    """A close killed after its lock committed and before its package was renamed into
    place left it whole in a partial directory: its manifest's close instant and digest
    are the event's, so it is moved into place now."""
    directory = out / close_event["period"] / f"v{close_event['version']}"
    if directory.exists():
        return
    for partial in sorted(directory.parent.glob(f"{directory.name}.partial-*")):
        try:
            manifest = json.loads((partial / "manifest.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # not finished: a close that never locked left it
        if (manifest.get("journal_digest") == close_event["journal_digest"] and utc_instant(
                manifest.get("closed_at")) == utc_instant(close_event["recorded_at"])):
            move_package_into_place(partial, directory)
            return


REPORT_THREADS = 4
# Started first: each reads a large part of the period on its own.
_LONGEST_REPORTS = frozenset({"kpis", "waterfall", "waterfall_functional", "credit_runway",
                              "lot_aging", "burstiness"})
OWN_PROCESS_FROM_ENTRIES = 200_000


def _refusal(period: str, reconciliations: list) -> CloseRefusedError:
    details = "; ".join(f"{r.name}: " + ("; ".join(r.items[:3]) or ", ".join(
        f"{line.scope} difference {line.difference}" for line in r.lines if line.difference))
        for r in reconciliations if not r.passed)
    return CloseRefusedError(f"period {period} not locked: reconciliation failed: {details}. "
                             "Fix the cause, or close with --accept-exceptions --reason.")


def _next_version(store: Store, period: str) -> int:
    return 1 + int(store.read_frame(
        "SELECT COUNT(*) AS n FROM period_events WHERE period = :period AND action = 'close'",
        period=period)["n"].iloc[0])


def _elsewhere(entries: int) -> Executor:
    """Where the close reads every journal line (line totals, unbalanced entries, digest).

    For a large period, a process of its own: the digest fetches each line as a row, and
    in a thread every row waits for the interpreter the reports are using (the bench
    month of 3M entries closed in about 89 s that way, in about 65 s this way). For a
    small one, a thread: starting a process (a second or two) would cost more than it
    saves."""
    if entries < OWN_PROCESS_FROM_ENTRIES:
        return ThreadPoolExecutor(max_workers=1)
    return ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_end_with, initargs=(os.getpid(),))


def _end_with(parent: int) -> None:
    """Make this process end when the close that started it does, however that ends."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _digest_and_head(database_url: str,
                     period: str) -> tuple[str, int, ChainHead, ChainHead, str | None]:
    """The period's journal digest and line count, both chains' heads and the ledger's id."""
    with store_at(database_url) as store, store.engine.connect() as connection:
        digest, lines = journal_digest(connection, period)
        return (digest, lines, chain_head(connection), record_chain_head(connection),
                known_ledger_id(connection))


def reopen_period(store: Store, period: str, reason: str, actor: str | None = None,
                  anchors: Path | None = None) -> int:
    """anchors: where to append an anchor of the reopen (else $CREDITBOOKS_ANCHORS, else
    none: a reopen knows no close directory to put one beside)."""
    parse_period(period)
    if not reason.strip():
        raise CloseRefusedError("reopening a period needs --reason saying why")
    with store.transaction() as connection:
        states = period_states(connection)
        if states.get(period, {}).get("action") != "close":
            raise CloseRefusedError(f"period {period} is not closed")
        later = sorted(p for p, state in states.items() if p > period and state["action"] == "close")
        if later:
            raise CloseRefusedError(f"reopen {', '.join(reversed(later))} first: periods reopen "
                                    "in reverse order")
        digest, _ = journal_digest(connection, period)
        version = int(states[period]["version"])
        record_period_event(connection, period, "reopen", version, actor or current_actor(), reason,
                            False, digest, datetime.now(UTC).replace(tzinfo=None))
    if anchors is not None or os.environ.get(ANCHORS_ENVIRONMENT_VARIABLE):
        write_anchor(store, f"reopen {period}", anchor_file(anchors, Path(".")))
    return version


def _require_previous_closed(store: Store, period: str, states: dict) -> None:
    first_batch = store.read_frame("SELECT MIN(business_date) AS first FROM batches")["first"].iloc[0]
    if first_batch is None:
        return
    candidate = period_of(first_batch if hasattr(first_batch, "year")
                          else datetime.fromisoformat(str(first_batch)).date())
    open_before = []
    while candidate < period:
        if states.get(candidate, {}).get("action") != "close":
            open_before.append(candidate)
        first, following = parse_period(candidate)
        candidate = period_of(following)
    if open_before:
        raise CloseRefusedError(f"close {', '.join(open_before)} first: periods close in order")


def require_complete(store: Store, period: str) -> tuple[str, ...]:
    first, following = parse_period(period)
    batches = store.read_frame("SELECT business_date, status FROM batches WHERE business_date >= "
                               ":first AND business_date < :following", first=first,
                               following=following)
    status_of = {str(row.business_date): row.status for row in batches.itertuples(index=False)}
    days = [day.isoformat() for day in days_between(first, following - timedelta(days=1))]
    missing = [day for day in days if status_of.get(day) not in ("posted", "empty")]
    if missing:
        shown = ", ".join(missing[:10]) + (f" (+{len(missing) - 10} more)" if len(missing) > 10 else "")
        raise CloseRefusedError(f"period {period} is not complete: no published nightly batch for "
                                f"{shown}")
    return tuple(day for day in days if status_of[day] == "empty")


def report_builders(store: Store, policy: Policy, period: str, archive_root: Path,
                    reconciled: Callable[[], list] | None = None,
                    figures_of: Callable[[str], dict] | None = None,
                    ) -> dict[str, Callable[[], list[dict]]]:
    """Every report of a period's close, by name, each computed when asked for (on any
    thread: what two reports share is computed once).

    reconciled, figures_of: what the close works out anyway (the reconciliations, the KPI
    figures by period), so that no report computes them again."""
    accounts = policy.accounts
    reconciliations = computed_once(reconciled or (lambda: reconcile_period(
        store, period, accounts.deferred_revenue, accounts.cash_clearing, accounts.sales_tax)))
    figures_of = figures_of or period_figures(store, policy)
    runway = computed_once(lambda: credit_runway(store, period))
    functional = policy.functional_currency
    estimates = computed_once(lambda: breakage_estimates(store, period, policy))
    return {
        "completeness": lambda: completeness_rows(store, period),
        "reconciliations": lambda: [row for r in reconciliations() for row in r.rows()],
        "reconciliation_items": lambda: [{"reconciliation": r.name, "item": item}
                                         for r in reconciliations() for item in r.items],
        "trial_balance": lambda: trial_balance_statement(store, period),
        "income_statement": lambda: income_statement(store, period),
        "balance_sheet": lambda: balance_sheet(store, period),
        "rollforward": lambda: [row.as_strings() for row in rollforward(
            store, period, accounts.deferred_revenue)],
        # The same statements in the functional currency, over every transaction currency.
        "trial_balance_functional": lambda: trial_balance_statement(store, period, functional),
        "income_statement_functional": lambda: income_statement(store, period, functional),
        "balance_sheet_functional": lambda: balance_sheet(store, period, functional),
        "rollforward_functional": lambda: [row.as_strings() for row in rollforward(
            store, period, accounts.deferred_revenue, functional)],
        "rollforward_by_customer": lambda: close_reports.rollforward_by(
            store, period, "customer", accounts),
        "rollforward_by_product": lambda: close_reports.rollforward_by(
            store, period, "product", accounts),
        "revenue_from_opening": lambda: close_reports.revenue_from_opening_balance(
            store, period, accounts),
        "waterfall": lambda: waterfall(store, period, policy),
        "waterfall_functional": lambda: waterfall(store, period, policy, functional=True),
        "revenue_by_customer": lambda: close_reports.revenue_by_customer_product_meter(
            store, period, figures_of(period)["usage"]),
        "breakage_by_lot": lambda: close_reports.breakage_by_lot(store, period),
        "breakage_estimates": estimates,
        "lot_aging": lambda: close_reports.lot_aging(store, period, policy.reporting_timezone),
        "kpis": lambda: kpi_summary(store, period, policy, figures_of),
        "kpis_by_meter": lambda: kpis_by(store, period, "meter", figures_of(period)["usage"]),
        "kpis_by_product": lambda: kpis_by(store, period, "product", figures_of(period)["usage"]),
        "burstiness": lambda: burstiness(store, period, Path(archive_root), policy.reporting_timezone),
        "credit_runway": runway,
        "top_up_list": lambda: [row for row in runway() if row["top_up_soon"]],
        "late_entries": lambda: close_reports.late_items(store, period),
        "late_usage": lambda: close_reports.late_usage(store, period, Path(archive_root),
                                                       policy.reporting_timezone),
        "exceptions": lambda: period_exceptions(store, period),
        "uncovered_usage": lambda: uncovered_usage_summary(store, period),
        "disclosures": disclosure_index,
        "disclosure_revenue_disaggregation": lambda: revenue_disaggregation(
            store, period, accounts),
        "disclosure_breakage_judgements": lambda: breakage_judgements(
            store, period, policy, estimates()),
    }


REPORT_NAMES = ("completeness", "reconciliations", "reconciliation_items", "trial_balance",
                "income_statement", "balance_sheet", "rollforward", "trial_balance_functional",
                "income_statement_functional", "balance_sheet_functional",
                "rollforward_functional", "rollforward_by_customer",
                "rollforward_by_product", "revenue_from_opening", "waterfall", "waterfall_functional",
                "revenue_by_customer",
                "breakage_by_lot", "breakage_estimates", "lot_aging", "kpis", "kpis_by_meter",
                "kpis_by_product", "burstiness", "credit_runway", "top_up_list", "late_entries",
                "late_usage", "exceptions", "uncovered_usage", "disclosures",
                "disclosure_revenue_disaggregation", "disclosure_breakage_judgements")


# The columns of each report that add up over its rows, per currency: the workbook's
# "Total CURRENCY" rows sum these and nothing else. Statements (trial balance, income
# statement, balance sheet), the waterfall (two methods of the same balance) and the KPIs
# carry their own totals or have none; rates, ratios and days are never summed.
_ROLLFORWARD_MOVEMENTS = ("opening", "purchases", "usage_revenue", "breakage", "refunds",
                          "escheat", "closing")
TOTALLED_COLUMNS: dict[str, tuple[str, ...]] = {
    "rollforward_by_customer": _ROLLFORWARD_MOVEMENTS,
    "rollforward_by_product": _ROLLFORWARD_MOVEMENTS,
    "revenue_by_customer": ("credits", "revenue"),
    "breakage_by_lot": ("credits_expired", "breakage", "escheat"),
    "breakage_estimates": ("lots_expired", "value", "estimated_breakage", "actual_breakage",
                           "difference"),
    "lot_aging": ("lots", "credits_remaining", "value_remaining"),
    "kpis_by_meter": ("credits_burned", "usage_revenue", "costs"),
    "kpis_by_product": ("credits_burned", "usage_revenue"),
    "late_entries": ("amount",),
}

# The header a report's CSV keeps when the period has no rows for it.
EMPTY_REPORT_COLUMNS: dict[str, tuple[str, ...]] = {
    "exceptions": ("business_date", "kind", "document", "file", "row", "id", "column", "reason",
                   "raw_values"),
    "uncovered_usage": UNCOVERED_COLUMNS,
    "disclosure_revenue_disaggregation": ("dimension", "key", "currency", "usage_revenue",
                                          "breakage", "total"),
    "completeness": ("business_date", "status"),
    "reconciliation_items": ("reconciliation", "item"),
    "late_entries": ("business_date", "entry_id", "kind", "customer_id", "currency", "amount"),
    "late_usage": ("business_date", "customer_id", "meter", "occurred_period", "events",
                   "credits"),
    "breakage_by_lot": ("purchase_id", "customer_id", "product", "currency", "expires_at",
                        "expired_on", "credits_expired", "breakage", "escheat"),
    "breakage_estimates": ("cumulative_to", "product", "currency", "method", "lots_expired",
                           "value", "estimated_breakage", "actual_breakage", "difference",
                           "estimated_rate", "actual_rate"),
    "top_up_list": ("customer_id", "credits_remaining", "daily_burn", "days_left",
                    "top_up_soon"),
    "credit_runway": ("customer_id", "credits_remaining", "daily_burn", "days_left",
                      "top_up_soon"),
}


def completeness_rows(store: Store, period: str) -> list[dict]:
    """The days of the period that need a person's attention: quiet days and missing ones."""
    first, following = parse_period(period)
    batches = store.read_frame("SELECT business_date, status FROM batches WHERE business_date >= "
                               ":first AND business_date < :following", first=first,
                               following=following)
    status_of = {str(row.business_date): row.status for row in batches.itertuples(index=False)}
    rows = []
    for day in days_between(first, following - timedelta(days=1)):
        status = status_of.get(day.isoformat())
        if status == "empty":
            rows.append({"business_date": day.isoformat(), "status": "empty: confirm no activity"})
        elif status != "posted":
            rows.append({"business_date": day.isoformat(), "status": "missing: no published batch"})
    return rows


def _charts(store: Store, policy: Policy, period: str, reports: dict,
            figures_of: Callable[[str], dict]) -> dict:
    bridge = {row["currency"]: [("opening", Decimal(row["opening"])),
                                ("purchases", Decimal(row["purchases"])),
                                ("usage", -Decimal(row["usage_revenue"])),
                                ("breakage", -Decimal(row["breakage"])),
                                ("refunds", -Decimal(row["refunds"])),
                                ("escheat", -Decimal(row["escheat"])),
                                ("closing", Decimal(row["closing"]))]
              for row in reports["rollforward"]}
    history: dict[str, list] = {}
    totals = line_totals(store, period)  # the close's own: each month is a sum over them
    for month in sorted(set(totals["period"]))[-12:]:
        for row in rollforward(store, month, policy.accounts.deferred_revenue, totals=totals):
            exponent = minor_unit_exponent(row.currency)
            history.setdefault(row.currency, []).append((
                month, Decimal(row.closing_minor).scaleb(-exponent),
                Decimal(row.usage_revenue_minor + row.breakage_minor).scaleb(-exponent)))
    waterfall_chart: dict[str, dict] = {}
    for row in reports["waterfall"]:
        labels = [key for key in row if key not in ("method", "currency", "total")]
        waterfall_chart.setdefault(row["currency"], {})[row["method"]] = [
            (label, Decimal(row[label])) for label in labels]
    return {"bridge": bridge, "history": history, "waterfall": waterfall_chart,
            "trends": _trend_charts(kpi_trends(store, period, policy, figures_of=figures_of))}


def _trend_charts(trends: list[dict]
                  ) -> list[tuple[str, list[str], list[tuple[str, list[Decimal | None]]]]]:
    """12-month trends: price vs cost per credit and margin per currency, volume, concentration."""
    labels = [row["period"] for row in trends]

    def series(key: str) -> list[Decimal | None]:
        # A blank figure (no costs in that currency, say) is shown as none, never as 0.
        return [Decimal(row[key]) if row.get(key) else None for row in trends]

    charts = []
    currencies = sorted({key.rsplit(" ", 1)[1] for row in trends for key in row
                         if key.startswith("effective price per credit ")})
    for currency in currencies:
        charts.append((f"Price vs cost per credit ({currency})", labels,
                       [("price per credit", series(f"effective price per credit {currency}")),
                        ("cost per credit", series(f"cost per credit {currency}"))]))
        margins = series(f"gross margin % {currency}")
        if any(margins):  # no cost lines in this currency: no margin to show
            charts.append((f"Gross margin % ({currency})", labels, [("gross margin %", margins)]))
    charts.append(("Usage volume (credits burned)", labels, [("credits", series("credits burned"))]))
    charts.append(("Active customers", labels, [("active", series("active customers"))]))
    charts.append(("Concentration: top 5 customers' share of credits burned", labels,
                   [("top 5 share", series("top 5 customers' share of credits burned"))]))
    return charts
