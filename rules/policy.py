"""The recognition policy: a TOML file accountants can read, loaded into frozen values.

The policy version is the SHA-256 of the parsed content in canonical JSON form, so
comments and layout do not change it but any rule does; every batch and entry records it.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ledger.accounts import ChartOfAccounts
from ledger.money import is_known_currency

DEFAULT_POLICY_FILE = Path(__file__).with_name("policy.toml")
BURN_ORDER_KEYS = ("priority", "expires_at", "per_credit_value", "purchased_at", "purchase_id")
SUPPORTED_OVERAGE = ("exception", "arrears", "negative_balance")
SUPPORTED_BREAKAGE = ("remote", "proportional")
MAX_LATE_WINDOW_DAYS = 366


class PolicyError(ValueError):
    """The policy file is not valid; the message names the setting."""


EXPORT_TARGETS = ("netsuite", "quickbooks", "xero", "sap", "csv", "beancount")


@dataclass(frozen=True)
class ExportSettings:
    """ERP export settings: per-target account codes and each target's fixed fields."""

    account_codes: dict[str, dict[str, str]]
    netsuite_subsidiary: str = "1"
    sap_company_code: str = "1000"
    sap_document_type: str = "SA"
    xero_tax_rate: str = "Tax Exempt"

    def code(self, target: str, account: str) -> str:
        return self.account_codes.get(target, {}).get(account, account)


@dataclass(frozen=True)
class BreakageRule:
    """How one product's unused credits become revenue, and the breakage it expects.

    `rates` are (effective from, expected breakage rate) in date order: an estimate
    changes by adding a rate, never by editing an old one, so the books can say which
    rate was in force on any day.
    """

    method: str = "remote"
    rates: tuple[tuple[date, Decimal], ...] = ()

    def rate_on(self, business_date: date) -> Decimal:
        """The expected rate in force on a day; none before the first one (0)."""
        in_force = [rate for starts, rate in self.rates if starts <= business_date]
        return in_force[-1] if in_force else Decimal(0)


@dataclass(frozen=True)
class Policy:
    name: str
    version: str
    reporting_timezone: str
    accounts: ChartOfAccounts
    burn_order: tuple[str, ...]
    late_window_days: int
    overage: str
    breakage_method: str
    source: str
    exports: ExportSettings
    post_costs: bool = False
    base_tier_price_per_credit: dict[str, Decimal] = field(default_factory=dict)
    breakage_products: dict[str, BreakageRule] = field(default_factory=dict)
    # Countries (ISO 3166-1 alpha-2) whose expired value is remitted as unclaimed property.
    escheat_countries: frozenset[str] = frozenset()
    overage_customers: dict[str, str] = field(default_factory=dict)
    overage_price_per_credit: dict[str, Decimal] = field(default_factory=dict)
    # The currency overage is billed in for a customer who never bought credits.
    overage_currency: str = "USD"
    # The books' functional currency: every line also carries its amount in it.
    functional_currency: str = "USD"

    def breakage_rule(self, product: str) -> BreakageRule:
        return self.breakage_products.get(product, BreakageRule(self.breakage_method))

    def overage_for(self, customer_id: str) -> str:
        return self.overage_customers.get(customer_id, self.overage)


def load_policy(path: str | Path | None = None) -> Policy:
    policy_path = Path(path) if path else DEFAULT_POLICY_FILE
    try:
        raw_text = policy_path.read_text(encoding="utf-8")
        document = tomllib.loads(raw_text)
    except FileNotFoundError:
        raise PolicyError(f"policy file {policy_path} does not exist") from None
    except tomllib.TOMLDecodeError as error:
        raise PolicyError(f"policy file {policy_path} is not valid TOML: {error}") from None
    return policy_from_document(document, source=str(policy_path))


def policy_from_document(document: dict, source: str = "<memory>") -> Policy:
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
    version = hashlib.sha256(canonical.encode()).hexdigest()[:16]
    section = document.get("policy", {})
    timezone = section.get("reporting_timezone", "UTC")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise PolicyError(f"policy.reporting_timezone {timezone!r} is not a known timezone") from None
    try:
        accounts = ChartOfAccounts(**document.get("accounts", {}))
    except TypeError as error:
        raise PolicyError(f"[accounts]: {error}") from None
    except ValueError as error:
        raise PolicyError(f"[accounts]: {error}") from None
    burn_order = tuple(document.get("burn", {}).get("order", BURN_ORDER_KEYS))
    unknown = [key for key in burn_order if key not in BURN_ORDER_KEYS]
    if unknown or len(set(burn_order)) != len(burn_order) or burn_order[-1:] != ("purchase_id",):
        raise PolicyError(
            f"burn.order {list(burn_order)} must use distinct keys from {list(BURN_ORDER_KEYS)} "
            "and end with purchase_id so the order is total"
        )
    usage = document.get("usage", {})
    late_window_days = usage.get("late_window_days", 31)
    if not isinstance(late_window_days, int) or not 0 <= late_window_days <= MAX_LATE_WINDOW_DAYS:
        raise PolicyError(f"usage.late_window_days must be an integer 0..{MAX_LATE_WINDOW_DAYS}")
    overage = usage.get("overage", "exception")
    if overage not in SUPPORTED_OVERAGE:
        raise PolicyError(f"usage.overage {overage!r} is not supported; use one of {SUPPORTED_OVERAGE}")
    breakage = document.get("breakage", {})
    breakage_method = breakage.get("method", "remote")
    if breakage_method != "remote":
        raise PolicyError("breakage.method (the default) must be remote: the proportional "
                          "method needs a product's expected rate, set under [breakage.products]")
    breakage_products = {product: _breakage_rule(product, rule)
                         for product, rule in breakage.get("products", {}).items()}
    escheat_countries = frozenset(document.get("unclaimed_property", {}).get("countries", []))
    if any(not isinstance(code, str) or not re.fullmatch("[A-Z]{2}", code)
           for code in escheat_countries):
        raise PolicyError("unclaimed_property.countries must be ISO 3166-1 alpha-2 codes")
    overage_customers = dict(usage.get("overage_customers", {}))
    for customer, rule in overage_customers.items():
        if rule not in SUPPORTED_OVERAGE:
            raise PolicyError(f"usage.overage_customers.{customer} {rule!r} is not supported; "
                              f"use one of {SUPPORTED_OVERAGE}")
    overage_price = _decimal_table(usage.get("overage_price_per_credit", {}),
                                   "usage.overage_price_per_credit")
    export = dict(document.get("export", {}))
    account_codes = export.pop("account_codes", {})
    unknown_targets = sorted(set(account_codes) - set(EXPORT_TARGETS))
    if unknown_targets:
        raise PolicyError(f"export.account_codes: unknown target {unknown_targets[0]!r}; "
                          f"targets are {', '.join(EXPORT_TARGETS)}")
    try:
        exports = ExportSettings(account_codes=account_codes, **export)
    except TypeError as error:
        raise PolicyError(f"[export]: {error}") from None
    post_costs = document.get("costs", {}).get("post", False)
    if not isinstance(post_costs, bool):
        raise PolicyError("costs.post must be true or false")
    base_tier = _decimal_table(document.get("kpis", {}).get("base_tier_price_per_credit", {}),
                               "kpis.base_tier_price_per_credit")
    return Policy(
        name=section.get("name", "default"),
        version=version,
        reporting_timezone=timezone,
        accounts=accounts,
        burn_order=burn_order,
        late_window_days=late_window_days,
        overage=overage,
        breakage_method=breakage_method,
        source=source,
        exports=exports,
        post_costs=post_costs,
        base_tier_price_per_credit=base_tier,
        breakage_products=breakage_products,
        escheat_countries=escheat_countries,
        overage_customers=overage_customers,
        overage_price_per_credit=overage_price,
        overage_currency=usage.get("overage_currency", "USD"),
        functional_currency=_currency(document.get("fx", {}).get("functional_currency", "USD"),
                                      "fx.functional_currency"),
    )


def _currency(code, name: str) -> str:
    if not isinstance(code, str) or not is_known_currency(code):
        raise PolicyError(f"{name} {code!r} is not an ISO 4217 currency with a minor unit")
    return code


def _breakage_rule(product: str, rule: dict) -> BreakageRule:
    name = f"breakage.products.{product}"
    method = rule.get("method", "remote")
    if method not in SUPPORTED_BREAKAGE:
        raise PolicyError(f"{name}.method {method!r} is not supported; use one of "
                          f"{SUPPORTED_BREAKAGE}")
    rates = []
    for entry in rule.get("rates", []):
        try:
            starts = entry["from"] if isinstance(entry["from"], date) else date.fromisoformat(
                entry["from"])
            rate = Decimal(str(entry["rate"]))
        except (KeyError, TypeError, ValueError, InvalidOperation):
            raise PolicyError(f"{name}.rates: each rate needs from = a date and rate = a decimal "
                              "string such as \"0.05\"") from None
        if not Decimal(0) <= rate < Decimal(1):
            raise PolicyError(f"{name}.rates: rate {rate} must be at least 0 and below 1")
        rates.append((starts, rate))
    if [starts for starts, _ in rates] != sorted({starts for starts, _ in rates}):
        raise PolicyError(f"{name}.rates must be in date order, one per date")
    if method == "proportional" and not rates:
        raise PolicyError(f"{name}: the proportional method needs at least one expected rate")
    return BreakageRule(method, tuple(rates))


def _decimal_table(table: dict, name: str) -> dict[str, Decimal]:
    try:
        values = {key: Decimal(str(value)) for key, value in table.items()}
    except InvalidOperation:
        raise PolicyError(f"{name} values must be decimal strings") from None
    if any(value < 0 for value in values.values()):
        raise PolicyError(f"{name} values must not be negative")
    return values
