"""The credit subledger: lots and their running balances, what left them (burn slices,
refunds, adjustments, expiries, breakage accruals), the usage, costs and rates a night read,
and usage no credits covered (its overage charges and settlements)."""

from __future__ import annotations

from datetime import date, datetime
from typing import ClassVar

from sqlalchemy import (
    CheckConstraint,
    Column,
    Integer,
    Text,
)
from sqlmodel import Field, SQLModel

from ledger.domain import (
    AdjustmentAction,
    CostType,
    ExpiryDestination,
    LotKind,
    OverageMode,
    sql_values,
)
from ledger.schema.columns import (
    Retention,
    bigint,
    currency_check,
    tables_of,
    utc_instant,
)


class Lot(SQLModel, table=True):
    """A purchase of credits: the immutable facts of the lot."""

    __tablename__ = "lots"
    retention: ClassVar[Retention] = Retention.MUTABLE
    __table_args__ = (
        currency_check(),
        CheckConstraint("credits_micro > 0", name="ck_lots_credits_positive"),
        CheckConstraint("amount_minor >= 0 AND tax_minor >= 0", name="ck_lots_money_non_negative"),
        CheckConstraint(f"kind IN {sql_values(LotKind)}", name="ck_lots_kind"),
        CheckConstraint(f"kind = '{LotKind.PAID}' OR (amount_minor = 0 AND tax_minor = 0)",
                        name="ck_lots_promotional_free"),
        CheckConstraint(
            "expires_at IS NULL OR expires_at > purchased_at", name="ck_lots_expiry_after_purchase"
        ),
    )
    purchase_id: str = Field(primary_key=True, max_length=200)
    customer_id: str = Field(index=True, max_length=200)
    purchased_at: datetime = Field(sa_column=utc_instant())
    expires_at: datetime | None = Field(default=None, sa_column=utc_instant(nullable=True))
    credits_micro: int = Field(sa_column=bigint())
    amount_minor: int = Field(sa_column=bigint())
    tax_minor: int = Field(sa_column=bigint())
    currency: str = Field(max_length=3)
    kind: str = Field(max_length=16)
    product: str = Field(max_length=200)
    priority: int = Field(sa_column=Column(Integer, nullable=False))
    # The customer's country (ISO 3166-1 alpha-2) or ''; it decides unclaimed property.
    country: str = Field(default="", max_length=2)
    # Functional currency per unit of the lot's currency on its purchase date: deferred
    # revenue is non-monetary, so the lot's revenue and breakage use it for ever.
    rate_to_functional: str = Field(default="1", max_length=32)
    payload_hash: str = Field(max_length=32)
    batch_id: str = Field(foreign_key="batches.batch_id", max_length=64)
    business_date: date


class LotBalance(SQLModel, table=True):
    """Running totals of a lot; `check` re-derives them from the append-only records.

    Credits leave a lot by use, refund or expiry; its amount leaves deferred revenue as
    usage revenue, refunded value, breakage (accrued under the proportional method, the
    rest at expiry) or escheat (expired value owed to a state, never revenue).
    """

    __tablename__ = "lot_balances"
    retention: ClassVar[Retention] = Retention.MUTABLE
    __table_args__ = (
        CheckConstraint(
            "credits_used_micro >= 0 AND credits_expired_micro >= 0 "
            "AND credits_refunded_micro >= 0 AND usage_value_minor >= 0 AND breakage_minor >= 0 "
            "AND refunded_value_minor >= 0 AND refunded_tax_minor >= 0 AND escheat_minor >= 0 "
            "AND credits_voided_micro >= 0",
            name="ck_lot_balances_non_negative",
        ),
    )
    purchase_id: str = Field(primary_key=True, foreign_key="lots.purchase_id", max_length=200)
    customer_id: str = Field(index=True, max_length=200)
    # The expiry in force: the purchase's own, or the last rollover's.
    expires_at: datetime | None = Field(default=None, sa_column=utc_instant(nullable=True))
    credits_used_micro: int = Field(sa_column=bigint())
    usage_value_minor: int = Field(sa_column=bigint())
    credits_expired_micro: int = Field(sa_column=bigint())
    # Breakage to date; under the proportional method a change of estimate can lower it.
    breakage_minor: int = Field(sa_column=bigint())
    credits_refunded_micro: int = Field(default=0, sa_column=bigint())
    refunded_value_minor: int = Field(default=0, sa_column=bigint())
    refunded_tax_minor: int = Field(default=0, sa_column=bigint())
    escheat_minor: int = Field(default=0, sa_column=bigint())
    credits_voided_micro: int = Field(default=0, sa_column=bigint())
    is_open: bool = Field(index=True)
    last_batch_id: str = Field(max_length=64)


class BurnSlice(SQLModel, table=True):
    """Credits of one lot burned by one customer's usage of one meter on one day."""

    __tablename__ = "burn_slices"
    retention: ClassVar[Retention] = Retention.MUTABLE
    __table_args__ = (
        currency_check(),
        CheckConstraint("credits_micro > 0", name="ck_burn_slices_credits_positive"),
        CheckConstraint("value_minor >= 0", name="ck_burn_slices_value_non_negative"),
    )
    business_date: date = Field(primary_key=True)
    customer_id: str = Field(primary_key=True, max_length=200)
    purchase_id: str = Field(primary_key=True, foreign_key="lots.purchase_id", max_length=200)
    meter: str = Field(primary_key=True, max_length=200)
    credits_micro: int = Field(sa_column=bigint())
    value_minor: int = Field(sa_column=bigint())
    currency: str = Field(max_length=3)
    batch_id: str = Field(foreign_key="batches.batch_id", max_length=64)
    # The [rate_card] version that priced the usage in credits (rules/rate_card.py); null
    # when the usage carried its credits (the contract, or a source not rated).
    rate_card_version: str | None = Field(default=None, max_length=64)


class RefundRecord(SQLModel, table=True):
    """Unused credits of a paid lot given back: their deferred value and tax, against cash."""

    __tablename__ = "refunds"
    retention: ClassVar[Retention] = Retention.MUTABLE
    __table_args__ = (
        currency_check(),
        CheckConstraint("credits_micro > 0", name="ck_refunds_credits_positive"),
        CheckConstraint("value_minor >= 0 AND tax_minor >= 0", name="ck_refunds_money_sign"),
    )
    refund_id: str = Field(primary_key=True, max_length=200)
    purchase_id: str = Field(foreign_key="lots.purchase_id", index=True, max_length=200)
    customer_id: str = Field(index=True, max_length=200)
    refunded_at: datetime = Field(sa_column=utc_instant())
    credits_micro: int = Field(sa_column=bigint())
    value_minor: int = Field(sa_column=bigint())
    tax_minor: int = Field(sa_column=bigint())
    currency: str = Field(max_length=3)
    payload_hash: str = Field(max_length=32)
    batch_id: str = Field(foreign_key="batches.batch_id", max_length=64)
    business_date: date


class LotAdjustment(SQLModel, table=True):
    """A dated change to a lot's terms: a rollover extends its expiry; a void withdraws what
    is left of a promotional grant. No money moves; the lot's later burns and expiry do."""

    __tablename__ = "lot_adjustments"
    retention: ClassVar[Retention] = Retention.MUTABLE
    __table_args__ = (
        CheckConstraint(f"action IN {sql_values(AdjustmentAction)}",
                        name="ck_lot_adjustments_action"),
        CheckConstraint(f"action = '{AdjustmentAction.VOID}' OR new_expires_at IS NOT NULL",
                        name="ck_lot_adjustments_rollover_expiry"),
        CheckConstraint("credits_voided_micro >= 0", name="ck_lot_adjustments_credits"),
    )
    adjustment_id: str = Field(primary_key=True, max_length=200)
    purchase_id: str = Field(foreign_key="lots.purchase_id", index=True, max_length=200)
    customer_id: str = Field(max_length=200)
    adjusted_at: datetime = Field(sa_column=utc_instant())
    action: str = Field(max_length=16)
    previous_expires_at: datetime | None = Field(default=None,
                                                 sa_column=utc_instant(nullable=True))
    new_expires_at: datetime | None = Field(default=None, sa_column=utc_instant(nullable=True))
    credits_voided_micro: int = Field(sa_column=bigint())
    reason: str = Field(sa_column=Column(Text, nullable=False))
    payload_hash: str = Field(max_length=32)
    batch_id: str = Field(foreign_key="batches.batch_id", max_length=64)
    business_date: date


class LotExpiry(SQLModel, table=True):
    """A lot's expiry: the credits it lost and the deferred value that left with them.

    `destination` is `breakage` (revenue) or `escheat` (a liability to the state of the
    customer's country, never revenue). Under the proportional method `value_minor` is
    what was still deferred at expiry, after the breakage accrued before it.
    """

    __tablename__ = "lot_expiries"
    retention: ClassVar[Retention] = Retention.MUTABLE
    __table_args__ = (
        CheckConstraint("credits_micro >= 0 AND value_minor >= 0", name="ck_lot_expiries_sign"),
        CheckConstraint(f"destination IN {sql_values(ExpiryDestination)}",
                        name="ck_lot_expiries_destination"),
    )
    purchase_id: str = Field(primary_key=True, foreign_key="lots.purchase_id", max_length=200)
    business_date: date = Field(index=True)
    credits_micro: int = Field(sa_column=bigint())
    value_minor: int = Field(sa_column=bigint())
    destination: str = Field(default="breakage", max_length=16)
    batch_id: str = Field(foreign_key="batches.batch_id", max_length=64)


class BreakageAccrual(SQLModel, table=True):
    """A night's change in a lot's proportional breakage, with the expected rate in force."""

    __tablename__ = "breakage_accruals"
    retention: ClassVar[Retention] = Retention.MUTABLE
    __table_args__ = (
        CheckConstraint("change_minor <> 0", name="ck_breakage_accruals_change"),
        CheckConstraint("breakage_to_date_minor >= 0", name="ck_breakage_accruals_to_date"),
    )
    purchase_id: str = Field(primary_key=True, foreign_key="lots.purchase_id", max_length=200)
    business_date: date = Field(primary_key=True)
    rate: str = Field(max_length=32)
    credits_used_micro: int = Field(sa_column=bigint())
    breakage_to_date_minor: int = Field(sa_column=bigint())
    change_minor: int = Field(sa_column=bigint())
    policy_version: str = Field(max_length=64)
    batch_id: str = Field(foreign_key="batches.batch_id", max_length=64)


class FxRate(SQLModel, table=True):
    """An exchange rate: functional currency per unit of `currency` on `rate_date`."""

    __tablename__ = "fx_rates"
    retention: ClassVar[Retention] = Retention.MUTABLE
    __table_args__ = (currency_check(),)
    rate_id: str = Field(primary_key=True, max_length=16)  # "YYYY-MM-DD/CUR"
    rate_date: date = Field(index=True)
    currency: str = Field(max_length=3)
    rate_to_functional: str = Field(max_length=32)
    payload_hash: str = Field(max_length=32)
    batch_id: str = Field(foreign_key="batches.batch_id", max_length=64)
    business_date: date


class CostLine(SQLModel, table=True):
    """A cost of serving (a cloud bill line, an API fee) for a meter, or `*` for all meters."""

    __tablename__ = "costs"
    retention: ClassVar[Retention] = Retention.MUTABLE
    __table_args__ = (
        currency_check(),
        CheckConstraint("amount_minor >= 0", name="ck_costs_amount_non_negative"),
        CheckConstraint(f"cost_type IN {sql_values(CostType)}", name="ck_costs_type"),
    )
    cost_id: str = Field(primary_key=True, max_length=200)
    cost_date: date = Field(index=True)
    meter: str = Field(max_length=200)
    amount_minor: int = Field(sa_column=bigint())
    currency: str = Field(max_length=3)
    cost_type: str = Field(max_length=8)
    vendor: str = Field(max_length=200)
    memo: str = Field(sa_column=Column(Text, nullable=False))
    payload_hash: str = Field(max_length=32)
    batch_id: str = Field(foreign_key="batches.batch_id", max_length=64)
    business_date: date


class UsageDaily(SQLModel, table=True):
    """Accepted usage per customer, meter and business day (raw events live in the archive)."""

    __tablename__ = "usage_daily"
    retention: ClassVar[Retention] = Retention.MUTABLE
    business_date: date = Field(primary_key=True)
    customer_id: str = Field(primary_key=True, max_length=200)
    meter: str = Field(primary_key=True, max_length=200)
    event_count: int = Field(sa_column=bigint())
    late_event_count: int = Field(sa_column=bigint())
    credits_micro: int = Field(sa_column=bigint())
    batch_id: str = Field(foreign_key="batches.batch_id", max_length=64)


class UncoveredUsage(SQLModel, table=True):
    """Usage that found no active credits: never deferred revenue, and never lost.

    `treatment` is the policy's overage rule for the customer: `exception` (recorded for a
    person to act on), `arrears` (billed at the list price, see `overage_charges`) or
    `negative_balance` (owed credits the customer's next purchase pays first, see
    `overage_settlements`).
    """

    __tablename__ = "uncovered_usage"
    retention: ClassVar[Retention] = Retention.MUTABLE
    __table_args__ = (
        CheckConstraint("credits_micro > 0", name="ck_uncovered_usage_credits_positive"),
        CheckConstraint(f"treatment IN {sql_values(OverageMode)}",
                        name="ck_uncovered_usage_treatment"),
    )
    business_date: date = Field(primary_key=True)
    customer_id: str = Field(primary_key=True, max_length=200)
    meter: str = Field(primary_key=True, max_length=200)
    credits_micro: int = Field(sa_column=bigint())
    event_count: int = Field(sa_column=bigint())
    treatment: str = Field(default="exception", max_length=16)
    batch_id: str = Field(foreign_key="batches.batch_id", max_length=64)


class OverageCharge(SQLModel, table=True):
    """Uncovered credits billed in arrears at the list price: Dr receivables / Cr overage."""

    __tablename__ = "overage_charges"
    retention: ClassVar[Retention] = Retention.MUTABLE
    __table_args__ = (
        currency_check(),
        CheckConstraint("credits_micro > 0 AND amount_minor >= 0", name="ck_overage_charges_sign"),
    )
    business_date: date = Field(primary_key=True)
    customer_id: str = Field(primary_key=True, max_length=200)
    meter: str = Field(primary_key=True, max_length=200)
    credits_micro: int = Field(sa_column=bigint())
    price_per_credit: str = Field(max_length=32)
    amount_minor: int = Field(sa_column=bigint())
    currency: str = Field(max_length=3)
    batch_id: str = Field(foreign_key="batches.batch_id", max_length=64)


class OverageSettlement(SQLModel, table=True):
    """Owed credits (a negative balance) paid from a later purchase: usage revenue that day."""

    __tablename__ = "overage_settlements"
    retention: ClassVar[Retention] = Retention.MUTABLE
    __table_args__ = (
        currency_check(),
        CheckConstraint("credits_micro > 0 AND value_minor >= 0",
                        name="ck_overage_settlements_sign"),
    )
    business_date: date = Field(primary_key=True)
    customer_id: str = Field(primary_key=True, max_length=200)
    purchase_id: str = Field(primary_key=True, foreign_key="lots.purchase_id", max_length=200)
    meter: str = Field(primary_key=True, max_length=200)
    credits_micro: int = Field(sa_column=bigint())
    value_minor: int = Field(sa_column=bigint())
    currency: str = Field(max_length=3)
    batch_id: str = Field(foreign_key="batches.batch_id", max_length=64)


TABLES = tables_of(globals())
