"""`creditbooks check`: the invariants of the books, re-derived from what is stored.

Each control states what must be true, computes both sides independently, and lists
the items behind any difference. Nothing here trusts the running totals in
`lot_balances`: they are compared with the append-only slices, refunds, adjustments,
breakage accruals and expiries.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from intake.archive import partition_differs
from ledger.archive_index import batch_control_totals, batch_row_counts, recorded_partitions
from ledger.evidence import EvidenceCheck
from ledger.store import Store
from reports.subledger import lot_state_frame
from rules.fx import functional_owed_minor, rates_in_minor
from rules.lot_state import consumed_value_minor
from rules.policy import policy_version_of_text

_MAX_ITEMS = 10


# A control's outcome is an evidence check's (`creditbooks verify` lists both in one table):
# the control, whether it passed, and the detail behind it.
ControlResult = EvidenceCheck


def _result(name: str, failures: list[str], passed_detail: str) -> ControlResult:
    if not failures:
        return ControlResult(name, True, passed_detail)
    shown = "; ".join(failures[:_MAX_ITEMS])
    more = f" (+{len(failures) - _MAX_ITEMS} more)" if len(failures) > _MAX_ITEMS else ""
    return ControlResult(name, False, shown + more)


def run_controls(store: Store, deferred_account: str,
                 functional_currency: str = "USD") -> list[ControlResult]:
    return [
        entries_balance(store),
        subledger_equals_ledger(store, deferred_account),
        functional_deferred_at_purchase_rates(store, deferred_account, functional_currency),
        lots_tie_out(store),
        usage_is_accounted_for(store),
        kept_policy_texts_are_their_versions(store),
    ]


def kept_policy_texts_are_their_versions(store: Store) -> ControlResult:
    """Each policy text the ledger keeps hashes to the version it is kept as: the version,
    recorded in every batch, entry and close, is the proof of the text (a text rewritten
    in the table, however it got there, no longer hashes to it)."""
    kept = store.read_frame("SELECT version, policy_text FROM policy_versions ORDER BY version")
    failures = []
    for version, policy_text in kept.itertuples(index=False):
        try:
            recomputed = policy_version_of_text(policy_text)
        except ValueError as error:  # tomllib's error is a ValueError: not a policy at all
            recomputed = f"no version (not a policy: {error})"
        if recomputed != version:
            failures.append(f"the text kept as policy version {version} hashes to {recomputed}: "
                            "it was rewritten")
    return _result("kept policy texts = their versions", failures,
                   f"{len(kept)} policy texts, each hashing to its version")


def archive_matches_ledger(store: Store, archive_root) -> ControlResult:
    """Every archive partition a batch recorded is there, with the bytes it recorded and
    the rows its batch accepted (their count, credits and amounts)."""
    with store.engine.connect() as connection:
        partitions = recorded_partitions(connection)
        batch_counts, batch_totals = batch_row_counts(connection), batch_control_totals(connection)
    # Its bytes the ones recorded, and its rows those its batch accepted (batch_files): their
    # count and the credits and amounts they sum to.
    problems = [problem for problem in (
        partition_differs(archive_root, partition, batch_counts, batch_totals)
        for partition in partitions) if problem]
    detail = (f"{len(partitions)} partitions, each as its batch recorded it" if not problems else
              f"{len(problems)} of {len(partitions)} partitions differ; first: {problems[0]}")
    return ControlResult("archive partitions = ledger's record", not problems, detail)


def entries_balance(store: Store) -> ControlResult:
    unbalanced = store.read_frame("""
        SELECT entry_id, currency, SUM(amount_minor) AS difference
        FROM journal_lines GROUP BY entry_id, currency HAVING SUM(amount_minor) <> 0
        ORDER BY entry_id, currency
    """)
    thin = store.read_frame("""
        SELECT e.entry_id FROM journal_entries e LEFT JOIN journal_lines l ON l.entry_id = e.entry_id
        GROUP BY e.entry_id HAVING COUNT(l.entry_id) < 2 ORDER BY e.entry_id
    """)
    functional = store.read_frame("""
        SELECT entry_id, SUM(functional_minor) AS difference FROM journal_lines
        GROUP BY entry_id HAVING SUM(functional_minor) <> 0 ORDER BY entry_id
    """)
    count = int(store.read_frame("SELECT COUNT(*) AS n FROM journal_entries")["n"].iloc[0])
    failures = [f"{row.entry_id} off by {row.difference} {row.currency}"
                for row in unbalanced.itertuples(index=False)]
    failures += [f"{row.entry_id} off by {row.difference} in the functional currency"
                 for row in functional.itertuples(index=False)]
    failures += [f"{row.entry_id} has fewer than two lines" for row in thin.itertuples(index=False)]
    return _result("every entry balances per currency and in the functional currency", failures,
                   f"{count} entries balance")


def functional_deferred_at_purchase_rates(store: Store, deferred_account: str,
                                          functional_currency: str) -> ControlResult:
    """Each foreign lot's functional deferred balance is what it still owes at its own rate:
    round(amount x rate) - round((amount - owed) x rate) (rules/fx.py)."""
    lots = store.read_frame(f"""
        SELECT l.purchase_id, l.currency, l.rate_to_functional, l.amount_minor,
               {_DEFERRED} AS owed, COALESCE(g.value, 0) AS ledger_value
        FROM lots l JOIN lot_balances b ON b.purchase_id = l.purchase_id {_MANUAL_CHANGES}
        LEFT JOIN (SELECT purchase_id, -SUM(functional_minor) AS value FROM journal_lines
                   WHERE account = :account GROUP BY purchase_id) g ON g.purchase_id = l.purchase_id
        WHERE l.currency <> :functional ORDER BY l.purchase_id
    """, account=deferred_account, functional=functional_currency)
    expected = functional_owed_minor(
        lots["amount_minor"], lots["owed"],
        rates_in_minor(lots["rate_to_functional"], lots["currency"], functional_currency))
    differs = expected != lots["ledger_value"].astype("int64").to_numpy()
    failures = [f"lot {purchase_id}: ledger {ledger}, expected {value} {functional_currency} "
                "minor units" for purchase_id, ledger, value in zip(
                    lots.loc[differs, "purchase_id"], lots.loc[differs, "ledger_value"],
                    expected[differs], strict=True)]
    return _result(f"foreign lots' deferred revenue in {functional_currency} is at purchase rates",
                   failures, f"{len(lots)} foreign lots")


# A lot's deferred value: its running totals, and what posted manual journals changed on
# it (creditbooks/journals.py; the join below, `m`, goes with it).
_DEFERRED = ("l.amount_minor - b.usage_value_minor - b.refunded_value_minor - b.breakage_minor"
             " - b.escheat_minor + COALESCE(m.change_minor, 0)")
_MANUAL_CHANGES = """
        LEFT JOIN (SELECT ml.purchase_id, SUM(ml.deferred_change_minor) AS change_minor
                   FROM manual_journal_lines ml JOIN manual_journals mj ON mj.ref = ml.ref
                   WHERE mj.entry_id IS NOT NULL AND ml.purchase_id IS NOT NULL
                   GROUP BY ml.purchase_id) m ON m.purchase_id = l.purchase_id"""


def subledger_equals_ledger(store: Store, deferred_account: str) -> ControlResult:
    subledger = store.read_frame(f"""
        SELECT l.currency, SUM({_DEFERRED}) AS value
        FROM lots l JOIN lot_balances b ON b.purchase_id = l.purchase_id {_MANUAL_CHANGES}
        GROUP BY l.currency
    """).set_index("currency")["value"]
    ledger = store.read_frame("""
        SELECT currency, -SUM(amount_minor) AS value FROM journal_lines WHERE account = :account
        GROUP BY currency
    """, account=deferred_account).set_index("currency")["value"]
    currencies = sorted(set(subledger.index) | set(ledger.index))
    failures, shown = [], []
    for currency in currencies:
        lots_value = int(subledger.get(currency, 0))
        ledger_value = int(ledger.get(currency, 0))
        shown.append(f"{currency} {lots_value}")
        if lots_value != ledger_value:
            failures.append(f"{currency}: lots {lots_value} minor, ledger {ledger_value} minor, "
                            f"difference {lots_value - ledger_value}")
    per_lot = store.read_frame(f"""
        SELECT l.purchase_id, {_DEFERRED} AS lots_value, COALESCE(g.value, 0) AS ledger_value
        FROM lots l JOIN lot_balances b ON b.purchase_id = l.purchase_id {_MANUAL_CHANGES}
        LEFT JOIN (SELECT purchase_id, -SUM(amount_minor) AS value FROM journal_lines
                   WHERE account = :account GROUP BY purchase_id) g ON g.purchase_id = l.purchase_id
        WHERE {_DEFERRED} <> COALESCE(g.value, 0)
        ORDER BY l.purchase_id
    """, account=deferred_account)
    failures += [f"lot {row.purchase_id}: subledger {row.lots_value}, ledger {row.ledger_value}"
                 for row in per_lot.itertuples(index=False)]
    return _result("credit subledger equals GL deferred revenue", failures,
                   "remaining value (minor units): " + (", ".join(shown) or "none"))


def lots_tie_out(store: Store) -> ControlResult:
    """Each lot's running totals equal its append-only records, and its credits and value add up.

    Closed: used + refunded + expired credits = granted, and usage revenue + refunds +
    breakage + escheat = amount, to the minor unit.
    """
    running = store.read_frame("""
        SELECT l.purchase_id, b.is_open, b.credits_used_micro, b.usage_value_minor,
               b.credits_refunded_micro, b.refunded_value_minor, b.refunded_tax_minor,
               b.credits_expired_micro, b.breakage_minor, b.escheat_minor, b.credits_voided_micro,
               b.expires_at
        FROM lots l JOIN lot_balances b ON b.purchase_id = l.purchase_id ORDER BY l.purchase_id
    """)
    derived = lot_state_frame(store).set_index("purchase_id").loc[running["purchase_id"]]
    failures = []
    if len(running):
        running = running.set_index("purchase_id")
        compared = ["credits_used_micro", "usage_value_minor", "credits_refunded_micro",
                    "refunded_value_minor", "refunded_tax_minor", "credits_expired_micro",
                    "breakage_minor", "escheat_minor", "credits_voided_micro"]
        differs = pd.Series(False, index=running.index)
        for column in compared:
            differs |= running[column].astype("int64") != derived[column]
        differs |= (pd.to_datetime(running["expires_at"]).fillna(pd.Timestamp(0))
                    != pd.to_datetime(derived["expires_at"]).fillna(pd.Timestamp(0)))
        consumed_value = consumed_value_minor(
            derived, derived["credits_used_micro"] + derived["credits_refunded_micro"])
        closed = ~running["is_open"].astype(bool)
        checks = {
            "running totals differ from slices, refunds, adjustments, accruals and expiries":
                differs,
            "usage + refunded value is not amount x (used + refunded) / granted": (
                derived["usage_value_minor"] + derived["refunded_value_minor"] != consumed_value),
            "more credits used, refunded and expired than granted": (
                derived["credits_remaining_micro"] < 0),
            "closed lot does not tie out: usage + refunds + breakage + escheat != amount": (
                closed & (derived["value_remaining_minor"] != 0)),
            "closed lot has credits left": closed & (derived["credits_remaining_micro"] != 0),
            "open lot has no credits left": ~closed & (derived["credits_remaining_micro"] <= 0),
        }
        for reason, mask in checks.items():
            for purchase_id in running.index[np.asarray(mask, dtype=bool)]:
                failures.append(f"lot {purchase_id}: {reason}")
    closed_count = int((~running["is_open"].astype(bool)).sum()) if len(running) else 0
    return _result("every lot ties out", failures,
                   f"{len(running)} lots, {closed_count} closed with usage + refunds + breakage "
                   "+ escheat = amount")


def usage_accounting_by_day(store: Store, first=None, following=None) -> pd.DataFrame:
    """Per business day: usage credits accepted, burned and uncovered (micro-credits)."""
    window = "WHERE business_date >= :first AND business_date < :following" if first else ""
    parameters = {"first": first, "following": following} if first else {}
    return store.read_frame(f"""
        SELECT u.business_date, u.credits AS accepted, COALESCE(s.credits, 0) AS burned,
               COALESCE(x.credits, 0) AS uncovered
        FROM (SELECT business_date, SUM(credits_micro) AS credits FROM usage_daily {window}
              GROUP BY business_date) u
        LEFT JOIN (SELECT business_date, SUM(credits_micro) AS credits FROM burn_slices
                   GROUP BY business_date) s ON s.business_date = u.business_date
        LEFT JOIN (SELECT business_date, SUM(credits_micro) AS credits FROM uncovered_usage
                   GROUP BY business_date) x ON x.business_date = u.business_date
        ORDER BY u.business_date
    """, **parameters)


def usage_is_accounted_for(store: Store) -> ControlResult:
    frame = usage_accounting_by_day(store)
    failures = [
        f"{row.business_date}: accepted {row.accepted} != burned {row.burned} + uncovered "
        f"{row.uncovered} (micro-credits)"
        for row in frame.itertuples(index=False) if row.accepted != row.burned + row.uncovered
    ]
    files = store.read_frame("""
        SELECT batch_id, document FROM batch_files
        WHERE rows_read <> rows_accepted + rows_duplicate + rows_rejected
    """)
    failures += [f"{row.batch_id} {row.document}: rows do not add up"
                 for row in files.itertuples(index=False)]
    return _result("usage credits accepted = burned + uncovered; rows read are all accounted for",
                   failures, f"{len(frame)} days of usage accounted for")
