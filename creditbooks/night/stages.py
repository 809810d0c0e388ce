"""The posting stages of a night after ingest, each idempotent and each in its caller's
transaction, in the order of `ledger.domain.Stage` (whose comments say what each does;
refunds and adjustments: creditbooks/night/start_of_day.py). Every stage first looks for
its row in `batch_stages` and does nothing if it is there; otherwise it reads its input
(the archived partitions and the open lots), writes its rows and records itself, all in
one transaction. Burning is per customer, so shards never touch the same lot or entry,
and the books are the same for any shard count.
"""

from __future__ import annotations

from datetime import timedelta
from types import MappingProxyType

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection, text

from creditbooks.journals import reverse_due
from creditbooks.night.lots import lots_changing_today, open_lots, open_lots_of
from creditbooks.night.posting import Night, all_rates, archived_rows, post, rates_on
from creditbooks.night.start_of_day import apply_adjustments, apply_refunds
from intake.archive import archived_path, read_partition_where
from intake.validation import fingerprint_to_hex
from ledger import schema
from ledger.chain import seal_batch
from ledger.domain import MAX_SHARDS, BatchStatus, ExpiryDestination, OverageMode, Stage
from ledger.money import format_micro_credits
from ledger.record_chain import seal_batch_record
from ledger.store import (
    completed_stages,
    insert_frame,
    read_frame,
    read_in_chunks,
    record_stage,
    replace_lot_balances,
)
from rules.breakage import accrue_breakage, proportional_products, rate_notes
from rules.burn import burn, burn_order_ranks
from rules.costs import cost_journal
from rules.expiry import expire_lots
from rules.fx import is_period_end, lot_rates, positions, remeasure_monetary
from rules.lot_state import INSTANT_DTYPE, credits_left_micro, new_lot_balances, typed_lots
from rules.overage import charge_arrears, settle_owed
from rules.purchases import post_purchases
from rules.recognition import recognise_usage


class StageOrderError(RuntimeError):
    """A stage was asked to run before the stages it depends on."""


class DailyControlError(RuntimeError):
    """The day's controls failed; the batch stays open and unpublished."""


def shard_of(customer_ids: pd.Series, shard_count: int) -> np.ndarray:
    """A customer's shard: a stable hash of its id, the same in every process."""
    hashes = pd.util.hash_pandas_object(customer_ids.astype(str), index=False).to_numpy()
    return (hashes % np.uint64(shard_count)).astype(np.int64)


def _shard_customers(connection: Connection, night: Night, shard: int,
                     shard_count: int) -> pa.Array:
    """The customers with usage today that are the shard's (each id hashed once)."""
    customers = read_frame(connection, "SELECT DISTINCT customer_id FROM usage_daily "
                           "WHERE batch_id = :batch_id", batch_id=night.batch_id)["customer_id"]
    return pa.array(customers[shard_of(customers, shard_count) == shard], type=pa.string())


def _done(connection: Connection, night: Night, stage: Stage, shard: int | None = None) -> bool:
    stages = completed_stages(connection, night.batch_id)
    rows = stages[stages["stage"] == stage]
    return bool(len(rows) if shard is None else (rows["shard"] == shard).any())


def _require_previous(connection: Connection, night: Night, stage: Stage) -> None:
    """Refuse to run `stage` before the stage it follows has run for this night."""
    previous = stage.previous()
    if previous is not None and not _done(connection, night, previous):
        raise StageOrderError(f"{night.batch_id}: {stage} needs the {previous} stage to have run")


def post_purchases_stage(connection: Connection, night: Night) -> None:
    if _done(connection, night, Stage.PURCHASES):
        return
    _require_previous(connection, night, Stage.PURCHASES)
    accepted = archived_rows(connection, night, "purchases")
    accepted = typed_lots(accepted).assign(
        payload_hash=accepted["payload_hash"].map(fingerprint_to_hex))
    functional = night.policy.functional_currency
    foreign = (accepted["currency"] != functional).any()
    accepted["rate_to_functional"] = lot_rates(
        accepted, all_rates(connection) if foreign else {}, functional,
        night.policy.reporting_timezone)
    posted = post_purchases(accepted, night.day, night.policy.accounts)
    insert_frame(connection, schema.Lot, posted.lots.assign(**night.on_day))
    insert_frame(connection, schema.LotBalance, new_lot_balances(posted.lots, night.batch_id))
    post(connection, night, posted.journal, positions(posted.lots, fresh=True))
    apply_refunds(connection, night)
    apply_adjustments(connection, night)
    if night.policy.post_costs:
        costs = read_frame(connection, "SELECT cost_id, meter, currency, amount_minor, vendor "
                           "FROM costs WHERE batch_id = :batch_id", batch_id=night.batch_id)
        post(connection, night, cost_journal(costs.astype({"amount_minor": "int64"}), night.day,
                                              night.policy.accounts))
    record_stage(connection, night.batch_id, Stage.PURCHASES, night.recorded_at)


def burn_stage(connection: Connection, night: Night, shard: int, shard_count: int) -> None:
    if not 1 <= shard_count <= MAX_SHARDS or not 0 <= shard < shard_count:
        raise ValueError(f"shard {shard} of {shard_count} is out of range (1..{MAX_SHARDS} shards)")
    stages = completed_stages(connection, night.batch_id)
    earlier = stages[stages["stage"] == Stage.BURN]
    if len(earlier) and (earlier["shard_count"] != shard_count).any():
        raise StageOrderError(f"{night.batch_id} was burned with {earlier['shard_count'].iloc[0]} "
                              f"shards; run it again with the same shard count")
    if (earlier["shard"] == shard).any():
        return
    _require_previous(connection, night, Stage.BURN)
    columns = ["event_id", "customer_id", "occurred_at", "meter", "credits_micro"]
    if shard_count == 1:
        events = archived_rows(connection, night, "usage", columns)
    else:  # a row group at a time, keeping the shard's rows: a day may be too large to hold
        customers = _shard_customers(connection, night, shard, shard_count)
        events = read_partition_where(
            archived_path(connection, night.archive_root, "usage", night.day.business_date),
            "usage", columns, lambda rows: pc.is_in(rows["customer_id"], value_set=customers))
    events = events.astype({"credits_micro": "int64"}).assign(
        occurred_at=pd.to_datetime(events["occurred_at"], utc=True).astype(INSTANT_DTYPE))
    owed = _owed_credits(connection, night, shard, shard_count)
    # Distinct ids first: a membership test against a million repeated ids costs more.
    burning = pd.concat([events["customer_id"], owed["customer_id"]]).unique()
    # One shard of several reads its customers' lots by index, not every open lot.
    lots = open_lots(connection) if shard_count == 1 else open_lots_of(connection, burning)
    lots = lots[lots["customer_id"].isin(burning)].copy()
    lots["credits_available_micro"] = credits_left_micro(lots)
    lots["burn_rank"] = burn_order_ranks(lots, night.policy.burn_order)
    burnt = burn(events, lots, night.day)
    uncovered = burnt.uncovered.assign(
        treatment=burnt.uncovered["customer_id"].map(night.policy.overage_for).astype(object))
    settled = _settle(owed, uncovered, lots, burnt.slices, night)
    recognised = recognise_usage(pd.concat([burnt.slices.assign(settles=False),
                                            settled.assign(settles=True)], ignore_index=True),
                                 lots, night.day, night.policy.accounts)
    touched = recognised.lots[recognised.lots["purchase_id"].isin(recognised.slices["purchase_id"])]
    replace_lot_balances(connection, _balances(touched, night.batch_id))
    slices = recognised.slices
    # Today's usage was priced by the rate card when the source is rated; null otherwise.
    insert_frame(connection, schema.BurnSlice,
                 slices[~slices["settles"]].drop(columns="settles").assign(
                     **night.on_day,
                     rate_card_version=night.policy.usage_source.rate_card_version))
    insert_frame(connection, schema.OverageSettlement,
                 slices[slices["settles"]].drop(columns="settles").assign(**night.on_day))
    insert_frame(connection, schema.UncoveredUsage, uncovered.assign(**night.on_day))
    post(connection, night, recognised.journal, positions(lots))
    in_arrears = uncovered[uncovered["treatment"] == OverageMode.ARREARS]
    charges, arrears_journal = charge_arrears(
        in_arrears, _latest_currency(connection, in_arrears["customer_id"]), night.day,
        night.policy)
    insert_frame(connection, schema.OverageCharge, charges[[
        "customer_id", "meter", "credits_micro", "price_per_credit", "amount_minor", "currency",
    ]].assign(**night.on_day))
    post(connection, night, arrears_journal)
    record_stage(connection, night.batch_id, Stage.BURN, night.recorded_at, shard, shard_count)


def _owed_credits(connection: Connection, night: Night, shard: int,
                  shard_count: int) -> pd.DataFrame:
    """Credits owed before today by this shard's negative-balance customers, per meter.

    Summed as Python integers: each day's rows fit in 64 bits, but what a customer owes
    over many days may not, and then the night stops naming the customer (a database's
    SUM would fail naming nothing, or wrap).
    """
    rows = read_frame(connection, """
        SELECT customer_id, meter, credits_micro FROM uncovered_usage
        WHERE treatment = :owing AND business_date < :day
        UNION ALL
        SELECT customer_id, meter, -credits_micro FROM overage_settlements
        WHERE business_date < :day
    """, day=night.day.business_date, owing=OverageMode.NEGATIVE_BALANCE.value)
    rows = rows[shard_of(rows["customer_id"], shard_count) == shard]
    owed = rows.astype({"credits_micro": object}).groupby(
        ["customer_id", "meter"], as_index=False, sort=True)["credits_micro"].sum()
    owed = owed[owed["credits_micro"] > 0]
    too_large = owed[owed["credits_micro"] > np.iinfo(np.int64).max]
    if len(too_large):
        first = too_large.iloc[0]
        raise DailyControlError(
            f"{night.batch_id}: customer {first['customer_id']} owes "
            f"{format_micro_credits(int(first['credits_micro']))} credits on meter "
            f"{first['meter']} under negative_balance, more than the books can hold; "
            "settle or write off that balance before the night runs")
    return owed.astype({"credits_micro": "int64"}).reset_index(drop=True)


def _settle(owed: pd.DataFrame, uncovered: pd.DataFrame, lots: pd.DataFrame,
            slices: pd.DataFrame, night: Night) -> pd.DataFrame:
    """What today's new lots pay of the credits owed (earlier balances and today's)."""
    owing = pd.concat([owed, uncovered.loc[uncovered["treatment"] == OverageMode.NEGATIVE_BALANCE,
                                           ["customer_id", "meter", "credits_micro"]]])
    bought_today = pd.to_datetime(lots["purchased_on"]).dt.date == night.day.business_date
    if owing.empty or not bought_today.any():
        return slices.iloc[0:0]
    owing = owing.groupby(["customer_id", "meter"], as_index=False)["credits_micro"].sum()
    burned = slices.groupby("purchase_id")["credits_micro"].sum()
    left = lots["credits_available_micro"] - lots["purchase_id"].map(burned).fillna(0).astype(
        "int64")
    new_lots = lots[bought_today].assign(credits_available_micro=left[bought_today])
    return settle_owed(owing, new_lots[new_lots["credits_available_micro"] > 0],
                       night.day).slices


def _latest_currency(connection: Connection, customer_ids: pd.Series) -> pd.Series:
    """Each customer's currency: that of their latest purchase."""
    lots = read_in_chunks(connection, "SELECT customer_id, currency, purchased_at FROM lots "
                          "WHERE customer_id IN :ids", customer_ids,
                          ["customer_id", "currency", "purchased_at"])
    latest = lots.sort_values(["customer_id", "purchased_at"]).drop_duplicates(
        "customer_id", keep="last")
    return latest.set_index("customer_id")["currency"]


def expire_stage(connection: Connection, night: Night) -> None:
    """Proportional breakage for the day's usage, then the lots that expire today."""
    if _done(connection, night, Stage.EXPIRE):
        return
    _require_previous(connection, night, Stage.EXPIRE)
    changing = lots_changing_today(
        connection, night.batch_id, night.day.business_date + timedelta(days=2),
        proportional_products(night.policy, night.policy.breakage_products))
    accrued = accrue_breakage(changing, night.day, night.policy)
    if len(accrued.accruals):
        insert_frame(connection, schema.BreakageAccrual, accrued.accruals.drop(
            columns=["customer_id", "currency"]).assign(policy_version=night.policy.version,
                                                        **night.on_day))
        replace_lot_balances(connection, accrued.accruals[["purchase_id"]].assign(
            breakage_minor=accrued.accruals["breakage_to_date_minor"],
            last_batch_id=night.batch_id))
    post(connection, night, accrued.journal, positions(changing))
    # The lots still open, with their breakage as just accrued: no second read of them.
    lots = changing[changing["is_open"]].copy()
    accrued_to_date = accrued.accruals.set_index("purchase_id")["breakage_to_date_minor"]
    lots["breakage_minor"] = lots["purchase_id"].map(accrued_to_date).fillna(
        lots["breakage_minor"]).astype("int64")
    expired = expire_lots(lots, night.day, night.policy.accounts, night.policy.escheat_countries,
                          rate_notes(lots, night.day, night.policy))
    if len(expired.expiries):
        insert_frame(connection, schema.LotExpiry, expired.expiries.assign(**night.on_day))
        gone = expired.expiries.set_index("purchase_id")
        to_escheat = gone["destination"] == ExpiryDestination.ESCHEAT
        before = lots.set_index("purchase_id").loc[gone.index]
        closed = before[["breakage_minor", "escheat_minor"]].assign(
            credits_expired_micro=gone["credits_micro"], is_open=False,
            last_batch_id=night.batch_id)
        closed["breakage_minor"] += gone["value_minor"].where(~to_escheat, 0)
        closed["escheat_minor"] += gone["value_minor"].where(to_escheat, 0)
        replace_lot_balances(connection, closed.reset_index())
    post(connection, night, expired.journal, positions(lots))
    if is_period_end(night.day):
        monetary = read_frame(connection, """
            SELECT account, currency, SUM(amount_minor) AS amount_minor,
                   SUM(functional_minor) AS functional_minor
            FROM journal_lines WHERE account IN (:cash, :tax)
            GROUP BY account, currency ORDER BY currency, account
        """, cash=night.policy.accounts.cash_clearing, tax=night.policy.accounts.sales_tax).astype(
            {"amount_minor": "int64", "functional_minor": "int64"})
        post(connection, night, remeasure_monetary(monetary, rates_on(connection, night),
                                                   night.policy.functional_currency, night.day,
                                                   night.policy.accounts), translated=True)
    record_stage(connection, night.batch_id, Stage.EXPIRE, night.recorded_at)


def controls_stage(connection: Connection, night: Night) -> None:
    """The day's controls, over all shards together; raise (and stay open) on any failure."""
    if _done(connection, night, Stage.CONTROLS):
        return
    _require_previous(connection, night, Stage.CONTROLS)
    failures = []
    burns = shard_stages(connection, night.batch_id)
    if len(burns) != int(burns["shard_count"].iloc[0]):
        failures.append(f"{len(burns)} of {burns['shard_count'].iloc[0]} burn shards ran")
    totals = read_frame(connection, """
        SELECT (SELECT COALESCE(SUM(credits_micro), 0) FROM usage_daily WHERE business_date = :day)
                 AS accepted,
               (SELECT COALESCE(SUM(credits_micro), 0) FROM burn_slices WHERE business_date = :day)
                 AS burned,
               (SELECT COALESCE(SUM(credits_micro), 0) FROM uncovered_usage
                 WHERE business_date = :day) AS uncovered
    """, day=night.day.business_date).iloc[0]
    if int(totals["accepted"]) != int(totals["burned"]) + int(totals["uncovered"]):
        failures.append(f"usage credits accepted {totals['accepted']} != burned {totals['burned']}"
                        f" + uncovered {totals['uncovered']} (micro-credits)")
    unbalanced = read_frame(connection, """
        SELECT l.entry_id, l.currency FROM journal_lines l
        JOIN journal_entries e ON e.entry_id = l.entry_id WHERE e.batch_id = :batch_id
        GROUP BY l.entry_id, l.currency HAVING SUM(l.amount_minor) <> 0
    """, batch_id=night.batch_id)
    failures += [f"entry {row.entry_id} does not balance in {row.currency}"
                 for row in unbalanced.itertuples(index=False)]
    if failures:
        raise DailyControlError(f"{night.batch_id} daily controls failed: " + "; ".join(failures))
    record_stage(connection, night.batch_id, Stage.CONTROLS, night.recorded_at)


def publish_stage(connection: Connection, night: Night) -> str:
    """Seal the night's entries onto the hash chain, mark the batch posted (or empty) and
    seal the batch's record (ledger/record_chain.py)."""
    if not _done(connection, night, Stage.PUBLISH):
        _require_previous(connection, night, Stage.PUBLISH)
        files = read_frame(connection, "SELECT COUNT(*) AS n FROM batch_files "
                           "WHERE batch_id = :batch_id", batch_id=night.batch_id)["n"].iloc[0]
        seal_batch(connection, night.batch_id)
        connection.execute(text("""
            UPDATE batches SET status = :status, recorded_at = :recorded_at,
                   entry_count = (SELECT COUNT(*) FROM journal_entries WHERE batch_id = :batch_id)
            WHERE batch_id = :batch_id AND status = :open
        """), {"status": BatchStatus.POSTED if int(files) else BatchStatus.EMPTY,
               "recorded_at": night.recorded_at,
               "batch_id": night.batch_id, "open": BatchStatus.OPEN})
        seal_batch_record(connection, night.batch_id)  # its row, files and quarantine, as final
        # Accruals that reverse themselves today post into the batch just published.
        reverse_due(connection, night.policy, night.day.business_date, night.recorded_at)
        record_stage(connection, night.batch_id, Stage.PUBLISH, night.recorded_at)
    return read_frame(connection, "SELECT status FROM batches WHERE batch_id = :batch_id",
                      batch_id=night.batch_id)["status"].iloc[0]


def _balances(lots: pd.DataFrame, batch_id: str) -> pd.DataFrame:
    balances = lots.assign(last_batch_id=batch_id, is_open=credits_left_micro(lots) > 0)
    return balances[["purchase_id", "credits_used_micro", "usage_value_minor", "is_open",
                     "last_batch_id"]]


def shard_stages(connection: Connection, batch_id: str) -> pd.DataFrame:
    """The shards of the night's sharded stage that have run (shard, shard_count)."""
    stages = completed_stages(connection, batch_id)
    return stages[stages["stage"] == Stage.BURN]


# What runs each stage after ingest (creditbooks/night/ingest.py opens the batch), in the
# order of `Stage`: the command line, the Airflow tasks and the tests all run them here.
STAGE_RUNNERS = MappingProxyType({
    Stage.PURCHASES: post_purchases_stage,
    Stage.BURN: burn_stage,
    Stage.EXPIRE: expire_stage,
    Stage.CONTROLS: controls_stage,
    Stage.PUBLISH: publish_stage,
})


def run_stage(connection: Connection, night: Night, stage: Stage, shard: int = 0,
              shard_count: int = 1):
    """Run one stage after ingest for the night (a sharded one for one shard)."""
    runner = STAGE_RUNNERS[stage]
    return runner(connection, night, shard, shard_count) if stage.is_sharded else runner(
        connection, night)
