"""Purchases and refunds from Stripe exports post the books of the same purchases written in
the file contract; a malformed Stripe object is quarantined naming its Stripe field;
amounts in Stripe's smallest units convert exactly (zero-decimal and special currencies).
A night lands and archives on object storage (s3://, against a local S3-compatible server
this file starts on 127.0.0.1: moto's server mode) and posts the books it posts from disk.

The samples (tests/fixtures/stripe/) are one set of purchases twice: Stripe objects as the
API's list endpoints return them (`stripe/`) and the contract's CSV (`contract/`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from creditbooks.night.run import run_night
from creditbooks.pipeline import LandingNotReadyError, wait_for_landing
from intake import object_storage
from intake.archive import ArchiveError, PartitionWriter, verified_path
from intake.stripe import StripeMapping, read_stripe_document, stripe_amount_text
from ledger.anchors import Anchor, anchor_file, anchor_lines, append_anchor
from ledger.archive_adoption import ArchiveAdoptionError
from ledger.archive_index import recorded_partitions
from ledger.chain import ChainHead, chain_head
from ledger.evidence import verify_evidence
from ledger.money import parse_amount_minor
from ledger.store import Store
from ledger.upgrade import upgrade_ledger
from reports.controls import archive_matches_ledger
from reports.subledger import exceptions
from reports.trace import trace_usage
from rules.policy import DEFAULT_POLICY_FILE, PolicyError, load_policy, policy_from_document
from tests.support.landing import write_document
from tests.support.postgres_server import free_port

FIXTURES = Path(__file__).parent / "fixtures" / "stripe"
FIRST, SECOND = date(2026, 3, 1), date(2026, 3, 2)
STRIPE_POLICY = {"sources": {"purchases": {"format": "stripe"}}}
BOOKS = {
    "trial balance": """SELECT l.account, l.currency, SUM(l.amount_minor) AS amount_minor,
                               SUM(l.functional_minor) AS functional_minor
                        FROM journal_lines l GROUP BY l.account, l.currency
                        ORDER BY l.account, l.currency""",
    "journal": """SELECT e.entry_id, e.kind, e.business_date, e.customer_id, e.source_ref,
                         l.line_number, l.account, l.currency, l.amount_minor, l.meter,
                         l.purchase_id, l.functional_minor
                  FROM journal_entries e JOIN journal_lines l ON l.entry_id = e.entry_id
                  ORDER BY e.entry_id, l.line_number""",
    "lots": """SELECT purchase_id, customer_id, purchased_at, expires_at, credits_micro,
                      amount_minor, tax_minor, currency, kind, product, priority, country
               FROM lots ORDER BY purchase_id""",
    "lot balances": "SELECT * FROM lot_balances ORDER BY purchase_id",
    "refunds": "SELECT refund_id, purchase_id, credits_micro FROM refunds ORDER BY refund_id",
}


def _clock():
    return datetime(2026, 3, 3, 1, tzinfo=UTC)


def _land_common(landing: Path) -> None:
    """The usage and rates both landings share: only purchases and refunds differ."""
    write_document(landing, "2026-03-01", "fx_rates", [
        {"date": "2026-03-01", "currency": "JPY", "rate_to_functional": "0.0067"},
        {"date": "2026-03-01", "currency": "ISK", "rate_to_functional": "0.0072"}])
    write_document(landing, "2026-03-01", "usage", [
        {"event_id": "e1", "customer_id": "cus_A", "occurred_at": "2026-03-01T12:00:00Z",
         "meter": "api", "credits": "30"},
        {"event_id": "e2", "customer_id": "cus_B", "occurred_at": "2026-03-01T12:00:00Z",
         "meter": "api", "credits": "10"},
        {"event_id": "e3", "customer_id": "cus_C", "occurred_at": "2026-03-01T13:00:00Z",
         "meter": "api", "credits": "12.5"},
        {"event_id": "e4", "customer_id": "cus_D", "occurred_at": "2026-03-01T14:00:00Z",
         "meter": "api", "credits": "4"},
        {"event_id": "e6", "customer_id": "cus_E", "occurred_at": "2026-03-01T16:00:00Z",
         "meter": "api", "credits": "5"}])
    write_document(landing, "2026-03-02", "usage", [
        {"event_id": "e5", "customer_id": "cus_A", "occurred_at": "2026-03-02T08:00:00Z",
         "meter": "api", "credits": "10"}])


def _land(landing: Path, samples: str) -> None:
    shutil.copytree(FIXTURES / samples, landing)
    _land_common(landing)


def _post(root: Path, samples: str, policy, landing=None, archive=None) -> dict:
    """Post both nights (landing and archive under `root` unless given) and read the books."""
    if landing is None:
        landing = root / "landing"
        _land(landing, samples)
    store = Store(f"sqlite:///{root / 'ledger.db'}")
    store.initialise()
    try:
        for day in (FIRST, SECOND):
            outcome = run_night(store, policy, landing, archive or root / "archive", day,
                                clock=_clock)
            assert outcome.status == "posted", outcome
        books = {name: store.read_frame(query) for name, query in BOOKS.items()}
        books["quarantine"] = store.read_frame("SELECT * FROM quarantine")
        books["batch files"] = store.read_frame(
            "SELECT document, rows_read, rows_accepted, rows_rejected FROM batch_files "
            "ORDER BY batch_id, document")
        with store.engine.connect() as connection:
            books["chain head"] = chain_head(connection)
    finally:
        store.dispose()
    return books


@pytest.mark.slow  # over a second here: not in make test-fast
def test_stripe_exports_post_the_books_of_the_same_purchases_in_the_contract(tmp_path):
    contract_policy = load_policy()
    contract = _post(tmp_path / "contract", "contract", contract_policy)
    # Where the files come from is not a recognition rule: the version (on every sealed
    # entry) is the same, so the chain heads can be equal.
    shipped = tomllib.loads(DEFAULT_POLICY_FILE.read_text(encoding="utf-8"))
    stripe_policy = policy_from_document(shipped | STRIPE_POLICY)
    assert stripe_policy.version == contract_policy.version
    stripe = _post(tmp_path / "stripe", "stripe", stripe_policy)
    assert contract["quarantine"].empty and stripe["quarantine"].empty
    for name in (*BOOKS, "batch files"):
        assert stripe[name].equals(contract[name]), name
    assert stripe["chain head"] == contract["chain head"]
    lots = stripe["lots"].set_index("purchase_id")
    # Stripe's smallest units became ISO minor units: JPY is zero-decimal in both, ISK is
    # two-decimal in Stripe's API (500000 = 5,000 kr) and zero-decimal in ISO 4217.
    assert lots.loc["pi_3C1", ["amount_minor", "tax_minor", "currency"]].tolist() == [1500, 150,
                                                                                       "JPY"]
    assert lots.loc["credgr_d1", ["amount_minor", "currency"]].tolist() == [5000, "ISK"]
    assert lots.loc["pi_3A1", ["amount_minor", "tax_minor", "credits_micro"]].tolist() == [
        1000, 80, 100_000_000]
    assert lots.loc["credgr_b1", ["credits_micro", "priority"]].tolist() == [50_000_000, 10]
    assert lots.loc["credgr_a2", ["kind", "amount_minor"]].tolist() == ["promotional", 0]
    # A paid invoice: amount_paid less total_taxes, in JPY (zero-decimal), paid_at its time.
    assert lots.loc["in_1E1", ["amount_minor", "tax_minor", "currency", "credits_micro",
                               "country"]].tolist() == [3000, 300, "JPY", 25_000_000, "JP"]
    assert str(lots.loc["in_1E1", "purchased_at"]).startswith("2026-03-01 15:00:00")
    assert stripe["refunds"].values.tolist() == [["re_a1", "pi_3A1", 20_000_000]]
    with pytest.raises(AssertionError):  # the comparison can fail: a changed figure shows
        assert stripe["lots"].assign(amount_minor=1).equals(contract["lots"])


@pytest.mark.slow  # over a second here: not in make test-fast
def test_the_stripe_files_are_archived_as_landed_and_checked_like_every_partition(tmp_path):
    _post(tmp_path, "stripe", policy_from_document(STRIPE_POLICY))
    store = Store(f"sqlite:///{tmp_path / 'ledger.db'}")
    with store.engine.connect() as connection:
        partitions = {partition.document: partition
                      for partition in recorded_partitions(connection)}
    assert sorted(partitions) == ["purchases", "purchases_source", "refunds", "refunds_source",
                                  "usage"]
    archive = tmp_path / "archive"
    for document, day, rows in (("purchases", "2026-03-01", 6), ("refunds", "2026-03-02", 1)):
        original = archive / partitions[f"{document}_source"].relative_path
        assert original.read_bytes() == (FIXTURES / "stripe" / day /
                                         f"{document}.jsonl").read_bytes()
        assert partitions[f"{document}_source"].relative_path.startswith(
            f"{document}_source/business_date={day}/")
        assert partitions[f"{document}_source"].row_count == rows
    assert archive_matches_ledger(store, archive).passed  # --archive checks them too
    original = archive / partitions["purchases_source"].relative_path
    original.write_bytes(original.read_bytes().replace(b'"credits": "25"', b'"credits": "95"'))
    check = archive_matches_ledger(store, archive)
    assert not check.passed and "purchases_source" in check.detail
    store.dispose()


def _stripe_nights(tmp_path: Path, landing: Path, *days) -> Store:
    """A new ledger at tmp_path / ledger.db with the Stripe policy's nights of `days` run
    from `landing`; the open store."""
    store = Store(f"sqlite:///{tmp_path / 'ledger.db'}")
    store.initialise()
    policy = policy_from_document(STRIPE_POLICY)
    for day in days:
        run_night(store, policy, landing, tmp_path / "archive", day, clock=_clock)
    return store


def _line(**fields) -> str:
    return json.dumps(fields) + "\n"


GRANT = {"object": "billing.credit_grant", "customer": "cus_A", "category": "paid",
         "amount": {"type": "monetary", "monetary": {"currency": "usd", "value": 1000}},
         "created": 1772355600, "effective_at": 1772355600, "expires_at": None,
         "priority": 50, "metadata": {}, "voided_at": None}
SESSION = {"object": "checkout.session", "customer": "cus_A", "currency": "usd",
           "amount_total": 1000, "total_details": {"amount_tax": 0}, "created": 1772355600,
           "payment_status": "paid", "metadata": {"credits": "10"}}
INVOICE = {"object": "invoice", "customer": "cus_A", "currency": "usd", "amount_paid": 1100,
           "total": 1100, "status": "paid", "status_transitions": {"paid_at": 1772355600},
           "total_taxes": [{"amount": 100, "tax_behavior": "exclusive", "taxable_amount": 1000,
                            "type": "tax_rate_details"}], "metadata": {"credits": "10"}}


def test_a_malformed_stripe_object_is_quarantined_naming_its_stripe_field(tmp_path):
    landing = tmp_path / "landing"
    day = landing / "2026-03-01"
    day.mkdir(parents=True)
    (day / "purchases.jsonl").write_text("".join([
        _line(**GRANT, id="credgr_ok"),
        _line(**{**GRANT, "amount": {"type": "monetary",
                                     "monetary": {"currency": "usd", "value": 10.5}}},
              id="credgr_fraction"),
        _line(**{**SESSION, "metadata": {"credits": "lots"}}, id="cs_words",
              payment_intent="pi_words"),
        _line(**{**SESSION, "payment_status": "unpaid"}, id="cs_unpaid",
              payment_intent="pi_unpaid"),
        _line(**{**GRANT, "amount": {"type": "monetary",
                                     "monetary": {"currency": "isk", "value": 50050}}},
              id="credgr_isk_fraction"),
        _line(**{**GRANT, "voided_at": 1772355700}, id="credgr_voided"),
        _line(**SESSION, id="cs_no_intent", payment_intent=None),
        _line(**{**GRANT, "category": "gift"}, id="credgr_gift"),
        _line(**{**INVOICE, "status": "open"}, id="in_open"),
        _line(**{**INVOICE, "total_taxes": [{"amount": 99.5}]}, id="in_fraction_tax"),
        _line(**{**INVOICE, "amount_paid": 600}, id="in_part_from_balance"),
        _line(**{**INVOICE, "status_transitions": {"paid_at": "yesterday"}}, id="in_when"),
        _line(**INVOICE, id="in_ok"),
    ]))
    store = _stripe_nights(tmp_path, landing, FIRST)
    quarantine = store.read_frame(
        "SELECT row_number, column_name, reason FROM quarantine ORDER BY row_number")
    named = dict(zip(quarantine["row_number"], quarantine["column_name"], strict=True))
    assert named == {2: "amount.monetary.value", 3: "metadata.credits", 4: "payment_status",
                     5: "amount.monetary.value", 6: "voided_at", 7: "payment_intent",
                     8: "category", 9: "status", 10: "total_taxes", 11: "amount_paid",
                     12: "status_transitions.paid_at"}
    reasons = dict(zip(quarantine["row_number"], quarantine["reason"], strict=True))
    assert reasons[2] == ("amount.monetary.value: must be an integer amount in the currency's "
                          "smallest unit, not '10.5'")
    assert reasons[3].startswith("metadata.credits: ")
    assert reasons[5].startswith("amount.monetary.value: 50050 ISK is 500.50 in major units")
    assert reasons[7].startswith("payment_intent: ")
    assert reasons[9] == ("status: is 'open'; only a paid invoice is a purchase (land it on "
                          "the day it is paid)")
    assert reasons[10].startswith("total_taxes: must be a list of taxes, each with an integer")
    assert reasons[11].startswith("amount_paid: is 600 but the invoice's total is 1100")
    raw = store.read_frame("SELECT raw_row FROM quarantine WHERE row_number = 2")["raw_row"]
    assert json.loads(raw.iloc[0])["amount"]["monetary"]["value"] == 10.5  # the object as landed
    files = store.read_frame("SELECT rows_read, rows_accepted, rows_rejected FROM batch_files")
    assert files.values.tolist() == [[13, 2, 11]]
    assert store.read_frame("SELECT purchase_id FROM lots ORDER BY purchase_id")[
        "purchase_id"].tolist() == ["credgr_ok", "in_ok"]
    store.dispose()


def test_an_unpaid_invoice_is_refused_naming_its_status_with_every_other_reason(tmp_path):
    landing = tmp_path / "landing"
    day = landing / "2026-03-01"
    day.mkdir(parents=True)
    (day / "purchases.jsonl").write_text("".join([
        _line(**{**INVOICE, "status": "open", "amount_paid": 0, "total": 11000}, id="in_open"),
        _line(**{**INVOICE, "status": "open", "amount_paid": 0,
                 "status_transitions": {"paid_at": "yesterday"}}, id="in_open_when"),
        _line(**{**GRANT, "amount": {"type": "custom_pricing_unit"}, "voided_at": 1772355700},
              id="credgr_voided_custom"),
    ]))
    store = _stripe_nights(tmp_path, landing, FIRST)
    quarantine = store.read_frame(
        "SELECT row_number, column_name, reason FROM quarantine ORDER BY row_number")
    assert [row["id"] for row in exceptions(store)] == ["in_open", "in_open_when",
                                                        "credgr_voided_custom"]
    store.dispose()
    unpaid = ("status: is 'open'; only a paid invoice is a purchase (land it on the day it "
              "is paid)")
    assert quarantine.values.tolist() == [
        [1, "status", unpaid],
        [2, "status", unpaid + "; status_transitions.paid_at: must be a Unix timestamp in "
                               "seconds, not 'yesterday'"],
        [3, "amount.type",
         "amount.type: is 'custom_pricing_unit'; only monetary credit grants are supported; "
         "amount.monetary.value: must be an integer amount in the currency's smallest unit, "
         "not ''; voided_at: the grant was voided; a voided grant is not a purchase (void one "
         "already posted with an adjustment)"]]


def test_an_invoice_s_tax_is_total_taxes_or_before_api_2025_03_31_its_tax(tmp_path):
    path = tmp_path / "purchases.jsonl"
    older = {key: value for key, value in INVOICE.items() if key != "total_taxes"}
    path.write_text("".join([
        _line(**{**INVOICE, "total_taxes": [{"amount": 60, "tax_behavior": "exclusive"},
                                            {"amount": 40, "tax_behavior": "inclusive"}]},
              id="in_two_taxes"),
        _line(**older, tax=150, id="in_older"),
        _line(**older, tax=None, id="in_untaxed"),
        _line(**{**INVOICE, "currency": "krw", "amount_paid": 11000, "total": 11000,
                 "total_taxes": [{"amount": 1000}]}, id="in_krw")]))
    frame = read_stripe_document("purchases", path, StripeMapping()).frame
    assert frame[["purchase_id", "amount", "tax_amount", "currency", "purchased_at"]
                 ].values.tolist() == [
        ["in_two_taxes", "10.00", "1.00", "USD", "2026-03-01T09:00:00Z"],
        ["in_older", "9.50", "1.50", "USD", "2026-03-01T09:00:00Z"],
        ["in_untaxed", "11.00", "0.00", "USD", "2026-03-01T09:00:00Z"],
        ["in_krw", "10000", "1000", "KRW", "2026-03-01T09:00:00Z"]]


def test_a_stripe_refund_that_did_not_succeed_or_names_no_lot_is_quarantined(tmp_path):
    landing = tmp_path / "landing"
    (landing / "2026-03-01").mkdir(parents=True)
    (landing / "2026-03-01" / "purchases.jsonl").write_text(
        _line(**SESSION, id="cs_1", payment_intent="pi_1"))
    (landing / "2026-03-02").mkdir()
    refund = {"object": "refund", "amount": 200, "currency": "usd", "created": 1772452800,
              "status": "succeeded", "metadata": {"credits": "2"}, "charge": "ch_1"}
    (landing / "2026-03-02" / "refunds.jsonl").write_text("".join([
        _line(**refund, id="re_ok", payment_intent="pi_1"),
        _line(**{**refund, "status": "pending"}, id="re_pending", payment_intent="pi_1"),
        _line(**refund, id="re_charge_only", payment_intent=None),
        _line(**{**refund, "amount": 300}, id="re_wrong_amount", payment_intent="pi_1"),
    ]))
    store = _stripe_nights(tmp_path, landing, FIRST, SECOND)
    quarantine = store.read_frame(
        "SELECT row_number, column_name, reason FROM quarantine WHERE document = 'refunds' "
        "ORDER BY row_number")
    assert quarantine["column_name"].tolist() == ["status", "payment_intent", "amount"]
    assert quarantine["reason"].iloc[0].startswith("status: is 'pending'")
    assert store.read_frame("SELECT refund_id, credits_micro FROM refunds").values.tolist() == [
        ["re_ok", 2_000_000]]
    store.dispose()


@pytest.mark.parametrize(("value", "currency", "text", "minor"), [
    (1500, "JPY", "1500", 1500),          # zero-decimal in Stripe and ISO 4217
    (5000, "UGX", "5000", 5000),          # zero-decimal in Stripe's list and ISO
    (500000, "ISK", "5000", 5000),        # Stripe's API: two decimals, always 00; ISO: none
    (5000, "MGA", "5000.00", 500000),     # Stripe: zero-decimal; ISO: two decimals
    (1999, "HUF", "19.99", 1999),         # two decimals in charges (payouts are whole)
    (12340, "KWD", "12.340", 12340),      # three decimals in both
    (1080, "USD", "10.80", 1080),
])
def test_stripe_amounts_become_iso_minor_units_exactly(value, currency, text, minor):
    assert stripe_amount_text(value, currency) == text
    assert parse_amount_minor(text, currency) == minor


def test_an_isk_amount_stripe_counts_in_hundredths_that_is_not_whole_is_refused():
    with pytest.raises(ValueError, match="50050 ISK is 500.50 in major units"):
        stripe_amount_text(50050, "ISK")


def test_the_purchases_source_is_checked_in_the_policy():
    with pytest.raises(PolicyError, match=r'\[sources.purchases\] format must be one of '
                                          r'"contract", "stripe", not "orb"'):
        policy_from_document({"sources": {"purchases": {"format": "orb"}}})
    with pytest.raises(PolicyError, match=r'credits_key maps Stripe objects; set format'):
        policy_from_document({"sources": {"purchases": {"credits_key": "pack"}}})
    source = policy_from_document({"sources": {"purchases": {
        "format": "stripe", "credits_key": "pack", "grant_credits_per_unit": "0.5"}}}
    ).purchase_source
    assert (source.format, source.stripe.credits_key, str(source.stripe.grant_credits_per_unit)
            ) == ("stripe", "pack", "0.5")
    assert load_policy().purchase_source.format == "contract"


# --- object storage ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def s3_endpoint():
    """A local S3-compatible server (moto's server mode) on 127.0.0.1, for this file."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint, monkeypatch):
    """An empty bucket, and the environment s3fs (and a child process) reads it with."""
    import boto3
    import s3fs

    environment = {"AWS_ENDPOINT_URL": s3_endpoint, "AWS_ACCESS_KEY_ID": "testing",
                   "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    s3fs.S3FileSystem.clear_instance_cache()  # a file system built before these settings
    bucket = f"books-{free_port()}"
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=bucket)
    return bucket, environment


@pytest.mark.slow  # over a second here: not in make test-fast
def test_a_night_lands_and_archives_on_s3_and_verify_checks_the_archive_there(
        tmp_path, s3_bucket, monkeypatch):
    import s3fs

    bucket, environment = s3_bucket
    monkeypatch.chdir(tmp_path)
    # Each of the two ledgers keeps its own anchor file (an anchor file is one ledger's).
    monkeypatch.setenv("CREDITBOOKS_ANCHORS", str(tmp_path / "local-anchors.jsonl"))
    local = tmp_path / "local"
    policy = policy_from_document(STRIPE_POLICY)
    on_disk = _post(local, "stripe", policy)
    storage = s3fs.S3FileSystem()
    storage.put(str(local / "landing") + "/", f"{bucket}/landing/", recursive=True)
    # As the command line hands them on: typer makes every root a Path (s3:/bucket/...).
    (tmp_path / "remote").mkdir()
    monkeypatch.setenv("CREDITBOOKS_ANCHORS", str(tmp_path / "remote-anchors.jsonl"))
    on_s3 = _post(tmp_path / "remote", "stripe", policy, landing=Path(f"s3://{bucket}/landing"),
                  archive=Path(f"s3://{bucket}/archive"))
    for name in (*BOOKS, "batch files"):
        assert on_s3[name].equals(on_disk[name]), name
    assert on_s3["chain head"] == on_disk["chain head"]
    assert not (tmp_path / "s3:").exists()  # nothing went to a local directory named s3:
    objects = sorted(path.split("/archive/", 1)[1] for path in storage.find(f"{bucket}/archive"))
    assert [path.rsplit("/", 1)[0] for path in objects] == [
        "purchases/business_date=2026-03-01", "purchases_source/business_date=2026-03-01",
        "refunds/business_date=2026-03-02", "refunds_source/business_date=2026-03-02",
        "usage/business_date=2026-03-01", "usage/business_date=2026-03-02"]
    assert [path.rsplit(".", 1)[1] for path in objects] == [
        "parquet", "jsonl", "parquet", "jsonl", "parquet", "parquet"]
    original = next(path for path in objects if path.startswith("purchases_source/"))
    assert storage.cat_file(f"{bucket}/archive/{original}") == (
        FIXTURES / "stripe" / "2026-03-01" / "purchases.jsonl").read_bytes()

    command = [str(Path(sys.executable).parent / "creditbooks"), "--db",
               f"sqlite:///{tmp_path / 'remote' / 'ledger.db'}", "verify", "--archive",
               f"s3://{bucket}/archive", "--format", "json"]
    child_environment = {**os.environ, **environment}
    passed = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path,
                            env=child_environment)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert '"detail": "6 partitions, each as its batch recorded it"' in passed.stdout
    usage = next(path for path in objects if path.startswith("usage/business_date=2026-03-02"))
    storage.pipe_file(f"{bucket}/archive/{usage}", storage.cat_file(
        f"{bucket}/archive/{objects[0]}"))  # another partition's bytes under its name
    failed = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path,
                            env=child_environment)
    assert failed.returncode == 1
    assert "1 of 6 partitions differ; first: archive partition s3://" in failed.stdout
    assert "SHA-256 differs" in failed.stdout


def test_an_unreachable_object_storage_endpoint_is_one_line_naming_it(tmp_path):
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    creditbooks = [str(Path(sys.executable).parent / "creditbooks"), "--db",
                   f"sqlite:///{tmp_path / 'ledger.db'}"]
    environment = {**os.environ, "AWS_ENDPOINT_URL": closed, "AWS_ACCESS_KEY_ID": "testing",
                   "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
                   "AWS_MAX_ATTEMPTS": "1"}
    subprocess.run([*creditbooks, "init"], check=True, capture_output=True, cwd=tmp_path,
                   env=environment)
    night = subprocess.run([*creditbooks, "nightly", "--date", "2026-03-01", "--landing",
                            "s3://books/landing", "--archive", "s3://books/archive"],
                           capture_output=True, text=True, cwd=tmp_path, env=environment)
    assert night.returncode == 1
    assert night.stderr.count("\n") == 1, night.stderr
    assert night.stderr.startswith(
        f'creditbooks: error: object storage: could not connect to the endpoint URL '
        f'"{closed}/books/landing" (Cannot connect to host 127.0.0.1:'), night.stderr
    assert "Traceback" not in night.stderr


def test_a_source_file_is_archived_whole_on_s3_and_read_back_checked(tmp_path, s3_bucket,
                                                                     monkeypatch):
    """What usage sources archive beside their rows (the metering system's original file)
    goes through the same writer: one whole object, read back only with its recorded bytes."""
    import s3fs

    bucket, _ = s3_bucket
    monkeypatch.chdir(tmp_path)
    original = tmp_path / "usage.jsonl"
    original.write_bytes(b'{"transaction_id": "t1", "code": "api"}\n')
    writer = PartitionWriter(Path(f"s3://{bucket}/archive"), "nightly-2026-03-01", "L1", FIRST)
    partition = writer.copy_in(original, "usage_source", 1, ".jsonl")
    assert partition.relative_path.startswith("usage_source/business_date=2026-03-01/"
                                              "nightly-2026-03-01-L1-")
    assert partition.relative_path.endswith(".jsonl")
    storage = s3fs.S3FileSystem()
    assert storage.cat_file(f"{bucket}/archive/{partition.relative_path}") == original.read_bytes()
    assert not (tmp_path / "s3:").exists()
    object_storage.local_copies.cache_clear()  # a new process: no copy held yet
    copy = verified_path(Path(f"s3://{bucket}/archive"), partition)
    assert copy.read_bytes() == original.read_bytes()
    object_storage.local_copies.cache_clear()
    storage.pipe_file(f"{bucket}/archive/{partition.relative_path}", b"{}\n")
    with pytest.raises(ArchiveError, match="SHA-256 differs"):
        verified_path(Path(f"s3://{bucket}/archive"), partition)


def test_object_storage_roots_are_read_back_from_either_spelling():
    url = object_storage.object_storage_url
    assert url("s3://bucket/archive/") == url(Path("s3://bucket/archive")) == "s3://bucket/archive"
    assert url("gs://bucket/landing") == "gs://bucket/landing"
    assert url(Path("archive")) is None and url("/srv/archive") is None
    assert url("file:///srv/archive") is None and url("C:/archive") is None


@pytest.mark.slow  # over a second here: not in make test-fast
def test_anchors_on_s3_are_new_objects_verify_reads_them_and_trace_reads_the_archive_there(
        tmp_path, s3_bucket, monkeypatch):
    """With the archive on s3:// and no anchor place given, each publish's anchor is a new
    object under s3://bucket/creditbooks-anchors/ (an object store cannot append); verify
    reads them in name order and names one that was altered. `trace usage` reads the usage
    partitions there, each day's date from its record."""
    import s3fs

    bucket, _ = s3_bucket
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CREDITBOOKS_ANCHORS", raising=False)
    archive = Path(f"s3://{bucket}/archive")
    _post(tmp_path, "stripe", policy_from_document(STRIPE_POLICY), archive=archive)
    storage = s3fs.S3FileSystem()
    storage.invalidate_cache()
    names = sorted(storage.find(f"{bucket}/creditbooks-anchors"))
    anchors = [json.loads(storage.cat_file(name)) for name in names]
    assert [anchor["event"] for anchor in anchors] == ["publish 2026-03-01", "publish 2026-03-02"]
    assert all(name.endswith(".json") and f"-{anchors[0]['ledger']}-" in name for name in names)
    assert not (tmp_path / "s3:").exists()  # nothing went to a local directory named s3:

    store = Store(f"sqlite:///{tmp_path / 'ledger.db'}")
    anchors_place = Path(f"s3://{bucket}/creditbooks-anchors")
    with store.engine.connect() as connection:
        checks = {check.control: check for check in verify_evidence(connection,
                                                                    anchors=anchors_place)}
    anchor_check = checks[f"anchors in s3://{bucket}/creditbooks-anchors"]
    assert anchor_check.passed and anchor_check.detail.startswith("2 anchors"), anchor_check

    object_storage.local_copies.cache_clear()  # a new process: no copy held yet
    traced = trace_usage(store, archive, "e6")
    assert traced["event"]["archive"].startswith(
        f"s3://{bucket}/archive/usage/business_date=2026-03-01/")
    assert (traced["event"]["customer_id"], traced["event"]["credits"]) == ("cus_E", "5")
    assert [(row["purchase_id"], row["value"]) for row in traced["burn_slices"]] == [
        ("in_1E1", "600")]  # 5 of the invoice's 25 credits, bought for 3000 JPY before tax

    first = anchors[0]
    altered = {**first, "journal_chain": {**first["journal_chain"], "hash": "0" * 64}}
    storage.pipe_file(names[0], (json.dumps(altered) + "\n").encode())
    with store.engine.connect() as connection:
        failed = next(check for check in verify_evidence(connection, anchors=anchors_place)
                      if check.control.startswith("anchors in"))
    assert not failed.passed
    assert failed.detail.startswith("anchor line 1 (publish 2026-03-01 at "), failed.detail
    store.dispose()


def test_plain_verify_finds_the_anchors_nightly_wrote_beside_an_archive_on_s3(
        tmp_path, s3_bucket, monkeypatch):
    import s3fs

    from creditbooks.evidence_places import evidence_places

    bucket, _ = s3_bucket
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CREDITBOOKS_ANCHORS", raising=False)
    archive = Path(f"s3://{bucket}/archive")  # as typer hands it on: s3:/bucket/archive
    missing = evidence_places(None, None, archive)
    assert missing.anchors is None
    assert (f"anchors: not checked, no creditbooks-anchors.jsonl or s3://{bucket}/"
            "creditbooks-anchors (the default anchor file): give --anchors FILE") in missing.notes
    s3fs.S3FileSystem().pipe_file(f"{bucket}/creditbooks-anchors/20260303T010000Z-L1-a.json",
                                  b"{}\n")
    found = evidence_places(None, None, archive)
    assert str(found.anchors) == str(Path(f"s3://{bucket}/creditbooks-anchors"))
    assert (f"anchors: checked s3://{bucket}/creditbooks-anchors (the default anchor file)"
            in found.notes)


def test_an_anchor_object_is_only_ever_created_never_overwritten(tmp_path, s3_bucket):
    bucket, _ = s3_bucket
    anchor = Anchor("L1", "publish 2026-03-01", "2026-03-03T01:00:00+00:00",
                    ChainHead(3, "a" * 64), ChainHead(2, "b" * 64))
    place = Path(f"s3://{bucket}/anchors")
    append_anchor(place, anchor)
    append_anchor(place, replace(anchor, event="publish 2026-03-02",
                                 at="2026-03-04T01:00:00+00:00"))
    lines = [json.loads(line) for line in anchor_lines(place)]
    assert [line["event"] for line in lines] == ["publish 2026-03-01", "publish 2026-03-02"]
    assert lines[0]["journal_chain"] == {"sequence": 3, "hash": "a" * 64}
    import s3fs

    storage = s3fs.S3FileSystem()
    name = sorted(storage.find(f"{bucket}/anchors"))[0]
    assert name.split("/")[-1].startswith("20260303T010000000000Z-L1-")
    with pytest.raises(FileExistsError):  # the create-only write refuses a name in use
        storage.pipe_file(name, b"{}\n", mode="create")
    assert anchor_file(None, Path(f"s3://{bucket}/archive")) == Path(
        f"s3://{bucket}/creditbooks-anchors")
    assert object_storage.object_storage_url(anchor_file(None, Path(f"s3://{bucket}"))) == (
        f"s3://{bucket}/creditbooks-anchors")
    assert anchor_file(None, tmp_path / "archive") == tmp_path / "creditbooks-anchors.jsonl"


V0_1_0 = Path(__file__).parent / "fixtures" / "v0.1.0"


@pytest.mark.slow  # over a second here: not in make test-fast
def test_upgrade_adopts_a_v0_1_0_archive_on_s3_as_it_adopts_it_from_disk(tmp_path, s3_bucket,
                                                                        monkeypatch):
    import s3fs

    bucket, _ = s3_bucket
    monkeypatch.chdir(tmp_path)
    storage = s3fs.S3FileSystem()
    storage.put(str(V0_1_0 / "archive") + "/", f"{bucket}/archive/", recursive=True)
    adopted = {}
    for name, archive in (("disk", V0_1_0 / "archive"), ("s3", Path(f"s3://{bucket}/archive"))):
        shutil.copyfile(V0_1_0 / "ledger.sqlite", tmp_path / f"{name}.sqlite")
        url = f"sqlite:///{tmp_path / f'{name}.sqlite'}"
        outcome = upgrade_ledger(url, archive_root=archive)
        store = Store(url)
        adopted[name] = (outcome.partitions_adopted, store.read_frame(
            "SELECT document, business_date, relative_path, sha256, row_count "
            "FROM archive_partitions ORDER BY business_date, document").values.tolist())
        store.dispose()
    assert adopted["s3"] == adopted["disk"]
    assert adopted["s3"][0] == len(list((V0_1_0 / "archive").rglob("*.parquet"))) > 0
    assert not (tmp_path / "s3:").exists()

    missing = "usage/business_date=2026-01-03/rows.parquet"
    storage.rm_file(f"{bucket}/archive/{missing}")
    shutil.copyfile(V0_1_0 / "ledger.sqlite", tmp_path / "missing.sqlite")
    with pytest.raises(ArchiveAdoptionError, match=(
            rf"^archive partition s3://{bucket}/archive/{re.escape(missing)} \(batch .*\) is "
            "missing: give the archive the ledger was posted with; nothing was changed$")):
        upgrade_ledger(f"sqlite:///{tmp_path / 'missing.sqlite'}",
                       archive_root=Path(f"s3://{bucket}/archive"))


def test_the_airflow_landing_sensor_waits_for_the_marker_on_s3(tmp_path, s3_bucket,
                                                                monkeypatch):
    import s3fs

    bucket, _ = s3_bucket
    for name, value in {"CREDITBOOKS_DB": f"sqlite:///{tmp_path / 'ledger.db'}",
                        "CREDITBOOKS_LANDING": f"s3://{bucket}/landing",
                        "CREDITBOOKS_LANDING_MARKER": "_SUCCESS"}.items():
        monkeypatch.setenv(name, value)
    storage = s3fs.S3FileSystem()
    storage.pipe_file(f"{bucket}/landing/2026-03-01/usage.csv", b"event_id\n")
    with pytest.raises(LandingNotReadyError, match=(
            rf"landing day 2026-03-01 not ready after 0.2s: s3://{bucket}/landing/2026-03-01/"
            "_SUCCESS is missing; nothing was posted")):
        wait_for_landing("2026-03-01", timeout_seconds=0.2, poke_seconds=0.05)
    storage.pipe_file(f"{bucket}/landing/2026-03-01/_SUCCESS", b"")
    assert wait_for_landing("2026-03-01", timeout_seconds=5, poke_seconds=0.05) == (
        f"s3://{bucket}/landing/2026-03-01/_SUCCESS")
    monkeypatch.setenv("CREDITBOOKS_LANDING_MARKER", "")  # no marker: the day's prefix
    assert wait_for_landing("2026-03-01", timeout_seconds=5) == f"s3://{bucket}/landing/2026-03-01"
    assert not (tmp_path / "s3:").exists()
