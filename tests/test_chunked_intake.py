"""A usage file taken in chunks posts exactly the books of the same file taken whole.

The day is built to cross every boundary the chunked intake has: copies of an id in
different chunks, an in-file conflict split across chunks, ids re-sent from the day
before (the same, and changed), rows validation refuses, late events, a customer with no
credits, and more buckets than one.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from creditbooks.night.run import run_night
from intake.archive import archived_path_in, read_partition
from intake.documents import InputFile, InputFileError, StreamedFile, open_document
from ledger.chain import chain_head
from ledger.store import Store
from tests.support.landing import write_document
from tests.support.scenario import NIGHTS, write_scenario

FIRST, SECOND = date(2026, 3, 1), date(2026, 3, 2)
TABLES = {
    "journal": """SELECT e.entry_id, e.kind, e.customer_id, l.line_number, l.account, l.currency,
                         l.amount_minor, l.functional_minor, l.meter, l.purchase_id
                  FROM journal_entries e JOIN journal_lines l ON l.entry_id = e.entry_id
                  ORDER BY e.entry_id, l.line_number""",
    "lot_balances": "SELECT * FROM lot_balances ORDER BY purchase_id",
    "batch_files": "SELECT * FROM batch_files ORDER BY batch_id, document",
    "quarantine": """SELECT batch_id, document, file_name, row_number, column_name, reason, kind,
                            raw_row FROM quarantine ORDER BY batch_id, row_number""",
    "usage_daily": "SELECT * FROM usage_daily ORDER BY business_date, customer_id, meter",
    "burn_slices": "SELECT * FROM burn_slices ORDER BY business_date, customer_id, purchase_id, "
                   "meter",
    "uncovered": "SELECT * FROM uncovered_usage ORDER BY business_date, customer_id, meter",
}


def _event(event_id: str, customer: str, hour: int, credits: str, meter: str = "api",
           day: date = SECOND) -> dict:
    return {"event_id": event_id, "customer_id": customer,
            "occurred_at": f"{day.isoformat()}T{hour:02d}:00:00Z", "meter": meter,
            "credits": credits}


def write_days(landing, file_format: str) -> None:
    write_document(landing, FIRST.isoformat(), "purchases", [
        {"purchase_id": f"P{number}", "customer_id": customer,
         "purchased_at": "2026-03-01T00:30:00Z", "credits": credits, "amount": amount,
         "currency": "USD", "expires_at": expires}
        for number, (customer, credits, amount, expires) in enumerate([
            ("alice", "100", "10.00", ""), ("alice", "50", "7.50", "2026-03-02T12:00:00Z"),
            ("bob", "40", "4.00", ""), ("carol", "5", "1.00", "")])])
    write_document(landing, FIRST.isoformat(), "usage", [
        _event("E1", "alice", 3, "1.5", day=FIRST), _event("E2", "bob", 4, "2", day=FIRST),
        _event("E3", "alice", 5, "0.25", day=FIRST)], file_format)
    events = [_event(f"N{number}", ("alice", "bob", "carol")[number % 3], number % 24,
                     f"{number % 7 + 1}.{number % 10}", ("api", "gpu")[number % 2])
              for number in range(40)]
    events[5] = _event("E1", "alice", 3, "1.5", day=FIRST)      # re-sent as it was: duplicate
    events[9] = _event("E2", "bob", 4, "3", day=FIRST)          # re-sent changed: conflict
    events[12] = dict(events[2])                                # copy in a later chunk
    events[30] = dict(events[2])                                # and another
    events[17] = {**events[14], "credits": "9"}                 # N14 changed: in-file conflict
    events[21] = {**events[20], "credits": "lots"}              # refused by validation
    events[26] = {**events[25], "customer_id": ""}              # refused by validation
    events[33] = _event("L1", "bob", 23, "2", day=FIRST)        # late
    events[36] = _event("D1", "dave", 8, "4")                   # no credits: uncovered
    write_document(landing, SECOND.isoformat(), "usage", events, file_format)


def _archived_usage(store: Store, archive, day: date) -> pd.DataFrame:
    """The day's archived events in file order (a chunked night archives them by bucket)."""
    return read_partition(archived_path_in(store, archive, "usage", day), "usage").drop(
        columns="source_file").sort_values(
        "source_row").reset_index(drop=True).astype(
        {"event_id": object, "customer_id": object, "meter": object})


def _books(store: Store, archive) -> dict:
    books = {name: store.read_frame(query) for name, query in TABLES.items()}
    for day in (FIRST, SECOND):
        books[f"archive {day}"] = _archived_usage(store, archive, day)
    with store.engine.connect() as connection:
        books["chain head"] = chain_head(connection)
    return books


@pytest.mark.slow  # over a second here: not in make test-fast
@pytest.mark.parametrize("file_format", ["parquet", "csv", "jsonl"])
def test_a_chunked_night_posts_the_books_of_a_whole_file_night(tmp_path, policy, file_format):
    write_days(tmp_path / "landing", file_format)
    clock = lambda: datetime(2026, 3, 3, 1, tzinfo=UTC)  # noqa: E731
    books, outcomes = {}, {}
    for chunk_rows in (None, 4):
        root = tmp_path / f"chunks-{chunk_rows}"
        store = Store(f"sqlite:///{root}.db")
        store.initialise()
        for day in (FIRST, SECOND):
            outcomes[chunk_rows] = run_night(store, policy, tmp_path / "landing",
                                             root / "archive", day, clock=clock,
                                             chunk_rows=chunk_rows)
        books[chunk_rows] = _books(store, root / "archive")
        store.dispose()
    whole, chunked = books[None], books[4]
    for name in whole:
        if isinstance(whole[name], pd.DataFrame):
            pd.testing.assert_frame_equal(chunked[name], whole[name], obj=name)
        else:
            assert chunked[name] == whole[name], name
    assert outcomes[4].as_row() == outcomes[None].as_row()
    # The figures themselves, so that two equally wrong runs cannot pass.
    second = whole["batch_files"][whole["batch_files"]["batch_id"] == "nightly-2026-03-02"].iloc[0]
    assert (second["rows_read"], second["rows_accepted"], second["rows_duplicate"],
            second["rows_rejected"]) == (40, 32, 3, 5)
    quarantined = whole["quarantine"][whole["quarantine"]["batch_id"] == "nightly-2026-03-02"]
    assert quarantined[["row_number", "kind", "column_name"]].values.tolist() == [
        [10, "conflict", "event_id"], [15, "conflict", "event_id"],
        [18, "conflict", "event_id"], [22, "rejected", "credits"],
        [27, "rejected", "customer_id"]]
    assert '"credits": "lots"' in quarantined["raw_row"].str.cat()
    dave = whole["uncovered"][whole["uncovered"]["customer_id"] == "dave"]
    assert dave["credits_micro"].tolist() == [4_000_000]
    assert len(whole["archive 2026-03-02"]) == 32
    assert len(list((tmp_path / "chunks-4" / "archive").glob(".intake-*"))) == 0


def test_a_broken_row_in_a_later_chunk_stops_the_night_naming_the_file_and_line(tmp_path, policy,
                                                                                 sqlite_store):
    write_days(tmp_path / "landing", "csv")
    usage = tmp_path / "landing" / SECOND.isoformat() / "usage.csv"
    lines = usage.read_text().splitlines()
    lines[31] += ",surplus"  # the 31st row: a field more than the header has
    usage.write_text("\n".join(lines) + "\n")
    run_night(sqlite_store, policy, tmp_path / "landing", tmp_path / "archive", FIRST)
    messages = []
    for chunk_rows in (None, 4):
        with pytest.raises(InputFileError) as raised:
            run_night(sqlite_store, policy, tmp_path / "landing", tmp_path / "archive", SECOND,
                      chunk_rows=chunk_rows)
        messages.append(str(raised.value))
    assert messages[0] == messages[1]
    assert messages[1] == ("usage.csv row 31: 6 field(s) but the header has 5; every row needs "
                           "exactly one field per column (a stray or missing comma, or an "
                           "unquoted comma in a value?)")
    assert sqlite_store.read_frame("SELECT COUNT(*) AS n FROM batches WHERE business_date = "
                                   "'2026-03-02'")["n"][0] == 0
    assert not (tmp_path / "archive" / "usage" / "business_date=2026-03-02").exists()
    assert not list((tmp_path / "archive").glob(".intake-*"))  # the spilled chunks are gone


@pytest.mark.parametrize("file_format", ["parquet", "csv", "jsonl"])
def test_only_a_file_of_more_rows_than_a_chunk_is_streamed(tmp_path, file_format):
    write_days(tmp_path / "landing", file_format)
    path = tmp_path / "landing" / SECOND.isoformat() / f"usage.{file_format}"
    held = open_document("usage", path, 40)
    streamed = open_document("usage", path, 39)
    assert isinstance(held, InputFile) and len(held.frame) == 40
    assert isinstance(streamed, StreamedFile) and streamed.sha256 == held.sha256
    chunks = list(streamed.chunks())
    assert [len(chunk) for chunk in chunks] == [39, 1]
    assert pd.concat(chunks, ignore_index=True).equals(held.frame)


@pytest.mark.slow  # over a second here: not in make test-fast
def test_the_hand_worked_nights_in_chunks_of_two_rows_post_the_same_books(tmp_path, policy):
    """Re-sent events, a conflict and a refused row in files of three and five rows: a chunk
    can hold nothing accepted, and the archive must still take the ones after it."""
    write_scenario(tmp_path / "landing")
    books = {}
    for chunk_rows in (None, 2):
        root = tmp_path / f"chunks-{chunk_rows}"
        store = Store(f"sqlite:///{root}.db")
        store.initialise()
        for night in NIGHTS:
            run_night(store, policy, tmp_path / "landing", root / "archive", night,
                      clock=lambda: datetime(2026, 2, 2, tzinfo=UTC), chunk_rows=chunk_rows)
        books[chunk_rows] = {name: store.read_frame(query) for name, query in TABLES.items()}
        with store.engine.connect() as connection:
            books[chunk_rows]["chain head"] = chain_head(connection)
        books[chunk_rows]["archive"] = _archived_usage(store, root / "archive", NIGHTS[-1])
        store.dispose()
    for name, whole in books[None].items():
        if isinstance(whole, pd.DataFrame):
            pd.testing.assert_frame_equal(books[2][name], whole, obj=name)
        else:
            assert books[2][name] == whole, name
    assert books[2]["archive"]["event_id"].tolist() == ["U5", "U6"]


_EVENT = st.builds(
    lambda number, customer, hour, credits, late: _event(
        f"E{number}", customer, hour, credits, day=FIRST if late else SECOND),
    st.integers(0, 4), st.sampled_from(["alice", "bob", "dave"]), st.integers(0, 23),
    st.sampled_from(["1", "2.5", "0.000001", "7", "0", "x"]), st.booleans())


@pytest.mark.slow  # over a second here: not in make test-fast
@settings(max_examples=20, deadline=None)
@given(earlier=st.lists(_EVENT, min_size=1, max_size=5), today=st.lists(_EVENT, min_size=1, max_size=12),
       chunk_rows=st.integers(1, 5))
def test_any_usage_file_in_any_chunk_size_posts_the_books_of_the_whole_file(
        policy, earlier, today, chunk_rows):
    """Ids drawn from five, so repeats, conflicts with the day before and refused rows abound."""
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        write_document(root / "landing", FIRST.isoformat(), "purchases", [
            {"purchase_id": "P1", "customer_id": "alice", "purchased_at": "2026-02-28T00:00:00Z",
             "credits": "20", "amount": "2.00", "currency": "USD"}])
        earlier = [{**row, "occurred_at": row["occurred_at"].replace("03-02", "03-01")}
                   for row in earlier]
        if earlier:
            write_document(root / "landing", FIRST.isoformat(), "usage", earlier)
        write_document(root / "landing", SECOND.isoformat(), "usage", today)
        books = {}
        for rows in (None, chunk_rows):
            store = Store(f"sqlite:///{root / f'chunks-{rows}.db'}")
            store.initialise()
            for day in (FIRST, SECOND):
                run_night(store, policy, root / "landing", root / f"archive-{rows}", day,
                          clock=lambda: datetime(2026, 3, 3, tzinfo=UTC), chunk_rows=rows)
            books[rows] = _books(store, root / f"archive-{rows}")
            store.dispose()
        for name, whole in books[None].items():
            if isinstance(whole, pd.DataFrame):
                pd.testing.assert_frame_equal(books[chunk_rows][name], whole, obj=name)
            else:
                assert books[chunk_rows][name] == whole, name
