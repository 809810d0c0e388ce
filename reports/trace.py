"""Audit trace: from any usage event to the revenue it produced, and from any entry back.

Every answer is a plain document (sections of rows) that renders as tables or JSON. A
usage event is found in the archive (file, batch, SHA-256 of the input), then its
customer-day bucket, the burn slices of that bucket, the journal entry and lines it
contributed to, and its pro-rata share of the value (the ledger posts per customer-day;
an event's share is its credits' fraction of its meter's credits that day, shown to the
minor unit, half even). Entries lead back to their purchase, events and lots; purchases
show their whole life and the proof that they tie out.
"""

from __future__ import annotations

import csv
from datetime import date, timedelta
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.dataset as ds

from intake.archive import archived_path_in, verified_path
from ledger.archive_index import recorded_partitions
from ledger.domain import batch_id_for
from ledger.money import divide_round_half_even, format_micro_credits, format_minor
from ledger.periods import Period, parse_period
from ledger.store import Store
from reports.subledger import lot_state_frame

MAX_EVENTS_INLINE = 20


class TraceNotFoundError(ValueError):
    """The id to trace does not exist."""


def _usage_dataset(store: Store, archive_root: Path):
    """The usage partitions the ledger recorded, each checked against its SHA-256; files
    in the archive that no batch recorded are not part of it."""
    with store.engine.connect() as connection:
        partitions = [partition for partition in recorded_partitions(connection)
                      if partition.document == "usage"]
    if not partitions:
        return None
    paths = [str(verified_path(archive_root, partition)) for partition in partitions]
    return ds.dataset(paths, format="parquet", partitioning="hive",
                      partition_base_dir=str(Path(archive_root) / "usage"))


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
    return store.read_frame("SELECT purchase_id, meter, currency, credits_micro, value_minor FROM "
                            "burn_slices WHERE business_date = :day AND customer_id = :customer "
                            "ORDER BY purchase_id, meter", day=business_date, customer=customer_id)


def _slice_rows(slices: pd.DataFrame) -> list[dict]:
    return [{"purchase_id": row.purchase_id, "meter": row.meter, "currency": row.currency,
             "credits": format_micro_credits(int(row.credits_micro)),
             "value": format_minor(int(row.value_minor), row.currency)}
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
                  "archive": str(archived_path_in(store, archive_root, "usage", business_date))},
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
    for destination in ("breakage", "escheat"):
        expired = expiry[expiry["destination"] == destination]
        movements[f"expiry to {destination}"] = (int(expired["credits_micro"].sum()),
                                                 int(expired["value_minor"].sum()))
    return movements


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
    bought for, against the movements recorded (slices, refunds, accruals, expiry) and
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
    value_left = int(amount - state["usage_value_minor"] - state["refunded_value_minor"]
                     - state["breakage_minor"] - state["escheat_minor"])
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
    checks = {
        "recorded movements + lot balance = amount": (
            f"{money(usage)} usage + {money(refunds)} refunds + {money(breakage)} breakage + "
            f"{money(escheat)} escheat + {money(value_left)} left = {money(recorded)} "
            f"against {money(amount)}", recorded == amount),
        "journal: deferred left for the lot = lot balance": (
            f"{money(journal_left)} against {money(value_left)}", journal_left == value_left),
        "journal: purchase line = amount": (
            f"{money(journal.get('purchase', 0))} against {money(amount)}",
            journal.get("purchase", 0) == amount),
        **{f"journal: {kind} lines = recorded {kind}": (
            f"{money(-journal.get(kind, 0))} against {money(value)}",
            -journal.get(kind, 0) == value) for kind, value in journal_released.items()},
        "credits used + refunded + expired + voided + left = granted": (
            f"{format_micro_credits(credits_out)} against {format_micro_credits(credits)}",
            credits_out == credits),
    }
    return {"amount": money(amount), "usage_revenue": money(usage), "refunded": money(refunds),
            "breakage": money(breakage), "escheat": money(escheat),
            "value_remaining": money(value_left),
            "credits_remaining": format_micro_credits(credits_left),
            "checks": [{"check": name, "figures": figures, "holds": holds}
                       for name, (figures, holds) in checks.items()],
            "proof": checks["recorded movements + lot balance = amount"][0],
            "holds": all(holds for _, holds in checks.values()) and value_left >= 0}


def trace_purchase(store: Store, purchase_id: str,
                   deferred_account: str = "Liabilities:DeferredRevenue:Credits") -> dict:
    lot = store.read_frame("SELECT * FROM lots WHERE purchase_id = :id", id=purchase_id)
    if lot.empty:
        raise TraceNotFoundError(f"no purchase {purchase_id!r}")
    facts = lot.iloc[0]
    currency = facts["currency"]
    slices = store.read_frame("SELECT business_date, meter, credits_micro, value_minor FROM "
                              "burn_slices WHERE purchase_id = :id ORDER BY business_date, meter",
                              id=purchase_id)
    expiry = store.read_frame("SELECT business_date, credits_micro, value_minor, destination "
                              "FROM lot_expiries WHERE purchase_id = :id", id=purchase_id)
    refunds = store.read_frame("SELECT refund_id, business_date, credits_micro, value_minor, "
                               "tax_minor FROM refunds WHERE purchase_id = :id ORDER BY "
                               "business_date, refund_id", id=purchase_id)
    purchase_entry = []
    if int(facts["amount_minor"]) or int(facts["tax_minor"]):
        purchase_entry = _entry(store, f"purchase/{purchase_id}")[1]
    ties_out = _purchase_proof(store, facts, deferred_account)
    return {
        "lot": {key: _instant_text(key, value) for key, value in facts.to_dict().items()
                if key not in ("payload_hash",)},
        "purchase_entry_lines": purchase_entry,
        "burn_slices_by_day": [{"business_date": str(row.business_date), "meter": row.meter,
                                "credits": format_micro_credits(int(row.credits_micro)),
                                "value": format_minor(int(row.value_minor), currency)}
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
        "proof_checks": ties_out.pop("checks"),
        "ties_out": ties_out,
    }


_INSTANT_FIELDS = ("purchased_at", "expires_at")


def _instant_text(key: str, value) -> str:
    """A lot's fact as text; its instants (stored in UTC) in ISO 8601 with the offset."""
    if key in _INSTANT_FIELDS:
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return ""
        return pd.Timestamp(value).tz_localize("UTC").isoformat()
    return str(value)


def trace_entry(store: Store, archive_root: Path, entry_id: str,
                events_csv: Path | None = None) -> dict:
    facts, lines = _entry(store, entry_id)
    document = {"entry": facts, "lines": lines}
    if facts["kind"] == "purchase":
        document["source"] = trace_purchase(store, facts["source_ref"])["lot"]
    elif facts["kind"] == "breakage":
        document["lot_life"] = trace_purchase(store, facts["source_ref"])
    else:
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
    return document


def trace_customer(store: Store, customer_id: str, period: Period) -> dict:
    first, following = parse_period(period)

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


def trace_sample(store: Store, archive_root: Path, period: Period, count: int, seed: int) -> dict:
    """Reproducibly pick usage events and revenue lines of a period and trace each."""
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
    lines = store.read_frame("""
        SELECT l.entry_id, l.line_number FROM journal_lines l JOIN journal_entries e
        ON e.entry_id = l.entry_id WHERE e.period = :period AND e.kind = 'usage'
        AND l.amount_minor < 0 ORDER BY l.entry_id, l.line_number
    """, period=period)
    generator = np.random.default_rng(seed)
    chosen_events = sorted(generator.choice(event_ids, size=min(count, len(event_ids)),
                                            replace=False).tolist()) if event_ids else []
    picks = sorted(generator.choice(len(lines), size=min(count, len(lines)), replace=False).tolist()
                   ) if len(lines) else []
    return {
        "sample": {"period": period, "seed": seed, "events_drawn_from": len(event_ids),
                   "revenue_lines_drawn_from": len(lines)},
        "usage_events": [trace_usage(store, archive_root, event_id) for event_id in chosen_events],
        "revenue_lines": [{"entry_id": lines.iloc[index]["entry_id"],
                           "line": int(lines.iloc[index]["line_number"]),
                           **trace_entry(store, archive_root, lines.iloc[index]["entry_id"])}
                          for index in picks],
    }
