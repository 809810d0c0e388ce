"""Audit trace: from any usage event to the revenue it produced, and from any entry back.

Every answer is a plain document (sections of rows) that renders as tables or JSON. A
usage event is found in the archive (file, batch, SHA-256 of the input), then its
customer-day bucket, the burn slices of that bucket, the journal entry and lines it
contributed to, and its pro-rata share of the value (the ledger posts per customer-day;
an event's share is its credits' fraction of its meter's credits that day, shown to the
minor unit, half even). Entries lead back to what each kind came from (`trace_entry`:
a purchase to its lot, usage to its events and burn slices, breakage to the lot's life, a
refund to its refund row, a cost to its cost line, escheat to the lot's expiry, overage
to its charges, an FX remeasurement to its rate and the cash and sales tax it
remeasured); purchases show their whole life and the proof that they tie out. Account
names come from the policy's chart (`accounts`), never spelt here.
"""

from __future__ import annotations

import csv
from datetime import date, timedelta
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from pyarrow.fs import LocalFileSystem

from intake.archive import archived_path_in, verified_path
from intake.object_storage import object_storage_url
from ledger.accounts import ChartOfAccounts
from ledger.archive_index import recorded_partition, recorded_partitions
from ledger.domain import EntryKind, ExpiryDestination, batch_id_for
from ledger.money import divide_round_half_even, format_micro_credits, format_minor
from ledger.periods import Period
from ledger.store import Store
from reports.manual_journals import manual_journal_trace
from reports.subledger import lot_state_frame
from rules.fx import rates_in_minor

MAX_EVENTS_INLINE = 20
# The default policy's chart: a caller with a policy passes its `policy.accounts`.
DEFAULT_CHART = ChartOfAccounts()


class TraceNotFoundError(ValueError):
    """The id to trace does not exist."""


class TraceKindError(ValueError):
    """An entry of a kind `trace entry` does not know how to trace."""


def _usage_dataset(store: Store, archive_root: Path):
    """The usage partitions the ledger recorded, each checked against its SHA-256; files
    in the archive that no batch recorded are not part of it. Each file's business date is
    its record's, not read from its path: on object storage the file read is a local copy
    named by its SHA-256, with no `business_date=` directory above it."""
    with store.engine.connect() as connection:
        partitions = [partition for partition in recorded_partitions(connection)
                      if partition.document == "usage"]
    if not partitions:
        return None
    paths = [str(verified_path(archive_root, partition)) for partition in partitions]
    schema = pq.read_schema(paths[0])
    if "business_date" not in schema.names:
        schema = schema.append(pa.field("business_date", pa.string()))
    return ds.FileSystemDataset.from_paths(
        paths, schema=schema, format=ds.ParquetFileFormat(), filesystem=LocalFileSystem(),
        partitions=[ds.field("business_date") == pa.scalar(partition.business_date.isoformat())
                    for partition in partitions])


def _archive_location(store: Store, archive_root: Path, document: str,
                      business_date: date) -> str:
    """Where the day's partition is, once checked: its file, or on object storage its URL
    (the file read there is a local copy of this process, gone when it exits)."""
    path = archived_path_in(store, archive_root, document, business_date)
    url = object_storage_url(archive_root)
    if url is None or path is None:
        return str(path)
    with store.engine.connect() as connection:
        return f"{url}/{recorded_partition(connection, document, business_date).relative_path}"


def _entry(store: Store, entry_id: str) -> tuple[dict, list[dict]]:
    entry = store.read_frame("SELECT e.*, s.sequence AS seal_sequence, s.chain_hash FROM "
                             "journal_entries e LEFT JOIN journal_seals s ON s.entry_id = e.entry_id "
                             "WHERE e.entry_id = :entry_id", entry_id=entry_id)
    if entry.empty:
        raise TraceNotFoundError(f"no journal entry {entry_id!r}")
    lines = store.read_frame("SELECT line_number, account, currency, amount_minor, meter, "
                             "purchase_id FROM journal_lines WHERE entry_id = :entry_id "
                             "ORDER BY line_number", entry_id=entry_id)
    line_rows = [{"line": int(row.line_number), "account": row.account, "currency": row.currency,
                  "amount": format_minor(int(row.amount_minor), row.currency),
                  "meter": row.meter or "", "purchase_id": row.purchase_id or ""}
                 for row in lines.itertuples(index=False)]
    facts = {key: ("" if value is None or (isinstance(value, float) and np.isnan(value))
                   else str(value)) for key, value in entry.iloc[0].to_dict().items()}
    return facts, line_rows


def _slices(store: Store, business_date, customer_id: str) -> pd.DataFrame:
    return store.read_frame("SELECT purchase_id, meter, currency, credits_micro, value_minor, "
                            "rate_card_version FROM burn_slices WHERE business_date = :day AND "
                            "customer_id = :customer ORDER BY purchase_id, meter",
                            day=business_date, customer=customer_id)


def _rate_card_text(version) -> str:
    """The rate card that priced a slice's usage, or that the usage carried its credits."""
    return "(none: the usage carried credits)" if version is None or pd.isna(version) else \
        str(version)


def _slice_rows(slices: pd.DataFrame) -> list[dict]:
    return [{"purchase_id": row.purchase_id, "meter": row.meter, "currency": row.currency,
             "credits": format_micro_credits(int(row.credits_micro)),
             "value": format_minor(int(row.value_minor), row.currency),
             "rate_card_version": _rate_card_text(row.rate_card_version)}
            for row in slices.itertuples(index=False)]


def _coverage(store: Store, business_date: date, customer: str, meter: str,
              meter_slices: pd.DataFrame, meter_credits: int) -> dict:
    """Whether the event's meter that day burned credits of a lot or found none: the
    uncovered credits are read from their own record, not inferred from missing slices."""
    uncovered = store.read_frame("SELECT credits_micro, treatment FROM uncovered_usage WHERE "
                                 "business_date = :day AND customer_id = :customer AND meter = "
                                 ":meter", day=business_date, customer=customer, meter=meter)
    uncovered_credits = int(uncovered["credits_micro"].sum())
    covered_credits = int(meter_slices["credits_micro"].sum())
    if not uncovered_credits:
        status = "covered: burned credits of the lots below"
    elif not covered_credits:
        status = ("uncovered: the customer had no active credits for this meter's usage that "
                  f"day ({', '.join(sorted(set(uncovered['treatment'])))}); not revenue")
    else:
        status = ("partly uncovered: the lots ran out during the day "
                  f"({', '.join(sorted(set(uncovered['treatment'])))})")
    return {"status": status,
            "meter_credits_that_day": format_micro_credits(meter_credits),
            "credits_covered_by_lots": format_micro_credits(covered_credits),
            "credits_uncovered": format_micro_credits(uncovered_credits)}


def trace_usage(store: Store, archive_root: Path, event_id: str) -> dict:
    dataset = _usage_dataset(store, archive_root)
    found = dataset.to_table(filter=ds.field("event_id") == event_id).to_pandas() if dataset else \
        pd.DataFrame()
    if found.empty:
        raise TraceNotFoundError(f"usage event {event_id!r} is not in the archive (never accepted)")
    event = found.iloc[0]
    business_date = date.fromisoformat(str(event["business_date"])[:10])
    customer = event["customer_id"]
    batch_id = batch_id_for(business_date)
    source = store.read_frame("SELECT file_name, sha256 FROM batch_files WHERE batch_id = :batch "
                              "AND document = 'usage'", batch=batch_id).iloc[0]
    bucket = store.read_frame("SELECT meter, event_count, credits_micro FROM usage_daily WHERE "
                              "business_date = :day AND customer_id = :customer ORDER BY meter",
                              day=business_date, customer=customer)
    slices = _slices(store, business_date, customer)
    meter_slices = slices[slices["meter"] == event["meter"]]
    meter_credits = int(bucket.loc[bucket["meter"] == event["meter"], "credits_micro"].sum())
    shares = []
    for currency, value in meter_slices.groupby("currency")["value_minor"].sum().items():
        exact = Fraction(int(value) * int(event["credits_micro"]), meter_credits)
        shares.append({"currency": currency, "meter_value": format_minor(int(value), currency),
                       "event_share": format_minor(divide_round_half_even(
                           exact.numerator, exact.denominator), currency),
                       "fraction_of_meter_credits": f"{int(event['credits_micro'])}/{meter_credits}"})
    coverage = _coverage(store, business_date, customer, event["meter"], meter_slices,
                         meter_credits)
    entry_id = f"usage/{customer}/{business_date.isoformat()}"
    try:
        entry, lines = _entry(store, entry_id)
    except TraceNotFoundError:  # only promotional credits burned, or all usage uncovered
        entry, lines = {"entry_id": "(none: no deferred value was recognised)"}, []
    return {
        "event": {"event_id": event_id, "customer_id": customer, "meter": event["meter"],
                  "occurred_at": str(event["occurred_at"]),
                  "credits": format_micro_credits(int(event["credits_micro"])),
                  "source_file": event["source_file"], "source_row": int(event["source_row"]),
                  "input_sha256": source["sha256"], "batch_id": batch_id,
                  "archive": _archive_location(store, archive_root, "usage", business_date)},
        "customer_day_bucket": [{"meter": row.meter, "events": int(row.event_count),
                                 "credits": format_micro_credits(int(row.credits_micro))}
                                for row in bucket.itertuples(index=False)],
        "burn_slices": _slice_rows(slices),
        "coverage": coverage,
        "entry": entry, "entry_lines": lines, "event_share": shares,
    }


_SUM_OF = {
    "usage": "SELECT COALESCE(SUM(credits_micro), 0) AS credits, COALESCE(SUM(value_minor), 0) "
             "AS value FROM (SELECT credits_micro, value_minor FROM burn_slices WHERE purchase_id "
             "= :id UNION ALL SELECT credits_micro, value_minor FROM overage_settlements WHERE "
             "purchase_id = :id) used",
    "refunds": "SELECT COALESCE(SUM(credits_micro), 0) AS credits, COALESCE(SUM(value_minor), 0) "
               "AS value FROM refunds WHERE purchase_id = :id",
    "accrued": "SELECT 0 AS credits, COALESCE(SUM(change_minor), 0) AS value FROM "
               "breakage_accruals WHERE purchase_id = :id",
    "voided": "SELECT COALESCE(SUM(credits_voided_micro), 0) AS credits, 0 AS value FROM "
              "lot_adjustments WHERE purchase_id = :id",
}


def _recorded_movements(store: Store, purchase_id: str) -> dict[str, tuple[int, int]]:
    """(credits, value) of each kind of movement of a lot, each read from its own record:
    burn slices (and overage settlements), refunds, breakage accruals, adjustments, and
    the expiry split by where its value went."""
    sums = {name: store.read_frame(sql, id=purchase_id).iloc[0] for name, sql in _SUM_OF.items()}
    movements = {name: (int(row["credits"]), int(row["value"])) for name, row in sums.items()}
    expiry = store.read_frame("SELECT credits_micro, value_minor, destination FROM lot_expiries "
                              "WHERE purchase_id = :id", id=purchase_id)
    for destination in ExpiryDestination:
        expired = expiry[expiry["destination"] == destination]
        movements[f"expiry to {destination}"] = (int(expired["credits_micro"].sum()),
                                                 int(expired["value_minor"].sum()))
    return movements


def _manual_changes(store: Store, purchase_id: str) -> pd.DataFrame:
    """The posted manual journals' changes to the lot's deferred value (a credit adds), read
    from their own lines (manual_journal_lines), not from the journal: one row per line,
    with its journal's ref and date, as the nights value the lot from (rules/lot_state.py)."""
    return store.read_frame(
        "SELECT ml.ref, mj.business_date, ml.line_number, ml.deferred_change_minor FROM "
        "manual_journal_lines ml JOIN manual_journals mj ON mj.ref = ml.ref WHERE "
        "mj.entry_id IS NOT NULL AND ml.purchase_id = :id AND ml.deferred_change_minor <> 0 "
        "ORDER BY mj.business_date, ml.ref, ml.line_number", id=purchase_id)


def _journal_movements(store: Store, purchase_id: str, deferred_account: str) -> dict[str, int]:
    """The lot's deferred revenue lines per entry kind, as the liability moved (a purchase
    positive, every release negative)."""
    lines = store.read_frame("SELECT e.kind, SUM(l.amount_minor) AS amount FROM journal_lines l "
                             "JOIN journal_entries e ON e.entry_id = l.entry_id WHERE "
                             "l.purchase_id = :id AND l.account = :account GROUP BY e.kind",
                             id=purchase_id, account=deferred_account)
    return {row.kind: -int(row.amount) for row in lines.itertuples(index=False)}


def _purchase_proof(store: Store, facts: pd.Series, deferred_account: str) -> dict:
    """The lot ties out three ways, each side from a different source: what the lot was
    bought for plus the posted manual journals' changes to it (their own lines), against
    the movements recorded (slices, refunds, accruals, expiry) and
    what the lot's running balance says is left; the same against the journal's lines
    of the lot; and credits granted against credits used, refunded, expired, voided and
    left. Nothing is a plug: any disagreement is shown and the proof fails."""
    purchase_id, currency = facts["purchase_id"], facts["currency"]
    amount, credits = int(facts["amount_minor"]), int(facts["credits_micro"])
    moved = _recorded_movements(store, purchase_id)
    balance = store.read_frame("SELECT * FROM lot_balances WHERE purchase_id = :id",
                               id=purchase_id)
    if balance.empty:
        raise TraceNotFoundError(f"purchase {purchase_id!r} has no running balance (lot_balances)")
    state = balance.iloc[0]
    manual = int(_manual_changes(store, purchase_id)["deferred_change_minor"].sum())
    # What the lot still holds, as the nights see it: its amount less what left it, plus
    # the manual journals' changes (rules/lot_state.py, `deferred_value_minor`).
    value_left = int(amount - state["usage_value_minor"] - state["refunded_value_minor"]
                     - state["breakage_minor"] - state["escheat_minor"]) + manual
    credits_left = int(credits - state["credits_used_micro"] - state["credits_refunded_micro"]
                       - state["credits_expired_micro"] - state["credits_voided_micro"])
    journal = _journal_movements(store, purchase_id, deferred_account)
    journal_left = sum(journal.values())
    usage, refunds = moved["usage"][1], moved["refunds"][1]
    breakage = moved["accrued"][1] + moved["expiry to breakage"][1]
    escheat = moved["expiry to escheat"][1]
    recorded = usage + refunds + breakage + escheat + value_left

    def money(value: int) -> str:
        return format_minor(value, currency)

    credits_out = sum(credits_moved for credits_moved, _ in moved.values()) + credits_left
    journal_released = {"usage": usage, "refund": refunds, "breakage": breakage,
                        "escheat": escheat}
    # A lot a manual journal changed carries its amount plus those changes: the changes
    # are their own side, from the journals' lines, checked against the journal's manual
    # lines on the lot below; never a figure made to close the difference.
    carried = amount + manual
    carried_text = money(amount) if not manual else (
        f"{money(amount)} amount {'+' if manual > 0 else '-'} {money(abs(manual))} manual "
        f"journals = {money(carried)}")
    checks = {
        "recorded movements + lot balance = amount": (
            f"{money(usage)} usage + {money(refunds)} refunds + {money(breakage)} breakage + "
            f"{money(escheat)} escheat + {money(value_left)} left = {money(recorded)} "
            f"against {carried_text}", recorded == carried),
        "journal: deferred left for the lot = lot balance": (
            f"{money(journal_left)} against {money(value_left)}", journal_left == value_left),
        "journal: purchase line = amount": (
            f"{money(journal.get('purchase', 0))} against {money(amount)}",
            journal.get("purchase", 0) == amount),
        "journal: manual lines = manual journals' changes to the lot": (
            f"{money(journal.get(EntryKind.MANUAL, 0))} against {money(manual)}",
            journal.get(EntryKind.MANUAL, 0) == manual),
        **{f"journal: {kind} lines = recorded {kind}": (
            f"{money(-journal.get(kind, 0))} against {money(value)}",
            -journal.get(kind, 0) == value) for kind, value in journal_released.items()},
        "credits used + refunded + expired + voided + left = granted": (
            f"{format_micro_credits(credits_out)} against {format_micro_credits(credits)}",
            credits_out == credits),
    }
    return {"amount": money(amount), "usage_revenue": money(usage), "refunded": money(refunds),
            "breakage": money(breakage), "escheat": money(escheat),
            "manual_journals": money(manual), "value_remaining": money(value_left),
            "credits_remaining": format_micro_credits(credits_left),
            "checks": [{"check": name, "figures": figures, "holds": holds}
                       for name, (figures, holds) in checks.items()],
            "proof": checks["recorded movements + lot balance = amount"][0],
            "holds": all(holds for _, holds in checks.values()) and value_left >= 0}


def trace_purchase(store: Store, purchase_id: str,
                   accounts: ChartOfAccounts = DEFAULT_CHART) -> dict:
    lot = store.read_frame("SELECT * FROM lots WHERE purchase_id = :id", id=purchase_id)
    if lot.empty:
        raise TraceNotFoundError(f"no purchase {purchase_id!r}")
    facts = lot.iloc[0]
    currency = facts["currency"]
    slices = store.read_frame("SELECT business_date, meter, credits_micro, value_minor, "
                              "rate_card_version FROM burn_slices WHERE purchase_id = :id "
                              "ORDER BY business_date, meter", id=purchase_id)
    expiry = store.read_frame("SELECT business_date, credits_micro, value_minor, destination "
                              "FROM lot_expiries WHERE purchase_id = :id", id=purchase_id)
    refunds = store.read_frame("SELECT refund_id, business_date, credits_micro, value_minor, "
                               "tax_minor FROM refunds WHERE purchase_id = :id ORDER BY "
                               "business_date, refund_id", id=purchase_id)
    purchase_entry = []
    if int(facts["amount_minor"]) or int(facts["tax_minor"]):
        purchase_entry = _entry(store, f"purchase/{purchase_id}")[1]
    ties_out = _purchase_proof(store, facts, accounts.deferred_revenue)
    manual = _manual_changes(store, purchase_id)
    return {
        "lot": {key: _instant_text(key, value) for key, value in facts.to_dict().items()
                if key not in ("payload_hash",)},
        "purchase_entry_lines": purchase_entry,
        "burn_slices_by_day": [{"business_date": str(row.business_date), "meter": row.meter,
                                "credits": format_micro_credits(int(row.credits_micro)),
                                "value": format_minor(int(row.value_minor), currency),
                                "rate_card_version": _rate_card_text(row.rate_card_version)}
                               for row in slices.itertuples(index=False)],
        "refunds": [{"refund_id": row.refund_id, "business_date": str(row.business_date),
                     "credits": format_micro_credits(int(row.credits_micro)),
                     "value": format_minor(int(row.value_minor), currency),
                     "tax": format_minor(int(row.tax_minor), currency)}
                    for row in refunds.itertuples(index=False)],
        "expiry": [{"business_date": str(row.business_date),
                    "credits": format_micro_credits(int(row.credits_micro)),
                    row.destination: format_minor(int(row.value_minor), currency)}
                   for row in expiry.itertuples(index=False)],
        "manual_journals": [{"ref": row.ref, "business_date": str(row.business_date)[:10],
                             "line": int(row.line_number),
                             "deferred_change": format_minor(int(row.deferred_change_minor),
                                                             currency)}
                            for row in manual.itertuples(index=False)],
        "proof_checks": ties_out.pop("checks"),
        "ties_out": ties_out,
    }


def proof_failure(life: dict) -> str | None:
    """One line naming each check of a `trace_purchase` proof that fails, with its two
    sides' figures (which source says what), or None when the lot ties out."""
    if life["ties_out"]["holds"]:
        return None
    failed = [f"{check['check']}: {check['figures']}" for check in life["proof_checks"]
              if not check["holds"]]
    if not failed:  # every source agrees, on a lot that has given out more than it held
        failed = [f"value remaining {life['ties_out']['value_remaining']} is below zero"]
    return (f"purchase {life['lot']['purchase_id']} does not tie out: " + "; ".join(failed))


_INSTANT_FIELDS = ("purchased_at", "expires_at", "refunded_at")


def _instant_text(key: str, value) -> str:
    """A lot's fact as text; its instants (stored in UTC) in ISO 8601 with the offset."""
    if key in _INSTANT_FIELDS:
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return ""
        return pd.Timestamp(value).tz_localize("UTC").isoformat()
    return str(value)


def _lot_of(entry_id: str, lines: list[dict]) -> str:
    """The purchase id an entry's lines carry (a purchase, breakage or escheat entry)."""
    purchase_ids = sorted({line["purchase_id"] for line in lines if line["purchase_id"]})
    if len(purchase_ids) != 1:
        raise TraceNotFoundError(f"entry {entry_id!r} names no single purchase on its lines "
                                 f"({', '.join(purchase_ids) or 'none'})")
    return purchase_ids[0]


def _one_row(store: Store, what: str, sql: str, **parameters) -> dict:
    """The one row an entry came from, or the one line saying it is not there."""
    found = store.read_frame(sql, **parameters)
    if found.empty:
        raise TraceNotFoundError(f"{what} has no row")
    return found.iloc[0].to_dict()


def _refund_source(store: Store, facts: dict) -> dict:
    """The refund row a refund entry posts (its source is the refund id)."""
    row = _one_row(store, f"refund {facts['source_ref']!r} of entry {facts['entry_id']!r}",
                   "SELECT refund_id, purchase_id, customer_id, refunded_at, business_date, "
                   "credits_micro, value_minor, tax_minor, currency FROM refunds "
                   "WHERE refund_id = :id", id=facts["source_ref"])
    currency = row["currency"]
    return {"refund_id": row["refund_id"], "purchase_id": row["purchase_id"],
            "customer_id": row["customer_id"],
            "refunded_at": _instant_text("refunded_at", row["refunded_at"]),
            "business_date": str(row["business_date"])[:10],
            "credits": format_micro_credits(int(row["credits_micro"])),
            "value": format_minor(int(row["value_minor"]), currency),
            "tax": format_minor(int(row["tax_minor"]), currency), "currency": currency}


def _cost_source(store: Store, facts: dict) -> dict:
    """The cost line a cost entry posts (its entry id is `cost/` and the cost id)."""
    cost_id = facts["entry_id"].removeprefix(f"{EntryKind.COST}/")
    row = _one_row(store, f"cost {cost_id!r} of entry {facts['entry_id']!r}",
                   "SELECT cost_id, cost_date, meter, cost_type, vendor, memo, amount_minor, "
                   "currency FROM costs WHERE cost_id = :id", id=cost_id)
    return {"cost_id": row["cost_id"], "cost_date": str(row["cost_date"])[:10],
            "meter": row["meter"], "cost_type": row["cost_type"], "vendor": row["vendor"],
            "memo": row["memo"], "amount": format_minor(int(row["amount_minor"]), row["currency"]),
            "currency": row["currency"]}


def _expiry_source(store: Store, facts: dict, lines: list[dict]) -> dict:
    """The lot expiry an escheat entry posts: the lot, where it was bought, when it
    expired, and the credits and value that left it."""
    purchase_id = _lot_of(facts["entry_id"], lines)
    row = _one_row(store, f"the expiry of lot {purchase_id!r} (entry {facts['entry_id']!r})",
                   "SELECT x.purchase_id, o.customer_id, o.country, o.expires_at, "
                   "x.business_date, x.credits_micro, x.value_minor, x.destination, o.currency "
                   "FROM lot_expiries x JOIN lots o ON o.purchase_id = x.purchase_id "
                   "WHERE x.purchase_id = :id", id=purchase_id)
    return {"purchase_id": purchase_id, "customer_id": row["customer_id"],
            "country": row["country"] or "",
            "expires_at": _instant_text("expires_at", row["expires_at"]),
            "expired_on": str(row["business_date"])[:10],
            "credits": format_micro_credits(int(row["credits_micro"])),
            "value": format_minor(int(row["value_minor"]), row["currency"]),
            "destination": row["destination"], "currency": row["currency"]}


def _overage_source(store: Store, facts: dict) -> list[dict]:
    """The overage charges an overage entry bills: the customer's uncovered credits that
    day, per meter, at the list price."""
    charges = store.read_frame("SELECT meter, credits_micro, price_per_credit, amount_minor, "
                               "currency FROM overage_charges WHERE customer_id = :customer AND "
                               "business_date = :day ORDER BY meter",
                               customer=facts["customer_id"],
                               day=date.fromisoformat(facts["business_date"][:10]))
    if charges.empty:
        raise TraceNotFoundError(f"overage entry {facts['entry_id']!r} has no overage_charges rows")
    return [{"meter": row.meter, "credits": format_micro_credits(int(row.credits_micro)),
             "price_per_credit": row.price_per_credit,
             "amount": format_minor(int(row.amount_minor), row.currency),
             "currency": row.currency} for row in charges.itertuples(index=False)]


def _remeasurement_source(store: Store, facts: dict, accounts: ChartOfAccounts,
                          functional_currency: str) -> tuple[dict, list[dict]]:
    """An FX remeasurement: the rate of its day, and each foreign monetary balance it
    remeasured (cash clearing, sales tax payable): the balance in the currency, the
    functional amount carried before, and after; each row proves that after is the
    balance at the rate (half even), from the rate row, not from the entry."""
    business_date = date.fromisoformat(facts["business_date"][:10])
    own = store.read_frame("SELECT account, currency, functional_minor FROM journal_lines WHERE "
                           "entry_id = :entry_id AND account <> :gain ORDER BY line_number",
                           entry_id=facts["entry_id"], gain=accounts.fx_gain_loss)
    if own.empty:
        raise TraceNotFoundError(f"FX entry {facts['entry_id']!r} has no line of a balance "
                                 "it remeasured")
    currency = own.iloc[0]["currency"]
    rate = _one_row(store, f"the {currency} rate of {business_date} (entry {facts['entry_id']!r})",
                    "SELECT rate_id, rate_date, rate_to_functional FROM fx_rates WHERE "
                    "currency = :currency AND rate_date = :day", currency=currency,
                    day=business_date)
    [minor_rate] = rates_in_minor([rate["rate_to_functional"]], [currency], functional_currency)

    def functional(amount_minor: int) -> str:
        return format_minor(amount_minor, functional_currency)

    balances = []
    for line in own.itertuples(index=False):  # one line per account remeasured
        carried = _one_row(store, line.account, """
            SELECT COALESCE(SUM(l.amount_minor), 0) AS amount,
                   COALESCE(SUM(l.functional_minor), 0) AS functional
            FROM journal_lines l JOIN journal_entries e ON e.entry_id = l.entry_id
            WHERE l.account = :account AND l.currency = :currency AND e.business_date <= :day
              AND e.entry_id <> :entry_id""", account=line.account, currency=currency,
                           day=business_date, entry_id=facts["entry_id"])
        amount, before = int(carried["amount"]), int(carried["functional"])
        at_rate = divide_round_half_even(amount * minor_rate.numerator, minor_rate.denominator)
        balances.append({"account": line.account, "balance": format_minor(amount, currency),
                         "carried_functional": functional(before),
                         "remeasured_functional": functional(before + int(line.functional_minor)),
                         "balance_at_rate": functional(at_rate),
                         "holds": before + int(line.functional_minor) == at_rate})
    change = int(own["functional_minor"].sum())
    return ({"currency": currency, "rate_id": rate["rate_id"],
             "rate_to_functional": rate["rate_to_functional"],
             "functional_currency": functional_currency,
             "unrealised_gain_or_loss": functional(change)}, balances)


def _usage_sources(store: Store, archive_root: Path, facts: dict, events_csv: Path | None,
                   document: dict) -> None:
    """A usage entry's burn slices (the customer's, that day) and the events behind them."""
    business_date = date.fromisoformat(facts["business_date"][:10])
    document["lots_burned"] = _slice_rows(_slices(store, business_date, facts["customer_id"]))
    path = archived_path_in(store, archive_root, "usage", business_date)
    events = ds.dataset(path, format="parquet").to_table(
        filter=ds.field("customer_id") == facts["customer_id"],
        columns=["event_id", "occurred_at", "meter", "credits_micro", "source_file",
                 "source_row"]).to_pandas() if path is not None else pd.DataFrame()
    document["usage_event_count"] = {"events": len(events)}
    rows = [{"event_id": row.event_id, "occurred_at": str(row.occurred_at), "meter": row.meter,
             "credits": format_micro_credits(int(row.credits_micro)),
             "source": f"{row.source_file} row {row.source_row}"}
            for row in events.itertuples(index=False)]
    if events_csv is not None:
        with Path(events_csv).open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["event_id"])
            writer.writeheader()
            writer.writerows(rows)
        document["usage_event_count"]["written_to"] = str(events_csv)
    else:
        document["usage_events"] = rows[:MAX_EVENTS_INLINE]
        if len(rows) > MAX_EVENTS_INLINE:
            document["usage_event_count"]["shown"] = (
                f"first {MAX_EVENTS_INLINE}; stream all with --events-csv FILE")


def trace_entry(store: Store, archive_root: Path, entry_id: str,
                events_csv: Path | None = None, accounts: ChartOfAccounts = DEFAULT_CHART,
                functional_currency: str = "USD") -> dict:
    """An entry, its lines, and what its kind came from; `accounts` and
    `functional_currency` are the policy's (the defaults are the default policy's)."""
    facts, lines = _entry(store, entry_id)
    document = {"entry": facts, "lines": lines}
    kind = facts["kind"]
    if kind == EntryKind.PURCHASE:
        document["source"] = trace_purchase(store, _lot_of(entry_id, lines), accounts)["lot"]
    elif kind == EntryKind.USAGE:
        _usage_sources(store, archive_root, facts, events_csv, document)
    elif kind == EntryKind.BREAKAGE:
        document["lot_life"] = trace_purchase(store, _lot_of(entry_id, lines), accounts)
    elif kind == EntryKind.REFUND:
        document["refund"] = _refund_source(store, facts)
    elif kind == EntryKind.COST:
        document["cost"] = _cost_source(store, facts)
    elif kind == EntryKind.ESCHEAT:
        document["expiry"] = _expiry_source(store, facts, lines)
    elif kind == EntryKind.OVERAGE:
        document["overage_charges"] = _overage_source(store, facts)
    elif kind == EntryKind.FX:
        document["remeasurement"], document["remeasured_balances"] = _remeasurement_source(
            store, facts, accounts, functional_currency)
    elif kind == EntryKind.MANUAL:  # a person's journal: who, when, and the file's rows
        document["manual_journal"] = manual_journal_trace(store, facts["source_ref"],
                                                          functional_currency)
    else:
        raise TraceKindError(f"trace entry cannot trace entry {entry_id!r}: its kind {kind!r} "
                             "is not one it knows")
    return document


def trace_customer(store: Store, customer_id: str, period: Period) -> dict:
    first, following = Period(period).first_day, Period(period).following_first_day

    def position(as_of: date) -> list[dict]:
        lots = lot_state_frame(store, customer_id, as_of)
        lots["credits"] = lots["credits_remaining_micro"]
        lots["value"] = lots["value_remaining_minor"]
        grouped = lots.groupby("currency")[["credits", "value"]].sum()
        return [{"currency": currency, "credits": format_micro_credits(int(row["credits"])),
                 "value": format_minor(int(row["value"]), currency)}
                for currency, row in grouped.iterrows()]

    entries = store.read_frame("""
        SELECT e.entry_id, e.kind, e.business_date, l.currency, SUM(CASE WHEN l.amount_minor > 0
               THEN l.amount_minor ELSE 0 END) AS amount
        FROM journal_entries e JOIN journal_lines l ON l.entry_id = e.entry_id
        WHERE e.customer_id = :customer AND e.period = :period
        GROUP BY e.entry_id, e.kind, e.business_date, l.currency ORDER BY e.business_date, e.entry_id
    """, customer=customer_id, period=period)
    usage = store.read_frame("""
        SELECT business_date, meter, event_count, credits_micro FROM usage_daily
        WHERE customer_id = :customer AND business_date >= :first AND business_date < :following
        ORDER BY business_date, meter
    """, customer=customer_id, first=first, following=following)
    uncovered = store.read_frame("""
        SELECT business_date, meter, credits_micro FROM uncovered_usage WHERE customer_id = :customer
        AND business_date >= :first AND business_date < :following ORDER BY business_date, meter
    """, customer=customer_id, first=first, following=following)
    return {
        "opening": position(first - timedelta(days=1)),
        "closing": position(following - timedelta(days=1)),
        "entries": [{"entry_id": row.entry_id, "kind": row.kind, "business_date": str(row.business_date),
                     "currency": row.currency, "amount": format_minor(int(row.amount), row.currency)}
                    for row in entries.itertuples(index=False)],
        "usage": [{"business_date": str(row.business_date), "meter": row.meter,
                   "events": int(row.event_count), "credits": format_micro_credits(int(row.credits_micro))}
                  for row in usage.itertuples(index=False)],
        "uncovered_usage": [{"business_date": str(row.business_date), "meter": row.meter,
                             "credits": format_micro_credits(int(row.credits_micro))}
                            for row in uncovered.itertuples(index=False)],
    }


_REVENUE_ORDER = ("usage", "breakage", "overage")


def _revenue_kinds(accounts: ChartOfAccounts) -> dict[str, str]:
    """Each revenue account of the chart and the kind of revenue it holds."""
    return {accounts.usage_revenue: "usage", accounts.breakage_revenue: "breakage",
            accounts.overage_revenue: "overage"}


def _revenue_lines(store: Store, period: Period, accounts: ChartOfAccounts) -> pd.DataFrame:
    """Every line of the period on a revenue account (either side: a breakage estimate's
    catch-up can take revenue back), with its kind of revenue, in entry and line order."""
    kinds = _revenue_kinds(accounts)
    lines = store.read_frame("""
        SELECT l.entry_id, l.line_number, l.account FROM journal_lines l JOIN journal_entries e
        ON e.entry_id = l.entry_id WHERE e.period = :period
        AND l.account IN (:usage, :breakage, :overage) AND l.amount_minor <> 0
        ORDER BY l.entry_id, l.line_number
    """, period=period, usage=accounts.usage_revenue, breakage=accounts.breakage_revenue,
        overage=accounts.overage_revenue)
    return lines.assign(revenue=lines["account"].map(kinds))


def _pick_revenue_lines(lines: pd.DataFrame, count: int, generator: np.random.Generator
                        ) -> list[int]:
    """Positions of the sampled revenue lines: one of each kind of revenue present first
    (kinds in the chart's order), so a period's breakage or overage is never left out
    because usage lines outnumber it; then the rest of `count` drawn from all the others.
    A sample therefore has at least one line per kind, even when `count` is smaller."""
    kinds = lines["revenue"].to_numpy()
    one_of_each = [int(generator.choice(np.flatnonzero(kinds == kind)))
                   for kind in _REVENUE_ORDER if (kinds == kind).any()]
    others = np.setdiff1d(np.arange(len(lines)), one_of_each)
    more = min(max(count - len(one_of_each), 0), len(others))
    return sorted([*one_of_each, *generator.choice(others, size=more, replace=False).tolist()])



def trace_sample(store: Store, archive_root: Path, period: Period, count: int, seed: int,
                 accounts: ChartOfAccounts = DEFAULT_CHART) -> dict:
    """Reproducibly pick usage events and revenue lines of a period and trace each: `count`
    events, and `count` revenue lines covering every kind of revenue the period has."""
    if not 1 <= count <= 1000:
        raise ValueError("--n must be between 1 and 1000")
    days = store.read_frame("SELECT business_date FROM batches WHERE posting_period = :period "
                            "ORDER BY business_date", period=period)["business_date"]
    dataset = _usage_dataset(store, archive_root)
    event_ids: list[str] = []
    if dataset is not None and len(days):
        wanted = [str(day)[:10] for day in days]
        table = dataset.to_table(columns=["event_id", "business_date"])
        frame = table.to_pandas()
        frame = frame[frame["business_date"].astype(str).str[:10].isin(wanted)]
        event_ids = sorted(frame["event_id"])
    lines = _revenue_lines(store, period, accounts)
    generator = np.random.default_rng(seed)
    chosen_events = sorted(generator.choice(event_ids, size=min(count, len(event_ids)),
                                            replace=False).tolist()) if event_ids else []
    picks = _pick_revenue_lines(lines, count, generator)
    return {
        "sample": {"period": period, "seed": seed, "events_drawn_from": len(event_ids),
                   "revenue_lines_drawn_from": len(lines),
                   "revenue_lines_by_kind": "; ".join(
                       f"{kind} {number}" for kind, number
                       in lines["revenue"].value_counts().reindex(_REVENUE_ORDER).dropna()
                       .astype(int).items())},
        "usage_events": [trace_usage(store, archive_root, event_id) for event_id in chosen_events],
        "revenue_lines": [{"entry_id": lines.iloc[index]["entry_id"],
                           "line": int(lines.iloc[index]["line_number"]),
                           "revenue": lines.iloc[index]["revenue"],
                           **trace_entry(store, archive_root, lines.iloc[index]["entry_id"],
                                        accounts=accounts)}
                          for index in picks],
    }
