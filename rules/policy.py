"""The recognition policy: a TOML file accountants can read, loaded into frozen values.

The policy version is the SHA-256 of the parsed content in canonical JSON form, so
comments and layout do not change it but any rule does; every batch and entry records it.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ledger.accounts import ChartOfAccounts

DEFAULT_POLICY_FILE = Path(__file__).with_name("policy.toml")
BURN_ORDER_KEYS = ("priority", "expires_at", "per_credit_value", "purchased_at", "purchase_id")
SUPPORTED_OVERAGE = ("exception",)
SUPPORTED_BREAKAGE = ("remote",)
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
    breakage_method = document.get("breakage", {}).get("method", "remote")
    if breakage_method not in SUPPORTED_BREAKAGE:
        raise PolicyError(
            f"breakage.method {breakage_method!r} is not supported; use one of {SUPPORTED_BREAKAGE}"
        )
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
    try:
        base_tier = {currency: Decimal(str(price)) for currency, price in
                     document.get("kpis", {}).get("base_tier_price_per_credit", {}).items()}
    except InvalidOperation:
        raise PolicyError("kpis.base_tier_price_per_credit values must be decimal strings") from None
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
    )
