"""The credit subledger seen from outside: lot balances and exceptions to act on."""

from __future__ import annotations

import json
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal

import pandas as pd
from sqlalchemy import inspect

from intake.classification import ID_COLUMN
from intake.sources import USAGE_SOURCE_PRESETS
from ledger.domain import ExpiryDestination
from ledger.money import format_micro_credits, format_minor
from ledger.periods import Period
from ledger.store import Store
from rules.lot_state import MANUAL_CHANGE_COLUMNS

_LOT_STATE_AS_OF = """
    SELECT l.purchase_id, l.customer_id, l.kind, l.product, l.currency, l.purchased_at,
           COALESCE(v.rolled_to, l.expires_at) AS expires_at, l.expires_at AS original_expires_at,
           l.priority, l.country, l.credits_micro, l.amount_minor, l.tax_minor,
           COALESCE(v.credits_voided_micro, 0) AS credits_voided_micro,
           COALESCE(s.credits_used_micro, 0) AS credits_used_micro,
           COALESCE(s.usage_value_minor, 0) AS usage_value_minor,
           COALESCE(r.credits_refunded_micro, 0) AS credits_refunded_micro,
           COALESCE(r.refunded_value_minor, 0) AS refunded_value_minor,
           COALESCE(r.refunded_tax_minor, 0) AS refunded_tax_minor,
           COALESCE(x.credits_micro, 0) AS credits_expired_micro,
           COALESCE(a.accrued_minor, 0)
             + CASE WHEN x.destination = :breakage THEN x.value_minor ELSE 0 END AS breakage_minor,
           CASE WHEN x.destination = :escheat THEN x.value_minor ELSE 0 END AS escheat_minor,
           x.business_date AS expired_on,
           {manual_change}
    FROM lots l
    LEFT JOIN (
        SELECT purchase_id, SUM(credits_micro) AS credits_used_micro,
               SUM(value_minor) AS usage_value_minor
        FROM (SELECT purchase_id, credits_micro, value_minor, business_date FROM burn_slices
              UNION ALL
              SELECT purchase_id, credits_micro, value_minor, business_date
              FROM overage_settlements) used
        WHERE business_date <= :as_of GROUP BY purchase_id
    ) s ON s.purchase_id = l.purchase_id
    LEFT JOIN (
        SELECT purchase_id, SUM(credits_micro) AS credits_refunded_micro,
               SUM(value_minor) AS refunded_value_minor, SUM(tax_minor) AS refunded_tax_minor
        FROM refunds WHERE business_date <= :as_of GROUP BY purchase_id
    ) r ON r.purchase_id = l.purchase_id
    LEFT JOIN (
        SELECT purchase_id, SUM(change_minor) AS accrued_minor
        FROM breakage_accruals WHERE business_date <= :as_of GROUP BY purchase_id
    ) a ON a.purchase_id = l.purchase_id
    LEFT JOIN (
        SELECT purchase_id, MAX(new_expires_at) AS rolled_to,
               SUM(credits_voided_micro) AS credits_voided_micro
        FROM lot_adjustments WHERE business_date <= :as_of GROUP BY purchase_id
    ) v ON v.purchase_id = l.purchase_id
    LEFT JOIN lot_expiries x ON x.purchase_id = l.purchase_id AND x.business_date <= :as_of
    {manual_join}
    WHERE l.business_date <= :as_of {customer_filter}
    ORDER BY l.customer_id, l.purchase_id
"""
# What posted manual journals did to each lot's deferred value (creditbooks/journals.py).
_MANUAL_CHANGES = """
    LEFT JOIN (
        SELECT ml.purchase_id, SUM(ml.deferred_change_minor) AS manual_change_minor,
               MAX(ml.lot_consumed_micro) AS consumed_at_change_micro,
               MAX(ml.lot_consumed_value_minor) AS consumed_value_at_change_minor
        FROM manual_journal_lines ml JOIN manual_journals mj ON mj.ref = ml.ref
        WHERE mj.entry_id IS NOT NULL AND mj.business_date <= :as_of
          AND ml.purchase_id IS NOT NULL
        GROUP BY ml.purchase_id
    ) m ON m.purchase_id = l.purchase_id
"""
_STATE_COLUMNS = ["credits_micro", "amount_minor", "tax_minor", "credits_used_micro",
                  "usage_value_minor", "credits_refunded_micro", "refunded_value_minor",
                  "refunded_tax_minor", "credits_expired_micro", "breakage_minor", "escheat_minor",
                  "credits_voided_micro", *MANUAL_CHANGE_COLUMNS]
# What the lots tie-out control values a changed lot's use from (rules/lot_state.py).
_MANUAL_CHANGE = ", ".join(f"COALESCE(m.{column}, 0) AS {column}"
                           for column in MANUAL_CHANGE_COLUMNS)
_NO_MANUAL_CHANGE = ", ".join(f"0 AS {column}" for column in MANUAL_CHANGE_COLUMNS)


def lot_state_frame(store: Store, customer: str | None = None,
                    as_of: date | None = None) -> pd.DataFrame:
    """Every lot's facts and its state at the end of a business date, in minor units.

    Re-derived from the append-only records (slices, refunds, adjustments, accruals,
    expiries, and posted manual journals' lines on the lot's deferred revenue);
    `expires_at` is the expiry in force (the last rollover's), with
    `credits_remaining_micro` and `value_remaining_minor` (still deferred) computed once
    here for every report.
    """
    # Filters are added only when asked for: PostgreSQL cannot type a bare NULL parameter.
    # A ledger from before manual journals (a v0.1.0 backup that scripts/record_books.py
    # reads to compare books) has no such tables, and no manual change.
    with store.engine.connect() as connection:
        has_manual = inspect(connection).has_table("manual_journal_lines")
    sql = _LOT_STATE_AS_OF.format(
        customer_filter="AND l.customer_id = :customer" if customer else "",
        manual_change=_MANUAL_CHANGE if has_manual else _NO_MANUAL_CHANGE,
        manual_join=_MANUAL_CHANGES if has_manual else "")
    parameters = {"as_of": as_of or date(9999, 12, 31),
                  "breakage": ExpiryDestination.BREAKAGE, "escheat": ExpiryDestination.ESCHEAT}
    if customer:
        parameters["customer"] = customer
    frame = store.read_frame(sql, **parameters).astype({column: "int64"
                                                         for column in _STATE_COLUMNS})
    frame["credits_remaining_micro"] = (
        frame["credits_micro"] - frame["credits_used_micro"] - frame["credits_refunded_micro"]
        - frame["credits_expired_micro"] - frame["credits_voided_micro"])
    # A posted manual journal's line on a lot's deferred revenue (a credit adds) changes
    # what the lot still holds (creditbooks/journals.py).
    frame["value_remaining_minor"] = (
        frame["amount_minor"] - frame["usage_value_minor"] - frame["refunded_value_minor"]
        - frame["breakage_minor"] - frame["escheat_minor"] + frame["manual_change_minor"])
    return frame


def lot_balances(store: Store, customer: str | None = None, as_of: date | None = None) -> list[dict]:
    """Remaining credits and deferred value per lot, as of the end of a business date.

    Each row foots: amount + manual_journals = usage_revenue + refunded + breakage +
    escheat + value_remaining, where manual_journals is what posted manual journals did to
    the lot's deferred value (negative: written down)."""
    frame = lot_state_frame(store, customer, as_of)
    rows = []
    for lot in frame.itertuples(index=False):
        credits_remaining = lot.credits_remaining_micro
        value_remaining = lot.value_remaining_minor
        rows.append({
            "purchase_id": lot.purchase_id, "customer_id": lot.customer_id, "kind": lot.kind,
            "product": lot.product, "currency": lot.currency,
            "expires_at": "" if lot.expires_at is None else str(lot.expires_at),
            "credits_granted": format_micro_credits(int(lot.credits_micro)),
            "credits_used": format_micro_credits(int(lot.credits_used_micro)),
            "credits_refunded": format_micro_credits(int(lot.credits_refunded_micro)),
            "credits_expired": format_micro_credits(int(lot.credits_expired_micro)),
            "credits_remaining": format_micro_credits(int(credits_remaining)),
            "amount": format_minor(int(lot.amount_minor), lot.currency),
            "usage_revenue": format_minor(int(lot.usage_value_minor), lot.currency),
            "refunded": format_minor(int(lot.refunded_value_minor), lot.currency),
            "breakage": format_minor(int(lot.breakage_minor), lot.currency),
            "escheat": format_minor(int(lot.escheat_minor), lot.currency),
            "manual_journals": format_minor(int(lot.manual_change_minor), lot.currency),
            "value_remaining": format_minor(int(value_remaining), lot.currency),
        })
    return rows


_UNCOVERED_REASON = {
    "exception": "usage found no active credits; recorded, not revenue",
    "arrears": "usage found no active credits; billed in arrears at the list price",
    "negative_balance": "usage found no active credits; owed, paid first by the next purchase",
}


def _row_id(document: str, raw_row: str) -> str:
    """The quarantined row's own id, read from the row as it came in (blank if it had none)."""
    try:
        values = json.loads(raw_row)
    except ValueError:
        return ""
    if not isinstance(values, dict):
        return ""
    column = ID_COLUMN.get(document) or next(
        (name for name in values if str(name).endswith("_id")), "")
    # A mapped source's row is its own object (a CloudEvent, a Stripe object): its id.
    for field in (column, *_SOURCE_ID_FIELDS):
        value = values.get(field)
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value):
            return str(value)
    return ""


# Where the usage sources' presets and Stripe's objects keep their own id (a path set in
# the policy instead is not known here).
_SOURCE_ID_FIELDS = tuple(dict.fromkeys(
    ["id", *(path for preset in USAGE_SOURCE_PRESETS.values() for path in preset.fields["id"])]))


def exceptions(store: Store, business_date: date | None = None) -> list[dict]:
    """Quarantined rows (with the row's id and its raw values), conflicts and uncovered
    usage, oldest first."""
    day_filter = "WHERE business_date = :day" if business_date else ""
    parameters = {"day": business_date} if business_date else {}
    quarantined = store.read_frame(f"""
        SELECT business_date, document, file_name, row_number, kind, column_name, reason, raw_row
        FROM quarantine {day_filter} ORDER BY business_date, document, row_number
    """, **parameters)
    uncovered = store.read_frame(f"""
        SELECT business_date, customer_id, meter, credits_micro, event_count, treatment
        FROM uncovered_usage {day_filter} ORDER BY business_date, customer_id, meter
    """, **parameters)
    rows = [{
        "business_date": str(row.business_date),
        "kind": row.kind,
        "source": f"{row.file_name} row {row.row_number}", "id": _row_id(row.document, row.raw_row),
        "column": row.column_name, "customer_id": "", "meter": "", "credits": "",
        "reason": row.reason, "raw_values": row.raw_row,
    } for row in quarantined.itertuples(index=False)]
    rows += [{
        "business_date": str(row.business_date), "kind": "uncovered",
        "source": f"{row.event_count} event(s)", "id": "", "column": "",
        "customer_id": row.customer_id, "meter": row.meter,
        "credits": format_micro_credits(int(row.credits_micro)),
        "reason": _UNCOVERED_REASON[row.treatment], "raw_values": "",
    } for row in uncovered.itertuples(index=False)]
    return sorted(rows, key=_in_order)


def _in_order(row: dict) -> tuple:
    """By day, kind, file and row NUMBER ("row 7" before "row 10")."""
    file_name, separator, number = row["source"].rpartition(" row ")
    if separator and number.isdigit():
        return row["business_date"], row["kind"], file_name, int(number)
    return row["business_date"], row["kind"], row["source"], 0


def period_exceptions(store: Store, period: Period) -> list[dict]:
    """Rows the nights posted into the period set aside (rejected, or a conflict with a
    row already seen): each with its id, file, row, column, reason and raw values."""
    quarantined = store.read_frame("""
        SELECT q.business_date, q.kind, q.document, q.file_name, q.row_number, q.column_name,
               q.reason, q.raw_row
        FROM quarantine q JOIN batches b ON b.batch_id = q.batch_id
        WHERE b.posting_period = :period ORDER BY q.business_date, q.document, q.row_number
    """, period=period)
    return [{"business_date": str(row.business_date), "kind": row.kind,
             "document": row.document, "file": row.file_name, "row": int(row.row_number),
             "id": _row_id(row.document, row.raw_row), "column": row.column_name,
             "reason": row.reason, "raw_values": row.raw_row}
            for row in quarantined.itertuples(index=False)]


UNCOVERED_COLUMNS = ("meter", "customers", "days", "events", "credits", "accepted_credits",
                     "share_of_accepted_credits_percent")


def uncovered_usage_summary(store: Store, period: Period) -> list[dict]:
    """Usage of the period that found no active credits (not revenue), per meter and for
    all meters: customers, days, events and credits, and its share of accepted usage."""
    uncovered = store.read_frame("""
        SELECT x.business_date, x.customer_id, x.meter, x.credits_micro, x.event_count
        FROM uncovered_usage x JOIN batches b ON b.batch_id = x.batch_id
        WHERE b.posting_period = :period
    """, period=period)
    accepted = store.read_frame("""
        SELECT u.meter, SUM(u.credits_micro) AS credits FROM usage_daily u
        JOIN batches b ON b.batch_id = u.batch_id WHERE b.posting_period = :period
        GROUP BY u.meter
    """, period=period)
    accepted_of = dict(zip(accepted["meter"], accepted["credits"].astype("int64"), strict=True))
    rows = []
    groups = [(meter, part) for meter, part in uncovered.groupby("meter", sort=True)]
    if len(uncovered):
        groups.append(("all meters", uncovered))
    for meter, part in groups:
        credits = int(part["credits_micro"].sum())
        accepted_credits = int(sum(accepted_of.values()) if meter == "all meters"
                               else accepted_of.get(meter, 0))
        share = "" if not accepted_credits else str(
            (Decimal(credits * 100) / Decimal(accepted_credits)).quantize(Decimal("0.01"),
                                                                          ROUND_HALF_EVEN))
        rows.append({"meter": meter, "customers": int(part["customer_id"].nunique()),
                     "days": int(part["business_date"].astype(str).nunique()),
                     "events": int(part["event_count"].sum()),
                     "credits": format_micro_credits(credits),
                     "accepted_credits": format_micro_credits(accepted_credits),
                     "share_of_accepted_credits_percent": share})
    return rows
