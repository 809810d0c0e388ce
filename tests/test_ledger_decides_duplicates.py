"""What the ledger has seen is decided from the ledger: never from files beside it.

Each case is one a hostile tester found leaving wrong books while `check` passed: a
re-sent event across a DST change, a later night given an empty archive, two ledgers
sharing one archive, a failed night whose partition later nights trusted, and a night
posted out of order. Each asserts the books a clean run gives.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest

from creditbooks.night.ingest import NightOrderError
from creditbooks.night.run import run_night
from creditbooks.night.stages import DailyControlError
from intake.archive import ArchiveError
from intake.documents import InputFileError
from ledger.archive_index import recorded_partitions
from ledger.domain import Stage
from ledger.store import Store
from reports.controls import archive_matches_ledger, run_controls
from reports.trace import trace_usage
from rules.policy import DEFAULT_POLICY_FILE, load_policy
from tests.support.landing import write_document
from tests.support.nights import replace_stage

DAY = date(2026, 3, 2)


def _purchase(purchase_id: str, customer: str, purchased_at: str, credits: str = "100",
              amount: str = "100.00") -> dict:
    return {"purchase_id": purchase_id, "customer_id": customer, "purchased_at": purchased_at,
            "credits": credits, "amount": amount, "currency": "USD"}


def _event(event_id: str, occurred_at: str, credits: str = "1", customer: str = "C1") -> dict:
    return {"event_id": event_id, "customer_id": customer, "occurred_at": occurred_at,
            "meter": "api", "credits": credits}


def _post(store: Store, policy, root: Path, first: date, last: date, archive: Path | None = None):
    day = first
    while day <= last:
        run_night(store, policy, root / "landing", archive or root / "archive", day)
        day += timedelta(days=1)


def _usage_counts(store: Store) -> dict[str, tuple[int, int, int]]:
    """Per business date: usage rows accepted, duplicates, rejected."""
    counts = store.read_frame("""
        SELECT b.business_date, f.rows_accepted, f.rows_duplicate, f.rows_rejected
        FROM batch_files f JOIN batches b ON b.batch_id = f.batch_id
        WHERE f.document = 'usage' ORDER BY b.business_date""")
    return {str(row.business_date)[:10]: (int(row.rows_accepted), int(row.rows_duplicate),
                                           int(row.rows_rejected))
            for row in counts.itertuples(index=False)}


def _credits_burned_micro(store: Store) -> int:
    return int(store.read_frame("SELECT COALESCE(SUM(credits_micro), 0) AS n FROM burn_slices")
               ["n"][0])


def _assert_controls_pass(store: Store, policy) -> None:
    failures = [result for result in run_controls(store, policy.accounts.deferred_revenue,
                                                  policy.functional_currency)
                if not result.passed]
    assert failures == []


@pytest.fixture
def new_york_policy(tmp_path):
    text = DEFAULT_POLICY_FILE.read_text()
    assert 'reporting_timezone = "UTC"' in text
    path = tmp_path / "policy-new-york.toml"
    path.write_text(text.replace('reporting_timezone = "UTC"',
                                 'reporting_timezone = "America/New_York"'))
    return load_policy(path)


def _resend_across_spring_forward(store: Store, policy, tmp_path, occurred_at: str,
                                  also_on_resend: list[dict]) -> None:
    """A 2-credit event accepted on Saturday 2026-03-07 in New York, re-sent on 04-08."""
    landing = tmp_path / "landing"
    write_document(landing, "2026-03-07", "purchases", [
        _purchase("P-1", "C1", "2026-03-07T12:00:00-05:00")])
    resent = _event("E-1", occurred_at, credits="2")
    write_document(landing, "2026-03-07", "usage", [resent])
    write_document(landing, "2026-04-08", "usage", [resent, *also_on_resend])
    _post(store, policy, tmp_path, date(2026, 3, 7), date(2026, 4, 8))


@pytest.mark.slow  # 33 nights
def test_an_event_resent_32_days_later_across_spring_forward_is_a_duplicate(
        sqlite_store, new_york_policy, tmp_path):
    # Saturday 2026-03-07, 23:30 in New York (04:30Z on the 8th); clocks spring forward at
    # 02:00 on Sunday the 8th, so that day has 23 hours. On 2026-04-08 the late window
    # starts 31 x 24 hours before 00:00 EDT (04:00Z): 2026-03-08T04:00Z, before the event,
    # which is still inside it. A look-back of 31 calendar days (03-08 .. 04-07) misses
    # the night of 03-07 that accepted it.
    _resend_across_spring_forward(sqlite_store, new_york_policy, tmp_path,
                                  "2026-03-07T23:30:00-05:00",
                                  [_event("E-2", "2026-04-08T10:00:00-04:00")])
    counts = _usage_counts(sqlite_store)
    assert counts["2026-03-07"] == (1, 0, 0)
    assert counts["2026-04-08"] == (1, 1, 0)  # E-1 again is a duplicate; E-2 is new
    assert _credits_burned_micro(sqlite_store) == 3_000_000  # 2 + 1, E-1 burned once
    _assert_controls_pass(sqlite_store, new_york_policy)


@pytest.mark.slow  # 33 nights
def test_an_event_resent_after_its_window_closed_is_too_late_not_new(
        sqlite_store, new_york_policy, tmp_path):
    # 20:00 EST is 01:00Z on the 8th, three hours before the 04-08 window starts.
    _resend_across_spring_forward(sqlite_store, new_york_policy, tmp_path,
                                  "2026-03-07T20:00:00-05:00", [])
    quarantine = sqlite_store.read_frame(
        "SELECT business_date, column_name, reason FROM quarantine")
    assert [(str(row.business_date)[:10], row.column_name) for row in quarantine.itertuples()] == [
        ("2026-04-08", "occurred_at")]
    assert "more than 31 days before business date 2026-04-08" in quarantine["reason"][0]
    assert _credits_burned_micro(sqlite_store) == 2_000_000


def _resend_scenario(landing: Path) -> None:
    write_document(landing, "2026-03-01", "purchases", [_purchase("P-1", "C1", "2026-03-01T00:00:00Z")])
    write_document(landing, "2026-03-01", "usage", [
        _event("E-1", "2026-03-01T10:00:00Z"), _event("E-2", "2026-03-01T11:00:00Z", "2")])
    write_document(landing, "2026-03-02", "usage", [
        _event("E-1", "2026-03-01T10:00:00Z"), _event("E-2", "2026-03-01T11:00:00Z", "5"),
        _event("E-3", "2026-03-02T10:00:00Z")])


def test_a_later_night_given_a_new_empty_archive_finds_the_same_duplicates(
        store, policy, tmp_path):
    _resend_scenario(tmp_path / "landing")
    _post(store, policy, tmp_path, date(2026, 3, 1), date(2026, 3, 1))
    _post(store, policy, tmp_path, DAY, DAY, archive=tmp_path / "a-new-empty-archive")

    assert _usage_counts(store) == {"2026-03-01": (2, 0, 0), "2026-03-02": (1, 1, 1)}
    conflict = store.read_frame("SELECT kind, column_name, reason FROM quarantine")
    assert conflict.to_dict("records") == [{
        "kind": "conflict", "column_name": "event_id",
        "reason": "conflict: event_id was accepted on 2026-03-01 with different contents; "
                  "not overwritten"}]
    assert _credits_burned_micro(store) == 4_000_000  # 1 + 2 + 1


@pytest.mark.slow  # over a second here: not in make test-fast
def test_two_ledgers_sharing_one_archive_keep_their_own_partitions_and_duplicates(
        policy, tmp_path):
    shared_archive = tmp_path / "shared-archive"
    books = {}
    for name, e2_credits in (("a", "2"), ("b", "7")):
        root = tmp_path / name
        landing = root / "landing"
        _resend_scenario(landing)
        write_document(landing, "2026-03-01", "usage", [
            _event("E-1", "2026-03-01T10:00:00Z"), _event("E-2", "2026-03-01T11:00:00Z", e2_credits)])
        store = Store(f"sqlite:///{root / 'ledger.db'}")
        store.initialise()
        books[name] = (store, root)
    # Interleaved: each ledger's first night, then each one's second.
    for day in (date(2026, 3, 1), DAY):
        for store, root in books.values():
            _post(store, policy, root, day, day, archive=shared_archive)
    store_a, _ = books["a"]
    # Ledger A: E-1 is a duplicate, E-2 with 5 credits conflicts with A's own 2 credits.
    assert _usage_counts(store_a) == {"2026-03-01": (2, 0, 0), "2026-03-02": (1, 1, 1)}
    assert _credits_burned_micro(store_a) == 4_000_000
    store_b, _ = books["b"]
    assert _credits_burned_micro(store_b) == 9_000_000  # 1 + 7 + 1
    # A's partition of the first day is still the file A wrote, and trace reads it.
    assert trace_usage(store_a, shared_archive, "E-2")["event"]["credits"] == "2"
    assert trace_usage(store_b, shared_archive, "E-2")["event"]["credits"] == "7"
    for store, _ in books.values():
        _assert_controls_pass(store, policy)
        store.dispose()


def test_a_failed_night_is_in_no_look_back_and_the_next_night_waits_for_it(
        store, policy, tmp_path, monkeypatch):
    landing, archive = tmp_path / "landing", tmp_path / "archive"
    write_document(landing, "2026-03-01", "purchases", [_purchase("P-1", "C1", "2026-03-01T00:00:00Z")])
    write_document(landing, "2026-03-02", "usage", [_event("E-1", "2026-03-02T10:00:00Z", "3")])
    write_document(landing, "2026-03-03", "usage", [
        _event("E-1", "2026-03-02T10:00:00Z", "3"), _event("E-2", "2026-03-03T10:00:00Z")])
    _post(store, policy, tmp_path, date(2026, 3, 1), date(2026, 3, 1))

    def failing_controls(connection, night):
        raise DailyControlError(f"{night.batch_id} daily controls failed: simulated")

    with monkeypatch.context() as patched:
        replace_stage(patched, Stage.CONTROLS, failing_controls)
        with pytest.raises(DailyControlError):
            run_night(store, policy, landing, archive, DAY)
    assert list((archive / "usage").rglob("*.parquet"))  # the failed night left its partition
    with pytest.raises(NightOrderError, match="run the night of 2026-03-02 first"):
        run_night(store, policy, landing, archive, date(2026, 3, 3))

    # The corrected file of 03-02 no longer has E-1; 03-03 re-sends it: it is new there.
    (landing / "2026-03-02" / "usage.csv").unlink()
    assert run_night(store, policy, landing, archive, DAY).status == "empty"
    assert run_night(store, policy, landing, archive, date(2026, 3, 3)).status == "posted"
    assert _usage_counts(store) == {"2026-03-03": (2, 0, 0)}
    assert _credits_burned_micro(store) == 4_000_000
    # The failed run's file is still there, recorded by no batch, read by nothing.
    assert len(list((archive / "usage" / "business_date=2026-03-02").glob("*.parquet"))) == 1
    with store.engine.connect() as connection:
        assert [partition.business_date for partition in recorded_partitions(connection)
                if partition.document == "usage"] == [date(2026, 3, 3)]
    assert archive_matches_ledger(store, archive).passed
    _assert_controls_pass(store, policy)


def test_a_night_after_a_missing_day_is_refused_naming_the_day(sqlite_store, policy, tmp_path):
    landing, archive = tmp_path / "landing", tmp_path / "archive"
    write_document(landing, "2026-03-01", "purchases", [_purchase("P-1", "C1", "2026-03-01T00:00:00Z")])
    run_night(sqlite_store, policy, landing, archive, date(2026, 3, 1))
    with pytest.raises(NightOrderError) as refusal:
        run_night(sqlite_store, policy, landing, archive, date(2026, 3, 3))
    assert str(refusal.value) == (
        "business date 2026-03-03 cannot post yet: the night before it, 2026-03-02, has no "
        "nightly batch; run the night of 2026-03-02 first (nights post in order)")
    with pytest.raises(NightOrderError) as refusal:  # nor before the first night
        run_night(sqlite_store, policy, landing, archive, date(2026, 2, 27))
    assert str(refusal.value) == (
        "business date 2026-02-27 is before the ledger's first night 2026-03-01: nights post "
        "in order from the first, never before it (a period's close counts its days from the "
        "first night)")
    assert sqlite_store.read_frame("SELECT COUNT(*) AS n FROM batches")["n"][0] == 1


def test_a_missing_or_altered_partition_stops_its_readers_naming_it(sqlite_store, policy, tmp_path):
    _resend_scenario(tmp_path / "landing")
    _post(sqlite_store, policy, tmp_path, date(2026, 3, 1), DAY)
    archive = tmp_path / "archive"
    with sqlite_store.engine.connect() as connection:
        first = next(partition for partition in recorded_partitions(connection)
                     if partition.document == "usage")
    path = archive / first.relative_path
    original = path.read_bytes()
    path.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    with pytest.raises(ArchiveError, match="is not the file its batch wrote"):
        trace_usage(sqlite_store, archive, "E-1")
    path.unlink()
    with pytest.raises(ArchiveError, match=f"archive partition {path} .* is missing"):
        trace_usage(sqlite_store, archive, "E-1")
    path.write_bytes(original)
    assert trace_usage(sqlite_store, archive, "E-1")["event"]["credits"] == "1"


def test_staging_left_by_a_killed_night_is_removed(sqlite_store, policy, tmp_path):
    import socket

    archive = tmp_path / "archive"
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)
    dead_process = int(finished.stdout)
    leftover = archive / f".intake-{socket.gethostname()}-{dead_process}-abc123"
    (leftover / "today").mkdir(parents=True)
    alive = archive / f".intake-{socket.gethostname()}-{os.getpid()}-def456"
    alive.mkdir()
    write_document(tmp_path / "landing", "2026-03-01", "purchases",
                   [_purchase("P-1", "C1", "2026-03-01T00:00:00Z")])
    run_night(sqlite_store, policy, tmp_path / "landing", archive, date(2026, 3, 1))
    assert not leftover.exists()
    assert alive.exists()  # a running process's staging is never touched


@pytest.mark.slow  # over a second here: not in make test-fast
def test_an_archive_that_cannot_be_written_is_one_line(sqlite_store, policy, tmp_path):
    in_the_way = tmp_path / "a-file"
    in_the_way.write_text("not a directory")
    write_document(tmp_path / "landing", "2026-03-01", "purchases",
                   [_purchase("P-1", "C1", "2026-03-01T00:00:00Z")])
    result = subprocess.run(
        [str(Path(sys.executable).parent / "creditbooks"), "--db", sqlite_store.url, "nightly", "--date",
         "2026-03-01", "--landing", str(tmp_path / "landing"), "--archive", str(in_the_way / "archive")],
        capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"creditbooks: error: archive {in_the_way / 'archive'} cannot be written (Not a directory): "
        "give the nightly run write access or another --archive"]
    assert sqlite_store.read_frame("SELECT COUNT(*) AS n FROM batches")["n"][0] == 0


@pytest.mark.slow  # over a second here: not in make test-fast
def test_verify_with_the_archive_names_a_swapped_partition(sqlite_store, policy, tmp_path):
    _resend_scenario(tmp_path / "landing")
    _post(sqlite_store, policy, tmp_path, date(2026, 3, 1), DAY)
    archive = tmp_path / "archive"
    command = [str(Path(sys.executable).parent / "creditbooks"), "--db", sqlite_store.url,
               "verify", "--archive", str(archive), "--format", "json"]
    passed = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path)
    assert passed.returncode == 0, passed.stderr
    assert '"detail": "3 partitions, each as its batch recorded it"' in passed.stdout
    with sqlite_store.engine.connect() as connection:
        second = next(partition for partition in recorded_partitions(connection)
                      if partition.document == "usage" and partition.business_date == DAY)
    first_day = archive / "usage" / "business_date=2026-03-01"
    swapped = next(first_day.glob("*.parquet")).read_bytes()  # another day's partition
    (archive / second.relative_path).write_bytes(swapped)
    failed = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path)
    assert failed.returncode == 1
    assert "1 of 3 partitions differ; first: archive partition" in failed.stdout
    assert f"{second.relative_path} (batch nightly-2026-03-02, usage) is not the file" in failed.stdout
    assert len(failed.stderr.strip().splitlines()) == 1
    assert failed.stderr.startswith(
        "creditbooks: error: verification failed: archive partitions = ledger's record; first: "
        "1 of 3 partitions differ; first: archive partition")


def test_the_window_edge_is_one_instant_for_lateness_and_duplicates(sqlite_store, tmp_path):
    text = DEFAULT_POLICY_FILE.read_text()
    assert "late_window_days = 31" in text
    (tmp_path / "policy.toml").write_text(text.replace("late_window_days = 31",
                                                       "late_window_days = 2"))
    policy = load_policy(tmp_path / "policy.toml")
    landing = tmp_path / "landing"
    at_edge = _event("E-EDGE", "2026-03-01T00:00:00Z")        # the window of 03-03 starts here
    before_edge = _event("E-OLD", "2026-02-28T23:59:59.999999Z")
    also_at_edge = _event("E-EDGE-2", "2026-03-01T00:00:00Z")
    write_document(landing, "2026-02-28", "purchases", [_purchase("P-1", "C1", "2026-02-28T00:00:00Z")])
    write_document(landing, "2026-03-01", "usage", [at_edge, before_edge, also_at_edge])
    write_document(landing, "2026-03-03", "usage", [
        at_edge, before_edge, {**also_at_edge, "credits": "4"}])
    _post(sqlite_store, policy, tmp_path, date(2026, 2, 28), date(2026, 3, 3))
    assert _usage_counts(sqlite_store) == {"2026-03-01": (3, 0, 0), "2026-03-03": (0, 1, 2)}
    quarantine = sqlite_store.read_frame(
        "SELECT row_number, kind, column_name, reason FROM quarantine ORDER BY row_number")
    assert quarantine[["row_number", "kind", "column_name"]].values.tolist() == [
        [2, "rejected", "occurred_at"], [3, "conflict", "event_id"]]
    assert quarantine["reason"][0].endswith("is more than 2 days before business date 2026-03-03")
    assert _credits_burned_micro(sqlite_store) == 3_000_000


def test_a_copy_of_a_ledger_sharing_the_archive_keeps_its_evidence(policy, tmp_path):
    import shutil

    archive = tmp_path / "archive"
    original = Store(f"sqlite:///{tmp_path / 'a.db'}")
    original.initialise()
    _resend_scenario(tmp_path / "landing")
    _post(original, policy, tmp_path, date(2026, 3, 1), date(2026, 3, 1), archive=archive)
    original.dispose()
    shutil.copyfile(tmp_path / "a.db", tmp_path / "b.db")  # a restored backup: the same id
    copy = Store(f"sqlite:///{tmp_path / 'b.db'}")
    original = Store(f"sqlite:///{tmp_path / 'a.db'}")
    write_document(tmp_path / "other", "2026-03-02", "usage", [_event("E-9", "2026-03-02T09:00:00Z")])
    run_night(copy, policy, tmp_path / "other", archive, DAY)
    run_night(original, policy, tmp_path / "landing", archive, DAY)
    for store in (copy, original):
        assert archive_matches_ledger(store, archive).passed
        store.dispose()


def test_a_landing_root_that_does_not_exist_is_an_error_not_an_empty_day(
        sqlite_store, policy, tmp_path):
    with pytest.raises(InputFileError, match="is not a directory: check --landing"):
        run_night(sqlite_store, policy, tmp_path / "lnading", tmp_path / "archive", DAY)
    assert sqlite_store.read_frame("SELECT COUNT(*) AS n FROM batches")["n"][0] == 0


def _policy_with(tmp_path, name: str, **settings) -> object:
    text = DEFAULT_POLICY_FILE.read_text()
    for key, value in settings.items():
        line = next(line for line in text.splitlines() if line.startswith(f"{key} = "))
        text = text.replace(line, f"{key} = {value}")
    (tmp_path / name).write_text(text)
    return load_policy(tmp_path / name)


def test_a_night_with_a_shorter_window_never_lets_a_later_one_take_a_resend_for_new(
        sqlite_store, policy, tmp_path):
    short = _policy_with(tmp_path, "short.toml", late_window_days=1)
    landing, archive = tmp_path / "landing", tmp_path / "archive"
    write_document(landing, "2026-03-01", "purchases", [_purchase("P-1", "C1", "2026-03-01T00:00:00Z")])
    write_document(landing, "2026-03-01", "usage", [_event("E-1", "2026-03-01T10:00:00Z", "10")])
    write_document(landing, "2026-03-04", "usage", [_event("E-1", "2026-03-01T10:00:00Z", "10")])
    run_night(sqlite_store, policy, landing, archive, date(2026, 3, 1))
    run_night(sqlite_store, policy, landing, archive, date(2026, 3, 2))
    run_night(sqlite_store, short, landing, archive, date(2026, 3, 3))  # forgets 03-01's ids
    run_night(sqlite_store, policy, landing, archive, date(2026, 3, 4))  # 31 days again
    assert _usage_counts(sqlite_store) == {"2026-03-01": (1, 0, 0), "2026-03-04": (0, 0, 1)}
    reason = sqlite_store.read_frame("SELECT reason FROM quarantine")["reason"][0]
    assert reason == ("occurred_at: is before 2026-03-02T00:00:00+00:00, the oldest instant "
                      "whose event ids the ledger still holds (a shorter late window on an "
                      "earlier night let it forget them): it cannot be told apart from a "
                      "re-sent event")
    assert _credits_burned_micro(sqlite_store) == 10_000_000


def test_a_resend_is_found_after_the_reporting_timezone_moves_east(sqlite_store, tmp_path):
    los_angeles = _policy_with(tmp_path, "la.toml", late_window_days=1,
                               reporting_timezone='"America/Los_Angeles"')
    tokyo = _policy_with(tmp_path, "tokyo.toml", late_window_days=1,
                         reporting_timezone='"Asia/Tokyo"')
    landing, archive = tmp_path / "landing", tmp_path / "archive"
    event = _event("E", "2026-03-01T20:00:00-08:00", "10")  # 04:00Z on 03-02
    write_document(landing, "2026-03-01", "purchases", [_purchase("P-1", "C1", "2026-03-01T00:00:00Z")])
    write_document(landing, "2026-03-01", "usage", [event])
    write_document(landing, "2026-03-03", "usage", [event])
    run_night(sqlite_store, los_angeles, landing, archive, date(2026, 3, 1))
    run_night(sqlite_store, tokyo, landing, archive, date(2026, 3, 2))
    run_night(sqlite_store, tokyo, landing, archive, date(2026, 3, 3))
    assert _usage_counts(sqlite_store) == {"2026-03-01": (1, 0, 0), "2026-03-03": (0, 1, 0)}
    assert _credits_burned_micro(sqlite_store) == 10_000_000


@pytest.mark.parametrize("rate", ["10000", "1000000"])
def test_a_purchase_whose_functional_amount_is_past_the_bound_stops_the_night(
        sqlite_store, policy, tmp_path, rate):
    # 100,000,000,000.00 EUR is within a row's bound; at 10,000 (or 1,000,000) USD per EUR
    # its functional amount is not, and the ledger's functional totals would wrap.
    landing = tmp_path / "landing"
    write_document(landing, "2026-03-07", "purchases", [
        {**_purchase(f"P-{number}", f"C-{number}", "2026-03-07T00:00:00Z", "1000",
                     "100000000000.00"), "currency": "EUR"} for number in range(3)])
    write_document(landing, "2026-03-07", "fx_rates", [
        {"date": "2026-03-07", "currency": "EUR", "rate_to_functional": rate}])
    with pytest.raises(InputFileError) as refusal:
        run_night(sqlite_store, policy, landing, tmp_path / "archive", date(2026, 3, 7))
    assert str(refusal.value).startswith(
        "purchases.csv row 1 column amount: 100000000000.00 EUR with tax at rate "
        f"{rate} is {100_000_000_000 * int(rate):,}.00 USD, past the largest amount a row may "
        "carry (100000000000.00 USD); nothing was posted")
    assert sqlite_store.read_frame("SELECT COUNT(*) AS n FROM batches")["n"][0] == 0


def test_credits_owed_past_what_the_books_hold_stop_the_night_naming_the_customer(
        sqlite_store, tmp_path):
    negative = _policy_with(tmp_path, "negative.toml", overage='"negative_balance"')
    landing = tmp_path / "landing"
    for day in ("2026-03-01", "2026-03-02", "2026-03-03"):
        write_document(landing, day, "usage", [
            _event(f"{day}-{number}", f"{day}T10:00:00Z", "999999999.999999", customer="C-9")
            for number in range(4_000)])
    run_night(sqlite_store, negative, landing, tmp_path / "archive", date(2026, 3, 1))
    run_night(sqlite_store, negative, landing, tmp_path / "archive", date(2026, 3, 2))
    run_night(sqlite_store, negative, landing, tmp_path / "archive", date(2026, 3, 3))
    with pytest.raises(DailyControlError, match="customer C-9 owes "
                       "11999999999999.988 credits on meter api under negative_balance"):
        run_night(sqlite_store, negative, landing, tmp_path / "archive", date(2026, 3, 4))
