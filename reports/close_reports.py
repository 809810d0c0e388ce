"""The reports of a month-end close, each a list of rows of exact decimal strings.

Everything is computed in minor units and micro-credits and formatted last. "In the
period" means posted into it: a batch's `posting_period`, which is its business date's
month unless that month was already locked when the night ran.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

import pandas as pd

from ledger.accounts import ChartOfAccounts
from ledger.money import format_micro_credits, format_minor, minor_unit_exponent
from ledger.periods import business_day, parse_period, period_of
from ledger.store import Store
from reports.statements import rollforward_frame
from reports.subledger import lot_state_frame
from rules.archive import read_partition


def _money(frame: pd.DataFrame, columns: list[str]) -> list[dict]:
    rows = []
    for row in frame.to_dict("records"):
        rows.append({key: (format_minor(int(value), row["currency"]) if key in columns else value)
                     for key, value in row.items()})
    return rows


def income_statement(store: Store, period: str) -> list[dict]:
    """Income and expense accounts' activity in the period (revenue positive, costs negative)."""
    frame = store.read_frame("""
        SELECT l.account, l.currency, -SUM(l.amount_minor) AS amount FROM journal_lines l
        JOIN journal_entries e ON e.entry_id = l.entry_id
        WHERE e.period = :period AND (l.account LIKE 'Income:%' OR l.account LIKE 'Expenses:%')
        GROUP BY l.account, l.currency ORDER BY l.currency, l.account
    """, period=period)
    totals = frame.groupby("currency", as_index=False)["amount"].sum().assign(account="Total net income")
    combined = pd.concat([frame, totals], ignore_index=True).sort_values(
        ["currency", "account"], key=lambda column: column.str.replace("Total", "~"))
    return _money(combined[["currency", "account", "amount"]], ["amount"])


def balance_sheet(store: Store, period: str) -> list[dict]:
    """Balances at period end: assets and liabilities positive; earnings to date as equity."""
    frame = store.read_frame("""
        SELECT l.account, l.currency, SUM(l.amount_minor) AS balance FROM journal_lines l
        JOIN journal_entries e ON e.entry_id = l.entry_id WHERE e.period <= :period
        GROUP BY l.account, l.currency ORDER BY l.currency, l.account
    """, period=period)
    root = frame["account"].str.split(":").str[0]
    income = frame[root.isin(["Income", "Expenses"])].groupby("currency")["balance"].sum()
    sheet = frame[root.isin(["Assets", "Liabilities"])].copy()
    sheet["amount"] = sheet["balance"].where(root[sheet.index] == "Assets", -sheet["balance"])
    equity = pd.DataFrame({"currency": income.index, "account": "Equity:Earnings:ToDate",
                           "amount": -income.to_numpy()})
    combined = pd.concat([sheet[["currency", "account", "amount"]], equity], ignore_index=True)
    return _money(combined.sort_values(["currency", "account"]), ["amount"])


def rollforward_by(store: Store, period: str, dimension: str, accounts: ChartOfAccounts) -> list[dict]:
    """The deferred revenue rollforward per currency and customer, or per currency and product."""
    frame = rollforward_frame(store, period, accounts.deferred_revenue, dimension).assign(refunds=0)
    frame = frame[["currency", dimension, "opening", "purchases", "usage_revenue", "breakage",
                   "refunds", "closing"]]
    moved = frame[["opening", "purchases", "usage_revenue", "breakage", "closing"]].any(axis=1)
    return _money(frame[moved], ["opening", "purchases", "usage_revenue", "breakage", "refunds",
                                 "closing"])


def revenue_from_opening_balance(store: Store, period: str, accounts: ChartOfAccounts) -> list[dict]:
    """Revenue recognised this period out of the deferred balance it opened with."""
    frame = store.read_frame("""
        SELECT l.currency,
          SUM(CASE WHEN e.kind = 'usage' THEN l.amount_minor ELSE 0 END) AS usage_revenue,
          SUM(CASE WHEN e.kind = 'breakage' THEN l.amount_minor ELSE 0 END) AS breakage
        FROM journal_lines l JOIN journal_entries e ON e.entry_id = l.entry_id
        JOIN journal_entries p ON p.entry_id = 'purchase/' || l.purchase_id
        WHERE l.account = :account AND e.period = :period AND p.period < :period
        GROUP BY l.currency ORDER BY l.currency
    """, period=period, account=accounts.deferred_revenue)
    frame["total"] = frame["usage_revenue"] + frame["breakage"]
    return _money(frame, ["usage_revenue", "breakage", "total"])


def revenue_by_customer_product_meter(store: Store, period: str) -> list[dict]:
    frame = store.read_frame("""
        SELECT s.customer_id, o.product, s.meter, s.currency,
               SUM(s.credits_micro) AS credits, SUM(s.value_minor) AS revenue
        FROM burn_slices s JOIN lots o ON o.purchase_id = s.purchase_id
        JOIN batches b ON b.batch_id = s.batch_id
        WHERE b.posting_period = :period
        GROUP BY s.customer_id, o.product, s.meter, s.currency
        ORDER BY s.customer_id, o.product, s.meter, s.currency
    """, period=period)
    frame["credits"] = frame["credits"].map(lambda value: format_micro_credits(int(value)))
    return _money(frame, ["revenue"])


def breakage_by_lot(store: Store, period: str) -> list[dict]:
    frame = store.read_frame("""
        SELECT x.purchase_id, o.customer_id, o.product, o.currency, o.expires_at,
               x.business_date AS expired_on, x.credits_micro AS credits_expired,
               x.value_minor AS breakage
        FROM lot_expiries x JOIN lots o ON o.purchase_id = x.purchase_id
        JOIN batches b ON b.batch_id = x.batch_id
        WHERE b.posting_period = :period ORDER BY x.purchase_id
    """, period=period)
    frame["credits_expired"] = frame["credits_expired"].map(lambda v: format_micro_credits(int(v)))
    frame["expires_at"] = frame["expires_at"].astype(str)
    frame["expired_on"] = frame["expired_on"].astype(str)
    return _money(frame, ["breakage"])


def period_end(period: str, timezone: str) -> pd.Timestamp:
    _, following = parse_period(period)
    return business_day(following - timedelta(days=1), timezone).ends_at_utc


def lot_aging(store: Store, period: str, timezone: str) -> list[dict]:
    """Remaining credits and value at period end, by time left until expiry."""
    _, following = parse_period(period)
    lots = lot_state_frame(store, as_of=following - timedelta(days=1))
    lots["credits_remaining"] = (lots["credits_micro"] - lots["credits_used_micro"]
                                 - lots["credits_expired_micro"])
    lots["value_remaining"] = lots["amount_minor"] - lots["usage_value_minor"] - lots["breakage_minor"]
    lots = lots[lots["credits_remaining"] > 0].copy()
    expires = pd.to_datetime(lots["expires_at"]).dt.tz_localize("UTC")
    left = expires - period_end(period, timezone)

    def days(count: int) -> pd.Timedelta:
        return pd.Timedelta(days=count)

    buckets = [("expired", left <= days(0)), ("< 30 days", (left > days(0)) & (left < days(30))),
               ("30-90 days", (left >= days(30)) & (left < days(90))),
               ("90-365 days", (left >= days(90)) & (left < days(365))),
               ("> 365 days", left >= days(365))]
    lots["bucket"] = "never"  # no expiry date
    for name, inside in buckets:
        lots.loc[expires.notna() & inside, "bucket"] = name
    order = {name: index for index, name in enumerate([*(name for name, _ in buckets), "never"])}
    grouped = lots.groupby(["currency", "bucket"], as_index=False).agg(
        lots=("purchase_id", "size"), credits_remaining=("credits_remaining", "sum"),
        value_remaining=("value_remaining", "sum"))
    grouped = grouped.assign(order=grouped["bucket"].map(order)).sort_values(
        ["currency", "order"]).drop(columns="order")
    grouped["credits_remaining"] = grouped["credits_remaining"].map(
        lambda value: format_micro_credits(int(value)))
    return _money(grouped, ["value_remaining"])


def _ratio(numerator: int, denominator: int, places: int = 4) -> str:
    if denominator == 0:
        return ""
    quantum = Decimal(1).scaleb(-places)
    return str((Decimal(numerator) / Decimal(denominator)).quantize(quantum, ROUND_HALF_EVEN))


def unit_economics(store: Store, period: str) -> list[dict]:
    """Credit KPIs of the period, from the subledger and journal only."""
    first, following = parse_period(period)
    previous = period_of(first - timedelta(days=1))
    usage = store.read_frame("""
        SELECT b.posting_period AS period, s.customer_id, o.kind, s.currency,
               SUM(s.credits_micro) AS credits, SUM(s.value_minor) AS revenue
        FROM burn_slices s JOIN lots o ON o.purchase_id = s.purchase_id
        JOIN batches b ON b.batch_id = s.batch_id WHERE b.posting_period <= :period
        GROUP BY b.posting_period, s.customer_id, o.kind, s.currency
    """, period=period)
    this = usage[usage["period"] == period]
    before = usage[usage["period"] < period]
    last = usage[usage["period"] == previous]
    purchased = store.read_frame("""
        SELECT o.kind, SUM(o.credits_micro) AS credits FROM lots o JOIN batches b
        ON b.batch_id = o.batch_id WHERE b.posting_period = :period GROUP BY o.kind
    """, period=period).set_index("kind")["credits"]
    expired = store.read_frame("""
        SELECT o.currency, SUM(x.credits_micro) AS credits, SUM(x.value_minor) AS value
        FROM lot_expiries x JOIN lots o ON o.purchase_id = x.purchase_id
        JOIN batches b ON b.batch_id = x.batch_id WHERE b.posting_period = :period
        GROUP BY o.currency
    """, period=period).set_index("currency")
    by_customer = this.groupby("customer_id")["credits"].sum().sort_values(ascending=False)
    burned = int(this["credits"].sum())
    active = set(this["customer_id"])
    stayed = active & set(last["customer_id"])
    stayed_now = int(this[this["customer_id"].isin(stayed)]["credits"].sum())
    stayed_before = int(last[last["customer_id"].isin(stayed)]["credits"].sum())
    credits = format_micro_credits
    rows = [
        ("credits purchased (paid)", "", credits(int(purchased.get("paid", 0)))),
        ("credits granted (promotional)", "", credits(int(purchased.get("promotional", 0)))),
        ("credits burned", "", credits(burned)),
        ("credits expired", "", credits(int(expired["credits"].sum()) if len(expired) else 0)),
        ("active customers", "", str(len(active))),
        ("new active customers", "", str(len(active - set(before["customer_id"])))),
        ("average credits burned per active customer", "",
         _ratio(burned, len(active) * 10**6, 6) if active else ""),
        ("usage concentration: top 5 customers' share of credits burned", "",
         _ratio(int(by_customer.head(5).sum()), burned)),
        ("expansion: change in credits burned by customers active last period", "",
         _ratio(stayed_now - stayed_before, stayed_before)),
    ]
    for currency in sorted(set(this["currency"]) | set(expired.index)):
        paid = this[(this["currency"] == currency) & (this["kind"] == "paid")]
        revenue = int(paid["revenue"].sum())
        breakage = int(expired["value"].get(currency, 0))
        paid_credits = int(paid["credits"].sum()) if len(paid) else 0
        # revenue (major units) per credit: minor / 10**exponent over micro / 10**6
        per_credit = "" if not paid_credits else str((
            Decimal(revenue).scaleb(6 - minor_unit_exponent(currency)) / Decimal(paid_credits)
        ).quantize(Decimal("0.000001"), ROUND_HALF_EVEN))
        rows += [
            ("usage revenue", currency, format_minor(revenue, currency)),
            ("effective price per paid credit burned", currency, per_credit),
            ("breakage", currency, format_minor(breakage, currency)),
            ("breakage rate: breakage / (usage revenue + breakage)", currency,
             _ratio(breakage, revenue + breakage)),
        ]
    return [{"metric": metric, "currency": currency, "value": value}
            for metric, currency, value in rows]


def late_items(store: Store, period: str) -> list[dict]:
    """Entries posted into the period from nights dated in an earlier (locked) period."""
    first, _ = parse_period(period)
    frame = store.read_frame("""
        SELECT e.business_date, e.entry_id, e.kind, e.customer_id, l.currency,
               SUM(CASE WHEN l.amount_minor > 0 THEN l.amount_minor ELSE 0 END) AS amount
        FROM journal_entries e JOIN journal_lines l ON l.entry_id = e.entry_id
        WHERE e.period = :period AND e.business_date < :first
        GROUP BY e.business_date, e.entry_id, e.kind, e.customer_id, l.currency
        ORDER BY e.business_date, e.entry_id
    """, period=period, first=first)
    frame["business_date"] = frame["business_date"].astype(str)
    return _money(frame, ["amount"])


def late_usage(store: Store, period: str, archive_root: Path, timezone: str) -> list[dict]:
    """Usage that occurred in an earlier period but was first seen by a night of this one."""
    first, _ = parse_period(period)
    starts_at = business_day(first, timezone).starts_at_utc
    days = store.read_frame("SELECT business_date FROM batches WHERE posting_period = :period "
                            "ORDER BY business_date", period=period)["business_date"]
    parts = []
    for business_date in days:
        events = read_partition(archive_root, "usage", pd.Timestamp(business_date).date(),
                                ["event_id", "customer_id", "occurred_at", "meter", "credits_micro"])
        occurred = pd.to_datetime(events["occurred_at"], utc=True)
        late = events[occurred < starts_at].assign(business_date=str(business_date))
        late["occurred_period"] = occurred[late.index].dt.tz_convert(timezone).dt.strftime("%Y-%m")
        parts.append(late)
    if not parts or not sum(len(part) for part in parts):
        return []
    late = pd.concat(parts, ignore_index=True).groupby(
        ["business_date", "customer_id", "meter", "occurred_period"], as_index=False).agg(
        events=("event_id", "size"), credits=("credits_micro", "sum"))
    late["credits"] = late["credits"].map(lambda value: format_micro_credits(int(value)))
    return late.to_dict("records")
