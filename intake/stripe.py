"""Stripe exports as landing files: credit grants, paid Checkout Sessions and paid invoices
as purchases, Stripe refunds as refunds, mapped onto the file contract's columns
(intake/documents.py).

With `[sources.purchases] format = "stripe"` in the policy, a landing day's
`purchases.jsonl` and `refunds.jsonl` hold Stripe objects one per line, as the API's list
endpoints return them in `data` (`GET /v1/billing/credit_grants`,
`GET /v1/checkout/sessions`, `GET /v1/invoices`, `GET /v1/refunds`). Each object becomes
one row of the contract's frame, every value as text, so validation, duplicates (by the Stripe id),
control totals, quarantine and the archive are the contract's own. A row that is refused
names the Stripe field it came from (`amount.monetary.value`, `metadata.credits`), not the
contract column, and its quarantined raw row is the Stripe object's line as landed; the
file itself is archived as landed beside the mapped rows (`purchases_source`,
`refunds_source`: intake/sources.py `archive_source_file`), so every object's original
payload can be read back and checked (`verify --archive`).

Field names and types are Stripe's API reference:
- Credit Grant: https://docs.stripe.com/api/billing/credit-grant/object (`id`, `customer`,
  `amount` {`type`: "monetary", `monetary` {`currency`, `value`}}, `category` paid |
  promotional, `effective_at`, `expires_at` (Unix seconds, nullable), `priority` (0 is
  the highest, 100 the lowest), `voided_at`, `metadata`);
- Checkout Session: https://docs.stripe.com/api/checkout/sessions/object (`id`,
  `customer`, `currency`, `amount_total`, `total_details.amount_tax`, `payment_status`,
  `payment_intent`, `created`, `customer_details.address.country`, `metadata`);
- Invoice: https://docs.stripe.com/api/invoices/object (`id`, `customer`, `currency`,
  `status` draft | open | paid | uncollectible | void, `amount_paid`, `total`,
  `status_transitions.paid_at`, `customer_address.country`, `metadata`; tax:
  `total_taxes[].amount` from API version 2025-03-31.basil, which removed the older
  `tax`: https://docs.stripe.com/changelog/basil/2025-03-31/invoice-tax-configurations);
- Refund: https://docs.stripe.com/api/refunds/object (`id`, `amount`, `currency`,
  `charge`, `payment_intent`, `created`, `status`, `metadata`);
- amounts: https://docs.stripe.com/currencies#zero-decimal and #special-cases.

How the objects become purchases (the choices ACCOUNTING.md's purchase fields leave):
- A credit grant is a lot: its `id` is the purchase id, `effective_at` (else `created`)
  the purchase time, `category` the kind. A grant's amount is monetary: a paid grant's
  price is its `amount.monetary.value`; a promotional one is free (ACCOUNTING.md, 4). Its
  credits are `metadata.<credits key>` when given, else the amount in major units times
  `grant_credits_per_unit` (Stripe's billing credits are money: 1 by default). A voided
  grant is refused naming `voided_at`.
- A Checkout Session with `payment_status` "paid" is a lot whose purchase id is its
  `payment_intent` (the id a Stripe refund names), credits `metadata.<credits key>`,
  price `amount_total` less `total_details.amount_tax`, tax that amount, expiry
  `metadata.<expires key>` (Unix seconds), product `metadata.<product key>`.
- An invoice with `status` "paid" is a lot whose purchase id is its `id`, time
  `status_transitions.paid_at`, credits, product and expiry from its metadata as a
  session's, country `customer_address.country`, price `amount_paid` less its tax (the
  sum of `total_taxes[].amount`, inclusive and exclusive alike, both being in the amount
  paid; else `tax`), tax that sum. One whose `amount_paid` is not its `total` (part paid
  from the customer's balance) is refused naming `amount_paid`: its price is not what was
  paid. Since 2025-03-31.basil an invoice names no payment intent, so a refund of an
  invoice names the invoice in `metadata.<purchase key>`.
- A refund with `status` "succeeded" refunds `metadata.<credits key>` credits of the lot
  `metadata.<purchase key>` names, else of its `payment_intent`; its `amount` is the
  contract's optional amount, which the books check against the refund they compute.
  A refund naming only a `charge` is refused naming `payment_intent`: a charge id does not
  name a lot without a call to Stripe.
- A purchase exported both as a paid grant and as the session that paid for it would be
  two lots: export one of the two.

Stripe amounts are integers in the currency's smallest unit as Stripe counts it, which is
not always ISO 4217's (ledger/money.py): zero-decimal in Stripe but two in ISO (MGA) is
scaled exactly; two-decimal in Stripe's API but zero in ISO (ISK, whose amounts Stripe
requires to be multiples of 100) converts exactly when it divides and is refused naming
the field when it does not; three-decimal currencies agree. The text written is the
exact decimal in major units, which validation parses with the ISO exponent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pandas as pd

from intake.classification import DocumentIntake
from intake.documents import (
    DOCUMENT_COLUMNS,
    ROW_NUMBER,
    InputFile,
    InputFileError,
    _fingerprint,
    json_lines,
)
from intake.sources import SourceIntake
from intake.validation import ValidatedRows
from ledger.domain import LotKind
from ledger.money import UnknownCurrencyError, minor_unit_exponent

CONTRACT_FORMAT = "contract"
STRIPE_FORMAT = "stripe"
PURCHASE_FORMATS = (CONTRACT_FORMAT, STRIPE_FORMAT)
STRIPE_DOCUMENTS = ("purchases", "refunds")
RAW_LINE_MAX_CHARACTERS = 10_000  # a quarantined object's line, as sources.py keeps events'

# https://docs.stripe.com/currencies#zero-decimal: amounts are whole units.
STRIPE_ZERO_DECIMAL = frozenset({"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG",
                                 "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF"})
# https://docs.stripe.com/currencies#three-decimal: thousandths, the last digit 0.
STRIPE_THREE_DECIMAL = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})
# Every other currency, ISK included ("ISK will remain a two-decimal currency in the Stripe
# API", https://support.stripe.com/questions/deprecation-of-fractional-isk-charges-and-refunds),
# is counted in hundredths.
STRIPE_DEFAULT_EXPONENT = 2


def stripe_exponent(currency: str) -> int:
    """The decimal places of the unit Stripe counts `currency`'s amounts in."""
    if currency in STRIPE_ZERO_DECIMAL:
        return 0
    return 3 if currency in STRIPE_THREE_DECIMAL else STRIPE_DEFAULT_EXPONENT


def stripe_amount_text(value: int, currency: str) -> str:
    """Stripe's integer amount as the exact decimal in major units the contract reads.

    Raises ValueError when it is not a whole number of the currency's ISO 4217 minor
    unit (ISK 50050: 500.50 krónur, where ISO has no decimals): nothing is rounded.
    """
    major = Decimal(value).scaleb(-stripe_exponent(currency))
    iso_places = minor_unit_exponent(currency)
    if major != major.quantize(Decimal(1).scaleb(-iso_places)):
        raise ValueError(f"{value} {currency} is {major} in major units, not a whole number of "
                         f"the ISO 4217 minor unit ({iso_places} decimal places)")
    return f"{major:.{iso_places}f}"


@dataclass(frozen=True)
class StripeMapping:
    """Which metadata keys name the credits, the product, the expiry and the refunded lot,
    and how many credits a unit of a credit grant's currency buys when its metadata does
    not say."""

    credits_key: str = "credits"
    product_key: str = "product"
    expires_key: str = "expires_at"
    purchase_key: str = "purchase_id"
    grant_credits_per_unit: Decimal = Decimal(1)


@dataclass(frozen=True)
class PurchaseSource:
    """`[sources.purchases]`: the contract's files, or Stripe exports mapped onto them."""

    format: str = CONTRACT_FORMAT
    stripe: StripeMapping = field(default_factory=StripeMapping)


@dataclass(frozen=True)
class StripeFile(InputFile):
    """A Stripe export read as a contract frame, with, per row, the Stripe field each
    column came from and the problems found while mapping, one row per object
    (ROW_NUMBER, column_name: the first field refused, reason: every 'field: reason')."""

    source_fields: tuple[Mapping[str, str], ...]
    source_problems: pd.DataFrame
    raw_lines: Mapping[int, str] = field(default_factory=dict)  # line number -> the object


def reads_stripe(source: PurchaseSource, document: str) -> bool:
    return source.format == STRIPE_FORMAT and document in STRIPE_DOCUMENTS


def read_stripe_document(document: str, path: Path, mapping: StripeMapping) -> StripeFile:
    """One landing file of Stripe objects as the contract frame of `document`."""
    if path.suffix != ".jsonl":
        raise InputFileError(f"{path.name}: [sources.purchases] format = \"stripe\" reads "
                             f"{document}.jsonl (Stripe objects, one per line); land the export "
                             "as JSON lines or set format = \"contract\"")
    digest, _ = _fingerprint(path)
    mapper = _map_refund if document == "refunds" else _map_purchase
    rows, fields, problems, lines = [], [], [], {}
    for line_number, stripe_object, line in json_lines(path, "one Stripe object per line"):
        lines[line_number] = line.rstrip("\r\n")
        mapped = _Mapped(line_number)
        mapper(stripe_object, mapped, mapping)
        rows.append({ROW_NUMBER: line_number, **mapped.row})
        fields.append(mapped.fields)
        if mapped.problems:
            problems.append((line_number, mapped.problems[0][0], mapped.reasons()))
    columns = [ROW_NUMBER] + [spec.name for spec in DOCUMENT_COLUMNS[document]]
    frame = pd.DataFrame(rows, columns=columns, dtype=object).fillna("")
    frame[ROW_NUMBER] = frame[ROW_NUMBER].astype("int64")
    problem_frame = pd.DataFrame(problems, columns=[ROW_NUMBER, "column_name", "reason"])
    return StripeFile(document, path, digest, frame.reset_index(drop=True), tuple(fields),
                      problem_frame, lines)


def in_stripe_terms(input_file: InputFile, validated: ValidatedRows) -> ValidatedRows:
    """Validated rows of a Stripe file with its mapping problems added and every refusal
    naming the Stripe field; a contract file's rows unchanged."""
    if not isinstance(input_file, StripeFile):
        return validated
    problems = input_file.source_problems
    refused = validated.accepted[ROW_NUMBER].isin(problems[ROW_NUMBER])
    earlier = validated.rejected[~validated.rejected[ROW_NUMBER].isin(problems[ROW_NUMBER])]
    fields_of = dict(zip(input_file.frame[ROW_NUMBER], input_file.source_fields, strict=True))
    named = earlier.assign(
        column_name=[fields_of[row].get(column, column) for row, column in
                     zip(earlier[ROW_NUMBER], earlier["column_name"], strict=True)],
        reason=[_reason_in_source(reason, fields_of[row]) for row, reason in
                zip(earlier[ROW_NUMBER], earlier["reason"], strict=True)])
    problem_rows = problems[problems[ROW_NUMBER].isin(
        pd.concat([validated.accepted[ROW_NUMBER], validated.rejected[ROW_NUMBER]]))]
    rejected = pd.concat([named, problem_rows], ignore_index=True)
    return ValidatedRows(accepted=validated.accepted[~refused].reset_index(drop=True),
                         rejected=rejected.sort_values(ROW_NUMBER).reset_index(drop=True))


def with_original_lines(intake: DocumentIntake, input_file: InputFile) -> DocumentIntake:
    """A Stripe file's intake with each quarantined row's raw row the object's line as
    landed (not the contract row it was mapped to), and the file itself to be archived
    whole beside the rows (`<document>_source`, intake/sources.py `archive_source_file`);
    a contract file's intake unchanged."""
    if not isinstance(input_file, StripeFile):
        return intake
    lines = [input_file.raw_lines.get(int(row), "")[:RAW_LINE_MAX_CHARACTERS]
             for row in intake.rejected[ROW_NUMBER]]
    rejected = intake.rejected.assign(raw_row=lines) if len(intake.rejected) else intake.rejected
    return SourceIntake(**{**vars(intake), "rejected": rejected,
                           "source_path": input_file.path})


def _reason_in_source(reason: str, fields: Mapping[str, str]) -> str:
    """'credits: must be ...; amount: ...' with each column replaced by its Stripe field."""
    parts = []
    for part in reason.split("; "):
        column, separator, text = part.partition(": ")
        parts.append(f"{fields.get(column, column)}{separator}{text}" if separator else part)
    return "; ".join(parts)


# --- reading the objects ----------------------------------------------------------------------

class _Mapped:
    """One object's contract row, the Stripe field of each column, and its problems."""

    def __init__(self, line_number: int) -> None:
        self.line_number = line_number
        self.row: dict[str, str] = {}
        self.fields: dict[str, str] = {}
        self.problems: list[tuple[str, str]] = []

    def take(self, column: str, stripe_object: dict, where: str) -> str:
        """The text at the dotted path `where` into column ('' when absent or null)."""
        value = _at(stripe_object, where)
        self.fields[column] = where
        if isinstance(value, (dict, list, bool)):
            kind = {dict: "an object", list: "a list", bool: "true or false"}[type(value)]
            self.problem(where, f"expected text or a number, not {kind}")
            value = ""
        self.row[column] = "" if value is None else value
        return self.row[column]

    def put(self, column: str, text: str, where: str) -> None:
        self.row[column], self.fields[column] = text, where

    def problem(self, where: str, reason: str) -> None:
        self.problems.append((where, reason))

    def reasons(self) -> str:
        """Every problem as 'field: reason', the first of each field, joined by '; ' (as a
        contract row's reasons are: intake/validation.py)."""
        first_of = {where: reason for where, reason in reversed(self.problems)}
        ordered = dict.fromkeys(where for where, _ in self.problems)
        return "; ".join(f"{where}: {first_of[where]}" for where in ordered)


def _at(stripe_object: dict, where: str):
    value = stripe_object
    for key in where.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    if isinstance(value, dict) and set(value) >= {"id", "object"}:
        return value["id"]  # an expanded object (customer, payment_intent): its id
    return value


def _timestamp(mapped: _Mapped, column: str, stripe_object: dict, where: str) -> None:
    """Unix seconds (Stripe's timestamps) as ISO 8601 UTC; '' when absent."""
    text = mapped.take(column, stripe_object, where)
    if text == "":
        return
    if not text.isdigit() or len(text) > 11:
        mapped.problem(where, f"must be a Unix timestamp in seconds, not {text!r}")
        return
    instant = datetime.fromtimestamp(int(text), UTC)
    mapped.put(column, instant.strftime("%Y-%m-%dT%H:%M:%SZ"), where)


def _currency(mapped: _Mapped, stripe_object: dict, where: str) -> str:
    text = mapped.take("currency", stripe_object, where).upper()
    mapped.put("currency", text, where)
    return text


def _amount(mapped: _Mapped, column: str, value: str, currency: str, where: str) -> None:
    """Stripe's integer amount in `column` as the contract's major-unit decimal."""
    mapped.put(column, value, where)
    if value == "" or not value.lstrip("-").isdigit():
        mapped.problem(where, f"must be an integer amount in the currency's smallest unit, "
                              f"not {value!r}")
        return
    try:
        mapped.put(column, stripe_amount_text(int(value), currency), where)
    except UnknownCurrencyError:
        pass  # validation names the currency
    except ValueError as error:
        mapped.problem(where, f"{error}; Stripe requires such amounts to be whole units")


# --- the objects ------------------------------------------------------------------------------

def _map_purchase(stripe_object: dict, mapped: _Mapped, mapping: StripeMapping) -> None:
    kind = stripe_object.get("object")
    if kind == "billing.credit_grant":
        _map_credit_grant(stripe_object, mapped, mapping)
    elif kind == "checkout.session":
        _map_checkout_session(stripe_object, mapped, mapping)
    elif kind == "invoice":
        _map_invoice(stripe_object, mapped, mapping)
    else:
        mapped.problem("object", f"is {kind!r}; Stripe purchases are billing.credit_grant, "
                                 "checkout.session or invoice objects")


def _map_credit_grant(grant: dict, mapped: _Mapped, mapping: StripeMapping) -> None:
    mapped.take("purchase_id", grant, "id")
    mapped.take("customer_id", grant, "customer")
    _timestamp(mapped, "purchased_at", grant,
               "effective_at" if _at(grant, "effective_at") is not None else "created")
    _timestamp(mapped, "expires_at", grant, "expires_at")
    mapped.take("kind", grant, "category")
    mapped.take("priority", grant, "priority")
    mapped.take("product", grant, f"metadata.{mapping.product_key}")
    if _at(grant, "amount.type") != "monetary":
        mapped.problem("amount.type", f"is {_at(grant, 'amount.type')!r}; only monetary "
                                      "credit grants are supported")
    currency = _currency(mapped, grant, "amount.monetary.currency")
    value = mapped.take("amount", grant, "amount.monetary.value")
    _amount(mapped, "amount", value, currency, "amount.monetary.value")
    if mapped.row["kind"] == LotKind.PROMOTIONAL:
        mapped.put("amount", "0", "amount.monetary.value")
    mapped.put("tax_amount", "", "amount")
    credits = mapped.take("credits", grant, f"metadata.{mapping.credits_key}")
    if credits == "" and not mapped.problems:
        _grant_credits(mapped, value, currency, mapping)
    if _at(grant, "voided_at") is not None:
        mapped.problem("voided_at", "the grant was voided; a voided grant is not a purchase "
                                    "(void one already posted with an adjustment)")


def _grant_credits(mapped: _Mapped, value: str, currency: str, mapping: StripeMapping) -> None:
    """Credits of a grant whose metadata does not name them: its amount in major units
    times `grant_credits_per_unit`, exactly (validation refuses more than 6 places)."""
    try:
        major = Decimal(value).scaleb(-stripe_exponent(currency))
    except UnknownCurrencyError:
        return
    credits = major * mapping.grant_credits_per_unit
    mapped.put("credits", f"{credits.normalize():f}", "amount.monetary.value")


def _map_paid_purchase(stripe_object: dict, mapped: _Mapped, mapping: StripeMapping, *,
                       id_field: str, paid_at_field: str, country_field: str,
                       status_field: str) -> str:
    """The columns a checkout session and an invoice map alike, each from its own fields
    (the credits, product and expiry from the mapping's metadata keys); the currency."""
    mapped.take("purchase_id", stripe_object, id_field)
    mapped.take("customer_id", stripe_object, "customer")
    _timestamp(mapped, "purchased_at", stripe_object, paid_at_field)
    _timestamp(mapped, "expires_at", stripe_object, f"metadata.{mapping.expires_key}")
    mapped.take("credits", stripe_object, f"metadata.{mapping.credits_key}")
    mapped.take("product", stripe_object, f"metadata.{mapping.product_key}")
    mapped.take("country", stripe_object, country_field)
    mapped.put("kind", "paid", status_field)
    return _currency(mapped, stripe_object, "currency")


def _amount_net_of_tax(mapped: _Mapped, currency: str, paid: str, paid_field: str, tax: str,
                       tax_field: str) -> None:
    """`amount` is what was paid less its tax (Stripe's paid figures include the tax), and
    `tax_amount` the tax; a paid figure that is not an integer is named as it stands."""
    if paid.isdigit() and tax.isdigit():
        _amount(mapped, "amount", str(int(paid) - int(tax)), currency, paid_field)
    else:
        _amount(mapped, "amount", paid, currency, paid_field)
    _amount(mapped, "tax_amount", tax, currency, tax_field)


def _map_checkout_session(session: dict, mapped: _Mapped, mapping: StripeMapping) -> None:
    currency = _map_paid_purchase(session, mapped, mapping, id_field="payment_intent",
                                  paid_at_field="created",
                                  country_field="customer_details.address.country",
                                  status_field="payment_status")
    total = mapped.take("amount", session, "amount_total")
    tax = mapped.take("tax_amount", session, "total_details.amount_tax") or "0"
    _amount_net_of_tax(mapped, currency, total, "amount_total", tax, "total_details.amount_tax")
    status = _at(session, "payment_status")
    if status != "paid":
        mapped.problem("payment_status", f"is {status!r}; only a paid session is a purchase "
                                         "(land it on the day it is paid)")


def _map_invoice(invoice: dict, mapped: _Mapped, mapping: StripeMapping) -> None:
    # The status first: an unpaid invoice's amounts say nothing about a price.
    paid_invoice = _at(invoice, "status") == "paid"
    if not paid_invoice:
        mapped.problem("status", f"is {_at(invoice, 'status')!r}; only a paid invoice is a "
                                 "purchase (land it on the day it is paid)")
    currency = _map_paid_purchase(invoice, mapped, mapping, id_field="id",
                                  paid_at_field="status_transitions.paid_at",
                                  country_field="customer_address.country",
                                  status_field="status")
    paid = mapped.take("amount", invoice, "amount_paid")
    tax, tax_field = _invoice_tax(mapped, invoice)
    _amount_net_of_tax(mapped, currency, paid, "amount_paid", tax, tax_field)
    total = _at(invoice, "total")
    if paid_invoice and total is not None and paid.isdigit() and str(total) != paid:
        mapped.problem("amount_paid", f"is {paid} but the invoice's total is {total} (part "
                                      "paid from the customer's balance, or overpaid): post "
                                      "it as a contract purchase at the price agreed")


def _invoice_tax(mapped: _Mapped, invoice: dict) -> tuple[str, str]:
    """The invoice's tax in Stripe's smallest unit and the field it came from: the sum of
    `total_taxes[].amount` (API 2025-03-31.basil on, inclusive and exclusive alike: both are
    in `amount_paid`), else the older `tax` (nullable); '0' when neither is given."""
    taxes = invoice.get("total_taxes")
    if taxes is None:
        return mapped.take("tax_amount", invoice, "tax") or "0", "tax"
    amounts = [tax.get("amount") if isinstance(tax, dict) else None
               for tax in (taxes if isinstance(taxes, list) else [None])]
    if not all(isinstance(amount, str) and amount.isdigit() for amount in amounts):
        mapped.problem("total_taxes", "must be a list of taxes, each with an integer amount "
                                      "in the currency's smallest unit")
        return "", "total_taxes"
    return str(sum(int(amount) for amount in amounts)), "total_taxes"


def _map_refund(refund: dict, mapped: _Mapped, mapping: StripeMapping) -> None:
    if refund.get("object") != "refund":
        mapped.problem("object", f"is {refund.get('object')!r}; a Stripe refunds file holds "
                                 "refund objects")
    mapped.take("refund_id", refund, "id")
    purchase_key = f"metadata.{mapping.purchase_key}"
    mapped.take("purchase_id", refund,
                purchase_key if _at(refund, purchase_key) else "payment_intent")
    _timestamp(mapped, "refunded_at", refund, "created")
    mapped.take("credits", refund, f"metadata.{mapping.credits_key}")
    currency = str(_at(refund, "currency") or "").upper()
    _amount(mapped, "amount", mapped.take("amount", refund, "amount"), currency, "amount")
    if refund.get("status") != "succeeded":
        mapped.problem("status", f"is {refund.get('status')!r}; only a succeeded refund "
                                 "moves money (land it on the day it succeeds)")
