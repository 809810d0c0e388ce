"""Burn-down: which lot each credit of the day's usage comes from, for all customers at once.

The rule (event by event): a usage event at time t burns credits from its customer's
lots active at t (`purchased_at <= t < expires_at`), in the policy's burn order, taking
from the first lot with credits left and moving on when it is empty; credits no active
lot covers are uncovered usage. Events burn in time order (ties by event id). Late
events (occurred before the business day) burn at the start of the day.

Vectorised form. Within one customer, the set of active lots changes only at the
instants a lot is purchased or expires during the day ("change points"), so the day
splits into segments with a fixed lot order. Inside a segment, burning event after
event in a fixed order is the same as laying events end to end on a credit line
[0, total) and lots end to end on the same line: the piece between two consecutive
boundaries belongs to exactly one event and one lot (or to no lot: uncovered). One
sort over all customers' boundaries finds every piece. Segments run in sequence
(a segment starts with the credits the previous one left), so the only Python loop is
over segment numbers, bounded by the busiest customer's change points, never per
event or per customer. Every quantity is integer micro-credits, so the split is exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ledger.periods import BusinessDay


@dataclass(frozen=True)
class BurnResult:
    slices: pd.DataFrame  # customer_id, purchase_id, meter, credits_micro
    uncovered: pd.DataFrame  # customer_id, meter, credits_micro, event_count


# Per-credit values are fractions amount_minor / credits_micro; scaled by this and floored
# they keep their exact order (two distinct fractions with denominators below 10**20
# differ by more than 10**-40), as Python integers.
_PER_CREDIT_SCALE = 10**40


def burn_order_ranks(lots: pd.DataFrame, order: tuple[str, ...]) -> pd.Series:
    """Each lot's position in the burn order (0 burns first), compared exactly.

    One sort over all lots; never-expiring lots sort after every expiring one.
    """
    if lots.empty:
        return pd.Series([], index=lots.index, dtype=np.int64)
    keys = pd.DataFrame({
        "priority": lots["priority"].to_numpy(),
        "expires_at": lots["expires_at"].to_numpy(),
        "per_credit_value": [amount * _PER_CREDIT_SCALE // credits for amount, credits in zip(
            lots["amount_minor"].tolist(), lots["credits_micro"].tolist(), strict=True)],
        "purchased_at": lots["purchased_at"].to_numpy(),
        "purchase_id": lots["purchase_id"].to_numpy(),
    }, index=lots.index)
    ordered = keys.sort_values(list(order), na_position="last", kind="stable").index
    ranks = pd.Series(np.arange(len(keys), dtype=np.int64), index=ordered)
    return ranks.reindex(lots.index)


def burn(events: pd.DataFrame, lots: pd.DataFrame, day: BusinessDay) -> BurnResult:
    """Burn the day's accepted events against the lots.

    events: event_id, customer_id, occurred_at, meter, credits_micro.
    lots: purchase_id, customer_id, purchased_at, expires_at, credits_available_micro,
    burn_rank. Returns the credits each lot gave to each (customer, meter), and the
    uncovered credits per (customer, meter).
    """
    if events.empty:
        return BurnResult(_empty_slices(), _empty_uncovered())
    customer_codes, customer_ids = pd.factorize(
        pd.concat([events["customer_id"], lots["customer_id"]], ignore_index=True)
    )
    events = events.assign(customer=customer_codes[: len(events)])
    lots = lots.reset_index(drop=True).assign(customer=customer_codes[len(events):])
    events = _assign_segments(events, lots, day)
    available = lots["credits_available_micro"].to_numpy(dtype=np.int64).copy()
    pieces = []
    for segment_number in np.sort(events["segment"].unique()):
        segment_events = events[events["segment"] == segment_number]
        segment_pieces = _burn_segment(segment_events, lots, available)
        np.subtract.at(
            available,
            segment_pieces["lot"].to_numpy()[segment_pieces["lot"].to_numpy() >= 0],
            segment_pieces["credits_micro"].to_numpy()[segment_pieces["lot"].to_numpy() >= 0],
        )
        pieces.append(segment_pieces)
    return _summarise(pd.concat(pieces, ignore_index=True), lots, np.asarray(customer_ids))


def _assign_segments(events: pd.DataFrame, lots: pd.DataFrame, day: BusinessDay) -> pd.DataFrame:
    """Number each event's segment and give the instant the segment starts."""
    effective_at = events["occurred_at"].where(
        events["occurred_at"] >= day.starts_at_utc, day.starts_at_utc
    )
    events = events.assign(effective_at=effective_at)
    instants = pd.concat([
        lots[["customer", "purchased_at"]].rename(columns={"purchased_at": "changes_at"}),
        lots[["customer", "expires_at"]].rename(columns={"expires_at": "changes_at"}),
    ])
    inside_day = (instants["changes_at"] > day.starts_at_utc) & (
        instants["changes_at"] < day.ends_at_utc
    )
    instants = instants[inside_day & instants["customer"].isin(events["customer"])]
    instants = instants.drop_duplicates().sort_values(["customer", "changes_at"])
    instants["segment"] = instants.groupby("customer").cumcount() + 1
    events = events.sort_values("effective_at", kind="stable")
    if len(instants):
        events = pd.merge_asof(
            events,
            instants.sort_values("changes_at"),
            left_on="effective_at",
            right_on="changes_at",
            by="customer",
            direction="backward",
        )
        events["segment"] = events["segment"].fillna(0).astype("int64")
        events["segment_starts_at"] = events["changes_at"].fillna(day.starts_at_utc)
    else:
        events = events.assign(segment=0, segment_starts_at=day.starts_at_utc)
    return events.iloc[_burn_sequence(events)].reset_index(drop=True)


def _burn_sequence(events: pd.DataFrame) -> np.ndarray:
    """Row order of the burn: customer, effective instant, occurrence, then event id.

    The first three keys are integers, sorted in one lexsort; the event id only breaks
    ties, so only tied rows compare their ids as text.
    """
    customer = events["customer"].to_numpy()
    effective = pd.DatetimeIndex(events["effective_at"]).as_unit("us").asi8
    occurred = pd.DatetimeIndex(events["occurred_at"]).as_unit("us").asi8
    order = np.lexsort((occurred, effective, customer))
    keys = np.column_stack([customer[order], effective[order], occurred[order]])
    tied_with_next = (keys[1:] == keys[:-1]).all(axis=1)
    if not tied_with_next.any():
        return order
    tied = np.zeros(len(order), dtype=bool)
    tied[:-1] |= tied_with_next
    tied[1:] |= tied_with_next
    id_rank = np.zeros(len(events), dtype=np.int64)
    tied_rows = order[tied]
    tied_ids = events["event_id"].to_numpy()[tied_rows].astype(object)
    id_rank[tied_rows[np.argsort(tied_ids, kind="stable")]] = np.arange(len(tied_rows))
    return np.lexsort((id_rank, occurred, effective, customer))


def _burn_segment(events: pd.DataFrame, lots: pd.DataFrame, available: np.ndarray) -> pd.DataFrame:
    """Lay one segment's events and eligible lots end to end; return the pieces."""
    starts = events.groupby("customer", sort=False)["segment_starts_at"].first()
    candidate = lots[lots["customer"].isin(starts.index)].copy()
    candidate["lot"] = candidate.index.to_numpy()
    candidate["available"] = available[candidate["lot"].to_numpy()]
    segment_start = candidate["customer"].map(starts)
    active = (candidate["purchased_at"] <= segment_start) & (
        candidate["expires_at"].isna() | (candidate["expires_at"] > segment_start)
    )
    candidate = candidate[active & (candidate["available"] > 0)]
    candidate = candidate.sort_values(["customer", "burn_rank"], kind="stable")
    lot_ends = candidate.groupby("customer", sort=False)["available"].cumsum()
    event_ends = events.groupby("customer", sort=False)["credits_micro"].cumsum()
    customer = np.concatenate([events["customer"].to_numpy(), candidate["customer"].to_numpy()])
    position = np.concatenate([event_ends.to_numpy(), lot_ends.to_numpy()])
    event = np.concatenate([np.arange(len(events)), np.full(len(candidate), -1)])
    lot = np.concatenate([np.full(len(events), -1), candidate["lot"].to_numpy()])
    # By customer, then position; at one position an event's end sorts before a lot's.
    order = np.lexsort((np.arange(len(position)), position, customer))
    customer, position, event, lot = customer[order], position[order], event[order], lot[order]
    customer_starts = np.r_[True, customer[1:] != customer[:-1]]
    piece_starts = np.r_[0, position[:-1]]
    piece_starts[customer_starts] = 0
    # Each piece belongs to the next event end and the next lot end after it (same customer).
    event = _next_boundary(event, customer)
    lot = _next_boundary(lot, customer)
    length = position - piece_starts
    pieces = (length > 0) & (event >= 0)
    event_rows = event[pieces]
    return pd.DataFrame({
        "event_id": events["event_id"].to_numpy()[event_rows],
        "customer": customer[pieces],
        "meter": events["meter"].to_numpy()[event_rows],
        "lot": lot[pieces],
        "credits_micro": length[pieces].astype(np.int64),
    })


def _next_boundary(owners: np.ndarray, customer: np.ndarray) -> np.ndarray:
    """For each sorted boundary, the owner (>= 0) of the next boundary at or after it that
    has one, within the same customer; -1 when the customer has none left."""
    count = len(owners)
    rows = np.where(owners >= 0, np.arange(count), count)
    next_row = np.minimum.accumulate(rows[::-1])[::-1]
    found = next_row < count
    found[found] = customer[next_row[found]] == customer[found]
    result = np.full(count, -1, dtype=np.int64)
    result[found] = owners[next_row[found]]
    return result


def _summarise(pieces: pd.DataFrame, lots: pd.DataFrame, customer_ids: np.ndarray) -> BurnResult:
    covered = pieces[pieces["lot"] >= 0]
    slices = covered.groupby(["lot", "meter"], as_index=False)["credits_micro"].sum()
    slices["purchase_id"] = lots["purchase_id"].to_numpy()[slices["lot"].to_numpy()]
    slices["customer_id"] = lots["customer_id"].to_numpy()[slices["lot"].to_numpy()]
    uncovered_pieces = pieces[pieces["lot"] < 0]
    uncovered = uncovered_pieces.groupby(["customer", "meter"], as_index=False).agg(
        credits_micro=("credits_micro", "sum"), event_count=("event_id", "nunique")
    )
    uncovered["customer_id"] = customer_ids[uncovered["customer"].to_numpy(dtype=np.int64)]
    return BurnResult(
        slices[["customer_id", "purchase_id", "meter", "credits_micro"]]
        .sort_values(["customer_id", "purchase_id", "meter"]).reset_index(drop=True),
        uncovered[["customer_id", "meter", "credits_micro", "event_count"]]
        .sort_values(["customer_id", "meter"]).reset_index(drop=True),
    )


def _empty_slices() -> pd.DataFrame:
    return pd.DataFrame({"customer_id": pd.Series(dtype=object),
                         "purchase_id": pd.Series(dtype=object),
                         "meter": pd.Series(dtype=object),
                         "credits_micro": pd.Series(dtype="int64")})


def _empty_uncovered() -> pd.DataFrame:
    return pd.DataFrame({"customer_id": pd.Series(dtype=object),
                         "meter": pd.Series(dtype=object),
                         "credits_micro": pd.Series(dtype="int64"),
                         "event_count": pd.Series(dtype="int64")})
