"""The `creditbooks` command line: a thin layer over ledger/, rules/ and reports/.

Errors a person can fix print as one line on stderr with a non-zero exit; `--debug`
shows the traceback instead.
"""

from __future__ import annotations

import os
import sys
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.exc import OperationalError

from creditbooks.close import CloseRefusedError
from creditbooks.night.ingest import NightOrderError
from creditbooks.night.run import BatchConflictError, StrictModeRejectionError, run_night
from creditbooks.night.stages import DailyControlError, StageOrderError
from intake.archive import ArchiveError
from intake.documents import InputFileError
from intake.usage_buckets import DEFAULT_CHUNK_ROWS
from ledger.guards import grant_application_role
from ledger.journal import UnbalancedJournalError
from ledger.locks import PeriodLockedError, locked_periods
from ledger.periods import Period, days_between, parse_business_date
from ledger.schema_version import LedgerSchemaError
from ledger.storage_urls import storage_failure
from ledger.store import Store, StoreNotInitialisedError, redacted
from reports.catalogue import CATALOGUE, FUNCTIONAL_TWINS, ReportSpec, report_builders
from reports.controls import archive_matches_ledger, run_controls
from reports.outputs.render import OutputFormat, render_document, render_rows
from reports.statements import rollforward, trial_balance_statement
from reports.subledger import exceptions as list_exceptions
from reports.subledger import lot_balances
from reports.trace import TraceNotFoundError
from rules.fx import FxRateMissingError
from rules.overage import OverageRuleError
from rules.policy import EXPORT_TARGETS, Policy, PolicyError, load_policy

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Double-entry books and revenue recognition for prepaid usage credits.")
report_app = typer.Typer(no_args_is_help=True, help="Period reports.")
app.add_typer(report_app, name="report")
trace_app = typer.Typer(no_args_is_help=True, help="Audit trace: usage to revenue and back.")
app.add_typer(trace_app, name="trace")
journal_app = typer.Typer(no_args_is_help=True, help="Manual journals: import, approve, "
                          "reject, reverse, list (maker-checker).")
app.add_typer(journal_app, name="journal")
policy_app = typer.Typer(no_args_is_help=True, help="Policy versions the ledger kept.")
app.add_typer(policy_app, name="policy")
ArchiveOption = Annotated[Path, typer.Option("--archive", envvar="CREDITBOOKS_ARCHIVE")]
AnchorsOption = Annotated[Path | None, typer.Option(
    "--anchors", envvar="CREDITBOOKS_ANCHORS",
    help="the append-only anchor file (default: creditbooks-anchors.jsonl beside the archive "
         "or close directory)")]

FormatOption = Annotated[OutputFormat, typer.Option("--format", help="table, csv or json")]
ActorOption = Annotated[str | None, typer.Option(
    "--actor", help="who does this, recorded (default $CREDITBOOKS_ACTOR)")]


def _period_option(name: str) -> Period:
    """--period's text made a Period where it enters: a malformed one stops the command
    before it runs, as the usual one line (`main`), naming it."""
    try:
        return Period(name)
    except ValueError as error:  # not a ValueError: click would make it a usage panel
        raise CreditbooksFailure(str(error)) from None


PeriodOption = Annotated[Period, typer.Option(help="YYYY-MM", parser=_period_option, metavar="TEXT")]


class Context:
    def __init__(self, database_url: str | None, policy_file: Path | None) -> None:
        self.database_url = database_url
        self.policy_file = policy_file

    def store(self, must_exist: bool = True) -> Store:
        store = Store(self.database_url)
        if must_exist:
            store.require_initialised()
        return store

    def policy(self) -> Policy:
        return load_policy(self.policy_file)


@app.callback()
def options(
    context: typer.Context,
    db: Annotated[str | None, typer.Option("--db", help="SQLAlchemy URL; default $CREDITBOOKS_DB, "
                                           "else sqlite file creditbooks.db here")] = None,
    policy: Annotated[Path | None, typer.Option("--policy", help="policy TOML file")] = None,
    debug: Annotated[bool, typer.Option("--debug", help="show tracebacks")] = False,
) -> None:
    context.obj = Context(db, policy)
    if policy is not None:  # a policy named but not valid stops any command before it starts
        context.obj.policy()


def _context(context: typer.Context) -> Context:
    return context.obj


@app.command()
def init(
    context: typer.Context,
    application_role: Annotated[str | None, typer.Option(
        "--application-role", help="PostgreSQL: let this role post (insert-only journal)")] = None,
) -> None:
    """Create the ledger's tables and, on PostgreSQL, its guards (safe to run again; an
    existing ledger is never changed: one made by an older version needs `upgrade`)."""
    store = _context(context).store(must_exist=False)
    store.initialise()
    if application_role:
        if not store.is_postgresql:
            raise typer.BadParameter("--application-role needs a PostgreSQL ledger")
        with store.transaction() as connection:
            grant_application_role(connection, application_role)
    typer.echo(f"ledger ready at {redacted(store.url)}")


@app.command()
def upgrade(context: typer.Context, archive: Annotated[Path | None, typer.Option(
        "--archive", envvar="CREDITBOOKS_ARCHIVE",
        help="the archive the ledger's nights wrote, adopted into its record")] = None) -> None:
    """Bring the ledger to this version's schema, in one transaction (SQLite: backup first)."""
    from ledger.upgrade import upgrade_ledger

    url = _context(context).store(must_exist=False).url
    outcome = upgrade_ledger(url, archive_root=archive)
    if not outcome.changed:
        typer.echo(f"ledger at {redacted(url)} is at {outcome.to_revision}; nothing to upgrade")
        return
    if outcome.backup:
        typer.echo(f"backup of the ledger before the upgrade: {outcome.backup}")
    ran = ", ".join(outcome.migrations_run) or "none (its revision is now recorded)"
    if outcome.partitions_adopted:
        typer.echo(f"archive partitions adopted from {archive}: {outcome.partitions_adopted}")
    typer.echo(f"ledger at {redacted(url)} upgraded from schema {outcome.from_schema} to "
               f"{outcome.to_revision}; migrations run: {ran}")


@app.command()
def nightly(
    context: typer.Context,
    on_date: Annotated[str | None, typer.Option("--date", help="business date YYYY-MM-DD")] = None,
    from_date: Annotated[str | None, typer.Option("--from", help="first date of a range")] = None,
    to_date: Annotated[str | None, typer.Option("--to", help="last date of a range")] = None,
    landing: Annotated[Path, typer.Option(envvar="CREDITBOOKS_LANDING")] = Path("landing"),
    archive: ArchiveOption = Path("archive"),
    strict: Annotated[bool, typer.Option("--strict", help="refuse the batch on any bad row")] = False,
    chunk_rows: Annotated[int, typer.Option(
        "--chunk-rows", min=1, help="read a larger usage file this many rows at a time and burn "
        "it in customer shards of about as many events: memory bounded by the chunk, the same "
        "books")] = DEFAULT_CHUNK_ROWS,
    output_format: FormatOption = OutputFormat.TABLE,
    anchors: AnchorsOption = None,
    actor: ActorOption = None,
) -> None:
    """Post one business day, or each day of a range in order, from LANDING/YYYY-MM-DD/
    (the batch records --actor, else $CREDITBOOKS_ACTOR, else os:USER)."""
    days = _requested_days(on_date, from_date, to_date)
    ctx = _context(context)
    store, policy = ctx.store(), ctx.policy()
    rows = []
    for business_date in days:
        outcome = run_night(store, policy, landing, archive, business_date, strict=strict,
                            chunk_rows=chunk_rows, anchors=anchors, actor=actor)
        rows.append(outcome.as_row())
        if output_format == OutputFormat.TABLE:
            typer.echo(_night_line(rows[-1]))
    if output_format != OutputFormat.TABLE:
        typer.echo(render_rows(rows, output_format))


def _night_line(row: dict) -> str:
    return (f"{row['business_date']} {row['status']:<9} entries={row['entries']} "
            f"read={row['rows_read']} accepted={row['accepted']} duplicates={row['duplicates']} "
            f"rejected={row['rejected']} uncovered_credits={row['uncovered_credits']}")


def _requested_days(on_date, from_date, to_date) -> list[date]:
    if on_date and not (from_date or to_date):
        return [parse_business_date(on_date)]
    if from_date and to_date and not on_date:
        return days_between(parse_business_date(from_date), parse_business_date(to_date))
    raise typer.BadParameter("give --date D, or --from D1 --to D2")


@app.command()
def balances(
    context: typer.Context,
    customer: Annotated[str | None, typer.Option(help="one customer's lots")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="end of business date")] = None,
    output_format: FormatOption = OutputFormat.TABLE,
) -> None:
    """Remaining credits and deferred value per lot."""
    as_of_date = parse_business_date(as_of) if as_of else None
    rows = lot_balances(_context(context).store(), customer, as_of_date)
    typer.echo(render_rows(rows, output_format, "Lot balances"))


@app.command()
def exceptions(
    context: typer.Context,
    on_date: Annotated[str | None, typer.Option("--date", help="business date")] = None,
    output_format: FormatOption = OutputFormat.TABLE,
) -> None:
    """Quarantined rows, conflicts and uncovered usage."""
    day = parse_business_date(on_date) if on_date else None
    rows = list_exceptions(_context(context).store(), day)
    typer.echo(render_rows(rows, output_format, "Exceptions"))


FunctionalOption = Annotated[bool, typer.Option(
    "--functional", help="In the functional currency (policy [fx]), over all currencies.")]


@report_app.command("trial-balance")
def trial_balance_command(
    context: typer.Context,
    period: PeriodOption,
    output_format: FormatOption = OutputFormat.TABLE,
    functional: FunctionalOption = False,
) -> None:
    """Per account and currency, as the close package's trial balance: opening and closing
    balances on their debit or credit side, the period's debits and credits, every figure
    positive; a Total row per currency (never across currencies) whose debits equal its
    credits."""
    ctx = _context(context.parent)
    rows = trial_balance_statement(ctx.store(), period,
                                   ctx.policy().functional_currency if functional else None)
    typer.echo(render_rows(rows, output_format, f"Trial balance {period}", {"period": period}))


@report_app.command("rollforward")
def rollforward_command(
    context: typer.Context,
    period: PeriodOption,
    output_format: FormatOption = OutputFormat.TABLE,
    functional: FunctionalOption = False,
) -> None:
    """Deferred revenue: opening + purchases - usage - breakage - refunds - escheat = closing."""
    ctx = _context(context.parent)
    rows = rollforward(ctx.store(), period, ctx.policy().accounts.deferred_revenue,
                       ctx.policy().functional_currency if functional else None)
    untied = [row for row in rows if row.difference_minor]
    typer.echo(render_rows([row.as_strings() for row in rows], output_format,
                           f"Deferred revenue rollforward {period}", {"period": period}))
    if untied:
        raise CreditbooksFailure(f"rollforward does not tie in {', '.join(r.currency for r in untied)}")


def _register_close_report(report: ReportSpec) -> None:
    name = report.name

    def show(
        context: typer.Context,
        period: PeriodOption,
        archive: ArchiveOption = Path("archive"),
        output_format: FormatOption = OutputFormat.TABLE,
        functional: FunctionalOption = False,
    ) -> None:
        ctx = _context(context.parent)
        builders = report_builders(ctx.store(), ctx.policy(), period, archive)
        if functional and not report.functional_twin:
            raise typer.BadParameter(f"report {name.replace('_', '-')} has no functional-currency "
                                     "form: leave out --functional")
        rows = builders[report.functional_twin if functional else name]()
        typer.echo(render_rows(rows, output_format, f"{name} {period}", {"period": period}))

    show.__doc__ = f"The close report {name.replace('_', ' ')} (as in the close package)."
    report_app.command(name.replace("_", "-"))(show)


# Every report of the catalogue but the two with commands of their own; a functional twin
# is its report's --functional.
for _report in CATALOGUE.values():
    if _report.name not in ("trial_balance", "rollforward", *FUNCTIONAL_TWINS):
        _register_close_report(_report)


@app.command()
def check(context: typer.Context, output_format: FormatOption = OutputFormat.TABLE) -> None:
    """Verify every invariant: balanced entries, subledger = GL, lots tie out, usage accounted."""
    ctx = _context(context)
    results = run_controls(ctx.store(), ctx.policy().accounts.deferred_revenue,
                           ctx.policy().functional_currency)
    rows = [result.as_dict() for result in results]
    typer.echo(render_rows(rows, output_format, "Controls"))
    failed = [result.control for result in results if not result.passed]
    if failed:
        raise CreditbooksFailure(f"{len(failed)} control(s) failed: {'; '.join(failed)}")


@trace_app.command("usage")
def trace_usage_command(context: typer.Context, event_id: str, archive: ArchiveOption = Path("archive"),
                        output_format: FormatOption = OutputFormat.TABLE) -> None:
    """A usage event: archived source, customer-day bucket, burn slices, entry, its share."""
    from reports.trace import trace_usage

    document = trace_usage(_context(context.parent).store(), archive, event_id)
    typer.echo(render_document(document, output_format, f"usage event {event_id}"))


@trace_app.command("entry")
def trace_entry_command(
    context: typer.Context, entry_id: str, archive: ArchiveOption = Path("archive"),
    events_csv: Annotated[Path | None, typer.Option(help="stream the entry's events here")] = None,
    output_format: FormatOption = OutputFormat.TABLE,
) -> None:
    """A journal entry: lines, batch, policy version, seal, and the sources behind it."""
    from reports.trace import trace_entry

    ctx = _context(context.parent)
    policy = ctx.policy()
    document = trace_entry(ctx.store(), archive, entry_id, events_csv, policy.accounts,
                           policy.functional_currency)
    typer.echo(render_document(document, output_format, f"entry {entry_id}"))


@trace_app.command("journal")
def trace_journal_command(
    context: typer.Context, external_id: str,
    mapping: Annotated[Path, typer.Option(help="the FILE.journals.csv written beside the export")],
    output_format: FormatOption = OutputFormat.TABLE,
) -> None:
    """An exported ERP journal by its external id: its journal key and the entries it sums."""
    from reports.outputs.exports import trace_journal

    document = trace_journal(_context(context.parent).store(), external_id, mapping)
    typer.echo(render_document(document, output_format, f"journal {external_id}"))


@trace_app.command("purchase")
def trace_purchase_command(context: typer.Context, purchase_id: str,
                           output_format: FormatOption = OutputFormat.TABLE) -> None:
    """A lot's whole life and the proof that it ties out."""
    from reports.trace import proof_failure, trace_purchase

    ctx = _context(context.parent)
    document = trace_purchase(ctx.store(), purchase_id, ctx.policy().accounts)
    typer.echo(render_document(document, output_format, f"purchase {purchase_id}"))
    failure = proof_failure(document)
    if failure:  # the trace is shown, and the proof's failure is the command's
        raise CreditbooksFailure(failure)


@trace_app.command("customer")
def trace_customer_command(context: typer.Context, customer_id: str,
                           period: PeriodOption,
                           output_format: FormatOption = OutputFormat.TABLE) -> None:
    """A customer's opening and closing credits and value, and all activity in a period."""
    from reports.trace import trace_customer

    document = trace_customer(_context(context.parent).store(), customer_id, period)
    typer.echo(render_document(document, output_format, f"customer {customer_id} {period}"))


@trace_app.command("sample")
def trace_sample_command(
    context: typer.Context, period: PeriodOption,
    n: Annotated[int, typer.Option("--n", help="how many of each")] = 25,
    seed: Annotated[int, typer.Option(help="the same seed picks the same sample")] = 1,
    archive: ArchiveOption = Path("archive"), output_format: FormatOption = OutputFormat.TABLE,
) -> None:
    """Reproducibly sample usage events and revenue lines of a period and trace each."""
    from reports.trace import trace_sample

    ctx = _context(context.parent)
    document = trace_sample(ctx.store(), archive, period, n, seed, ctx.policy().accounts)
    typer.echo(render_document(document, output_format, f"sample of {period}"))


@app.command()
def kpis(
    context: typer.Context,
    period: PeriodOption,
    by: Annotated[str, typer.Option(help="meter, product or customer")] = "",
    archive: ArchiveOption = Path("archive"),
    output_format: FormatOption = OutputFormat.TABLE,
) -> None:
    """Unit economics of credits: volume, price and cost per credit, margin, mix, runway."""
    from reports.kpis import burstiness, credit_runway, kpi_summary, kpis_by

    ctx = _context(context)
    store, policy = ctx.store(), ctx.policy()
    if by:
        typer.echo(render_rows(kpis_by(store, period, by), output_format, f"KPIs {period} by {by}"))
        return
    runway = credit_runway(store, period)
    document = {"kpis": kpi_summary(store, period, policy),
                "burstiness": burstiness(store, period, archive, policy.reporting_timezone),
                "credit_runway": runway,
                "top_up_list": [row for row in runway if row["top_up_soon"]]}
    if output_format == OutputFormat.CSV:
        typer.echo(render_rows(document["kpis"], output_format))
        return
    typer.echo(render_document(document, output_format, f"KPIs {period}"))


@app.command()
def verify(context: typer.Context, output_format: FormatOption = OutputFormat.TABLE,
           archive: Annotated[Path | None, typer.Option(
               "--archive", envvar="CREDITBOOKS_ARCHIVE",
               help="also check every archive partition against the SHA-256 its batch "
                    "recorded")] = None,
           close_dir: Annotated[Path | None, typer.Option(
               "--close-dir", envvar="CREDITBOOKS_CLOSE_DIR",
               help="also check every close package's manifest there against the ledger")] = None,
           anchors: Annotated[Path | None, typer.Option(
               "--anchors", envvar="CREDITBOOKS_ANCHORS",
               help="also check every anchor of this ledger in this file")] = None) -> None:
    """Recompute both hash chains, the period events and every invariant, and check the
    close packages, the anchor file and the archive written outside the ledger (--close-dir,
    --anchors, --archive; without them ./close, the default anchor file and ./archive, when
    they are there); name the first thing that is off."""
    from creditbooks.evidence_places import evidence_places

    places = evidence_places(close_dir, anchors, archive)
    _verify(context, output_format, places.archive, places.close_dir, places.anchors,
            places.notes)


def _verify(context: typer.Context, output_format: OutputFormat, archive: Path | None,
            close_dir: Path | None, anchors: Path | None, notes: tuple[str, ...] = ()) -> None:
    from ledger.evidence import verify_evidence

    ctx = _context(context)
    store = ctx.store()
    if output_format == OutputFormat.TABLE:  # csv and json: the rows name what was checked
        for note in notes:
            typer.echo(note)
    with store.engine.connect() as connection:
        evidence = verify_evidence(connection, close_dir, anchors)
    rows = [check.as_dict() for check in evidence]
    rows += [result.as_dict() for result in run_controls(
        store, ctx.policy().accounts.deferred_revenue, ctx.policy().functional_currency)]
    if archive is not None:
        rows.append(archive_matches_ledger(store, archive).as_dict())
    typer.echo(render_rows(rows, output_format, "Verification"))
    failed = [row for row in rows if not row["passed"]]
    if failed:
        raise CreditbooksFailure(f"verification failed: {'; '.join(r['control'] for r in failed)}"
                                 f"; first: {failed[0]['detail']}")


@app.command()
def backup(context: typer.Context, to: Annotated[Path, typer.Option(
        "--to", help="the backup file to write (an existing file is never overwritten)")]) -> None:
    """Copy the ledger to one file: a consistent snapshot, whole nights only, even while a
    night runs (SQLite: its backup API; PostgreSQL: pg_dump --format=custom)."""
    from creditbooks.backup import BackupError, backup_ledger

    url = _context(context).store(must_exist=False).url
    try:
        summary = backup_ledger(url, to)
    except BackupError as error:
        raise CreditbooksFailure(str(error)) from None
    typer.echo(f"backup of {redacted(url)} written to {to}")
    for line in summary.lines():
        typer.echo(line)


@app.command()
def restore(
    context: typer.Context,
    from_file: Annotated[Path, typer.Option("--from", help="a file `creditbooks backup` wrote")],
    replace: Annotated[bool, typer.Option(
        "--replace", help="overwrite the ledger already at --db")] = False,
    archive: Annotated[Path | None, typer.Option(
        "--archive", envvar="CREDITBOOKS_ARCHIVE",
        help="also check the archive partitions the restored batches recorded")] = None,
    output_format: FormatOption = OutputFormat.TABLE,
    safety_copy: Annotated[Path | None, typer.Option(
        "--safety-copy", help="where to keep the ledger --replace replaces (default: SQLite, "
        "beside it; PostgreSQL, a pg_dump file beside the backup)")] = None,
    other_ledger: Annotated[bool, typer.Option(
        "--other-ledger", help="with --replace: let a backup of another ledger (another "
        "ledger id) replace this one")] = False,
) -> None:
    """Put a backup's books into the ledger at --db (an empty one, or any with --replace)
    once they pass verify's checks in a scratch database, keeping a safety copy of a ledger
    replaced; then run verify's checks and report the chain head and the last published
    night."""
    from creditbooks.backup import BackupError, restore_ledger

    ctx = _context(context)
    store = ctx.store(must_exist=False)
    try:
        outcome = restore_ledger(store.url, from_file, replace, ctx.policy(), safety_copy,
                                 other_ledger)
    except BackupError as error:
        raise CreditbooksFailure(str(error)) from None
    typer.echo(f"verified {from_file} before restoring it: {outcome.verified}")
    if outcome.lineage:
        typer.echo(outcome.lineage)
    if outcome.safety_copy is not None:
        typer.echo(f"the ledger replaced is kept in {outcome.safety_copy} (restore it with "
                   "creditbooks restore --from that file --replace)")
    typer.echo(f"restored {from_file} into {redacted(store.url)}")
    for line in outcome.summary.lines():
        typer.echo(line)
    if not outcome.needs_upgrade:
        typer.echo(f"append-only guards installed on the restored books, as init installs them "
                   f"({outcome.guards_installed} were missing from the backup)")
    if store.is_postgresql:
        typer.echo("grants are not restored: run creditbooks init --application-role ROLE")
    if outcome.needs_upgrade:
        typer.echo(f"the backup is at schema {outcome.summary.schema}, older than this "
                   "version's: run creditbooks upgrade, then creditbooks verify")
        return
    typer.echo("outside the ledger: check with creditbooks verify --anchors FILE --close-dir DIR;"
               " anchors and closes after the backup fail until its later nights run again")
    _verify(context, output_format, archive, None, None)


@app.command()
def export(
    context: typer.Context,
    period: PeriodOption,
    output_format: Annotated[str, typer.Option(
        "--format", help="netsuite, quickbooks, xero, sap, csv or beancount")],
    out: Annotated[Path, typer.Option(help="file to write (xero: one file per currency and "
                                           "300 lines, named after it)")],
    summary: Annotated[str, typer.Option(help="daily (default) or monthly journals")] = "daily",
    by: Annotated[str, typer.Option(help="'customer' adds the customer to every line")] = "",
    draft: Annotated[bool, typer.Option("--draft", help="allow a period that is not closed")] = False,
    functional: FunctionalOption = False,
) -> None:
    """Export a period's journal entries for an ERP, or as a beancount ledger."""
    from reports.outputs.beancount_export import write_beancount
    from reports.outputs.exports import export_period, mapping_path

    if by not in ("", "customer"):
        raise typer.BadParameter("--by takes 'customer'")
    if output_format not in EXPORT_TARGETS:
        raise typer.BadParameter(f"--format must be one of {', '.join(EXPORT_TARGETS)}")
    ctx = _context(context)
    store, policy = ctx.store(), ctx.policy()
    with store.engine.connect() as connection:
        closed = period in locked_periods(connection)
    if not closed and not draft:
        raise CreditbooksFailure(f"period {period} is not closed: its figures can still change. "
                                 "Close it first, or export with --draft")
    if closed and draft:
        raise CreditbooksFailure(f"period {period} is closed: its journals are final; "
                                 "export it without --draft")
    if not closed:
        typer.echo(f"WARNING: {period} is not closed; this is a DRAFT export", err=True)
    in_functional = policy.functional_currency if functional else None
    if output_format == "beancount":
        files = [write_beancount(store, period, out, summary, by == "customer", draft,
                                 in_functional, ledger_currency=policy.functional_currency)]
    else:
        files = export_period(store, period, output_format, out, policy.exports, summary,
                              by == "customer", draft, in_functional,
                              ledger_currency=policy.functional_currency)
        files.append(mapping_path(out))
    for path in files:
        typer.echo(f"wrote {path}")


@app.command()
def close(
    context: typer.Context,
    period: PeriodOption,
    out: Annotated[Path, typer.Option(envvar="CREDITBOOKS_CLOSE_DIR",
                                      help="packages go to OUT/YYYY-MM/vN/")] = Path("close"),
    archive: ArchiveOption = Path("archive"),
    accept_exceptions: Annotated[bool, typer.Option(
        "--accept-exceptions", help="lock even though a reconciliation failed (recorded with "
        "--reason); never a package that does not tie out")] = False,
    reason: Annotated[str, typer.Option(help="why (required with --accept-exceptions)")] = "",
    anchors: AnchorsOption = None,
    actor: ActorOption = None,
) -> None:
    """Close a period: completeness, reconciliations, reports, package, then the lock
    (by --actor or $CREDITBOOKS_ACTOR, one of the policy's [controls] closers)."""
    from creditbooks.close import close_period

    ctx = _context(context)
    outcome = close_period(ctx.store(), ctx.policy(), period, out, archive,
                           accept_exceptions=accept_exceptions, reason=reason, anchors=anchors,
                           actor=actor)
    if outcome.status == "already closed":
        typer.echo(f"{period} is already closed (version {outcome.version}); nothing changed")
        return
    typer.echo(f"{period} closed, version {outcome.version}; package {outcome.package}")
    if outcome.empty_days:
        typer.echo(f"days with no activity (please confirm): {', '.join(outcome.empty_days)}")
    if outcome.failed_reconciliations:
        typer.echo("locked with accepted exceptions: " + "; ".join(outcome.failed_reconciliations))


@app.command()
def reopen(
    context: typer.Context,
    period: PeriodOption,
    reason: Annotated[str, typer.Option(help="why the period is reopened (recorded)")],
    anchors: Annotated[Path | None, typer.Option(
        "--anchors", envvar="CREDITBOOKS_ANCHORS",
        help="append an anchor of the reopen here (default: creditbooks-anchors.jsonl here)")
    ] = None,
    actor: ActorOption = None,
    approved_by: Annotated[str | None, typer.Option(
        "--approved-by", help="the approver: one of the policy's [controls] approvers, not "
                              "the actor")] = None,
) -> None:
    """Reopen a closed period (recorded: who, approved by whom, when, why); closing again
    makes a new version."""
    from creditbooks.close import reopen_period
    from creditbooks.evidence_places import DEFAULT_CLOSE_DIRECTORY
    from ledger.anchors import anchor_file

    ctx = _context(context)
    # Always anchored (the default file, as a close's): verify fails on unanchored seals.
    version = reopen_period(ctx.store(), period, reason, actor=actor,
                            anchors=anchor_file(anchors, DEFAULT_CLOSE_DIRECTORY),
                            policy=ctx.policy(), approved_by=approved_by)
    typer.echo(f"{period} reopened (was version {version}); postings into it are allowed again")


@policy_app.command("show")
def policy_show_command(
    context: typer.Context,
    version: Annotated[str | None, typer.Option(
        "--version", help="a policy version (default: the latest the ledger keeps)")] = None,
) -> None:
    """Print the text of a policy version as the ledger kept it when first used."""
    from ledger.policy_versions import kept_policy

    with _context(context).store().engine.connect() as connection:
        kept = kept_policy(connection, version)
    typer.echo(f"# policy version {kept.version}, first used for {kept.first_used_for} by "
               f"{kept.first_used_by} at {kept.first_used_at}")
    typer.echo(kept.policy_text, nl=not kept.policy_text.endswith("\n"))


@policy_app.command("diff")
def policy_diff_command(
    context: typer.Context,
    old_version: Annotated[str, typer.Argument(metavar="V1")],
    new_version: Annotated[str, typer.Argument(metavar="V2")],
) -> None:
    """A unified diff of two kept policy versions' texts."""
    import difflib

    from ledger.policy_versions import kept_policy

    with _context(context).store().engine.connect() as connection:
        old, new = kept_policy(connection, old_version), kept_policy(connection, new_version)
    typer.echo("".join(difflib.unified_diff(
        old.policy_text.splitlines(keepends=True), new.policy_text.splitlines(keepends=True),
        fromfile=f"policy {old.version}", tofile=f"policy {new.version}")), nl=False)


@app.command("verify-package")
def verify_package_command(
    context: typer.Context,
    directory: Annotated[Path, typer.Argument(help="a close package: OUT/YYYY-MM/vN")],
    rendered_html: Annotated[Path | None, typer.Option(
        "--rendered-html", help="summary.html as a browser rendered it (chromium --dump-dom), "
                                "checked instead of the file's text")] = None,
    ledger: Annotated[bool, typer.Option(
        "--ledger", help="also tie the package to the ledger named by --db ($CREDITBOOKS_DB): "
                         "its trial balances recomputed from the journal, its journal digest "
                         "and chain head")] = False,
) -> None:
    """Read a close package independently: every total, every tie between reports, the
    workbook, the HTML summary and manifest.json's SHA-256 of each file (with --ledger,
    against the ledger's journal too)."""
    from reports.outputs.verify_package import verify_package

    html = rendered_html.read_text(encoding="utf-8") if rendered_html else None
    if ledger:
        with _context(context).store().engine.connect() as connection:
            problems = verify_package(directory, html, ledger=connection)
    else:
        problems = verify_package(directory, html)
    for problem in problems:
        typer.echo(problem)
    if problems:
        raise CreditbooksFailure(f"package {directory} does not tie out: {len(problems)} "
                                 f"problem(s), the first: {problems[0]}")
    for note in problems.notes:
        typer.echo(f"note: {note}")
    typer.echo(f"package {directory} ties out")


@app.command()
def demo(
    context: typer.Context,
    out: Annotated[Path, typer.Option(help="where landing files, archive and ledger go")] = Path(
        "creditbooks-demo"),
    customers: Annotated[int, typer.Option(min=1, max=5000)] = 300,
    seed: Annotated[int, typer.Option()] = 7,
    generate_only: Annotated[bool, typer.Option("--generate-only",
                                                help="write the landing files and stop")] = False,
) -> None:
    """Generate a synthetic quarter, run every night, print trial balances and rollforwards."""
    from creditbooks.demo import run_demo

    ctx = _context(context)
    run_demo(out, customers=customers, seed=seed, policy=ctx.policy(),
             database_url=ctx.database_url, echo=typer.echo, generate_only=generate_only)


ByOption = Annotated[str | None, typer.Option(
    "--by", "--actor", help="the person acting (else $CREDITBOOKS_ACTOR; refused without one)")]


def _journal_action(action, *arguments, **options):
    """Run a manual journal action; its problems each on a line of stderr, then one line."""
    from creditbooks.journals import ManualJournalError

    try:
        return action(*arguments, **options)
    except ManualJournalError as error:
        if len(error.problems) == 1:
            raise CreditbooksFailure(error.problems[0]) from None
        for problem in error.problems:
            typer.echo(problem, err=True)
        raise CreditbooksFailure(f"{len(error.problems)} problem(s); nothing was imported, "
                                 f"the first: {error.problems[0]}") from None


@journal_app.command("import")
def journal_import_command(context: typer.Context, file: Path, by: ByOption = None) -> None:
    """Import manual journals from a CSV or beancount file as drafts: all of it, or none."""
    from creditbooks.actors import resolve_actor
    from creditbooks.journals import import_journals

    ctx = _context(context.parent)
    outcome = _journal_action(import_journals, ctx.store(), ctx.policy(), file,
                              resolve_actor(by, "importing manual journals"))
    typer.echo(f"imported {len(outcome.imported)} journal(s) as drafts"
               + (f": {', '.join(outcome.imported)}" if outcome.imported else "")
               + (f"; unchanged (imported before): {', '.join(outcome.unchanged)}"
                  if outcome.unchanged else ""))


@journal_app.command("approve")
def journal_approve_command(context: typer.Context, ref: str, by: ByOption = None,
                            anchors: Annotated[Path | None, typer.Option(
                                "--anchors", envvar="CREDITBOOKS_ANCHORS",
                                help="append an anchor of the posting here (default: "
                                     "creditbooks-anchors.jsonl here)")] = None) -> None:
    """Approve a draft (someone other than its preparer): it posts, is sealed and anchored."""
    from creditbooks.actors import resolve_actor
    from creditbooks.evidence_places import DEFAULT_CLOSE_DIRECTORY
    from creditbooks.journals import approve
    from ledger.anchors import anchor_file, write_anchor

    ctx = _context(context.parent)
    by = resolve_actor(by, f"approving journal {ref}")
    entry_id = _journal_action(approve, ctx.store(), ctx.policy(), ref, by)
    # Its entry is sealed onto the journal chain: anchored like a publish or a close
    # (verify fails on seals past the last anchor).
    write_anchor(ctx.store(), f"journal approve {ref}", anchor_file(anchors,
                                                                     DEFAULT_CLOSE_DIRECTORY))
    typer.echo(f"journal {ref} approved by {by}; posted as entry {entry_id}")


@journal_app.command("reject")
def journal_reject_command(context: typer.Context, ref: str, by: ByOption = None,
                           reason: Annotated[str, typer.Option(help="why")] = "") -> None:
    """Reject a draft, with a reason; it never posts."""
    from creditbooks.actors import resolve_actor
    from creditbooks.journals import reject

    by = resolve_actor(by, f"rejecting journal {ref}")
    ctx = _context(context.parent)
    _journal_action(reject, ctx.store(), ctx.policy(), ref, by, reason)
    typer.echo(f"journal {ref} rejected by {by}")


@journal_app.command("reverse")
def journal_reverse_command(
    context: typer.Context, ref: str,
    on_date: Annotated[str, typer.Option("--date", help="the reversal's business date")],
    by: ByOption = None,
) -> None:
    """Prepare the reversal of an approved journal (every line the other way round) as a
    draft; an approver other than the reverser posts it with `journal approve`."""
    from creditbooks.actors import resolve_actor
    from creditbooks.journals import reverse

    ctx = _context(context.parent)
    reversal = _journal_action(reverse, ctx.store(), ctx.policy(), ref,
                               parse_business_date(on_date),
                               resolve_actor(by, f"reversing journal {ref}"))
    typer.echo(f"reversal {reversal} of journal {ref}, dated {on_date}, prepared as a "
               f"draft; an approver other than its preparer posts it: "
               f"`creditbooks journal approve {reversal}`")


@journal_app.command("list")
def journal_list_command(
    context: typer.Context, period: PeriodOption,
    status: Annotated[str | None, typer.Option(help="draft, approved, rejected or reversed")] = None,
    output_format: FormatOption = OutputFormat.TABLE,
) -> None:
    """The manual journals dated in a period, with who prepared, approved or reversed them."""
    from creditbooks.journals import list_journals
    from ledger.domain import ManualJournalStatus

    try:
        wanted = ManualJournalStatus(status) if status else None
    except ValueError:
        raise CreditbooksFailure(f"--status {status!r} is not one of "
                                 f"{', '.join(ManualJournalStatus)}") from None
    rows = list_journals(_context(context.parent).store(), period, wanted)
    typer.echo(render_rows(rows, output_format, f"Manual journals {period}"))


class CreditbooksFailure(RuntimeError):
    """A command ran and found a problem (for example a failed control)."""


PERSON_FACING_ERRORS = (
    BatchConflictError, CloseRefusedError, CreditbooksFailure, DailyControlError, InputFileError,
    PeriodLockedError, PolicyError, StageOrderError, StoreNotInitialisedError, TraceNotFoundError,
    LedgerSchemaError,
    StrictModeRejectionError, UnbalancedJournalError, ValueError, FxRateMissingError,
    OverageRuleError, ArchiveError, NightOrderError,
)


def main() -> None:
    debug = "--debug" in sys.argv[1:] or os.environ.get("CREDITBOOKS_DEBUG") == "1"
    try:
        app(standalone_mode=True)
    except PERSON_FACING_ERRORS as error:
        if debug:
            raise
        typer.echo(f"creditbooks: error: {error}", err=True)
        sys.exit(1)
    except OperationalError as error:
        if debug:
            raise
        typer.echo(f"creditbooks: error: database: {str(error.orig).strip().splitlines()[0]}",
                   err=True)
        sys.exit(1)
    except Exception as error:  # the object storage's own (botocore's) errors: one line
        failure = storage_failure(error)
        if debug or failure is None:
            raise
        typer.echo(f"creditbooks: error: {failure}", err=True)
        sys.exit(1)
