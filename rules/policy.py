"""The recognition policy: a TOML file accountants can read, loaded into frozen values.

The policy version is the SHA-256 of the parsed content in canonical JSON form, so
comments and layout do not change it but any rule does; every batch and entry records it.
The file's text is kept with it (`Policy.text`): the ledger stores each version's text when
it is first used (`ledger/policy_versions.py`), and `policy_version_of_text` recomputes the
version from a stored or packaged text.

`[rate_card]` prices a metering system's raw quantities in credits (rules/rate_card.py); a
usage source with `rated = true` is given it (`UsageSource.rate_card`). It is a rule (the
same quantities at other rates post other revenue), so it is part of the version.

`[controls]` is segregation of duties: who may close a period (`closers`) and who may
approve (`approvers`: a reopen, a manual journal), each empty meaning anyone named;
`Policy.may_close` and `Policy.may_approve` answer for one actor.

The file is read against a schema (`SCHEMA`): every section and key is declared once, with
the parser that checks its type and range and its default. An unknown section or key, a
wrong type or a value out of range is refused before anything runs, with one line naming
the file, the section and the key: a misspelt section must not silently mean its default.
Every problem in the file is collected (as `ledger.errors.BooksError` values, in
`PolicyError.errors`), so one run names the first and counts the rest rather than making
the user fix them one at a time.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from intake.sources import (
    CONTRACT_SOURCE,
    FIELD_ROLES,
    TIME_FORMATS,
    USAGE_SOURCE_PRESETS,
    UsageSource,
)
from intake.stripe import PURCHASE_FORMATS, PurchaseSource, StripeMapping
from ledger.accounts import ChartOfAccounts, is_valid_account_name
from ledger.domain import OverageMode
from ledger.errors import BooksError, first_and_count
from ledger.money import is_known_currency
from rules.rate_card import (
    QUANTITY_DECIMAL_PLACES,
    RATE_DECIMAL_PLACES_MAX,
    RATE_WHOLE_DIGITS_MAX,
    VERSION_CHARACTERS_MAX,
    MeterRate,
    RateCard,
    Tier,
)

DEFAULT_POLICY_FILE = Path(__file__).with_name("policy.toml")
BURN_ORDER_KEYS = ("priority", "expires_at", "per_credit_value", "purchased_at", "purchase_id")
SUPPORTED_BREAKAGE = ("remote", "proportional")
MAX_LATE_WINDOW_DAYS = 366


class PolicyError(ValueError):
    """The policy file is not valid; the message names the file, section and key.

    `errors` holds every problem found, as data; the message is the first one and how many
    more there are (a file that cannot be read at all has only its message)."""

    def __init__(self, errors: str | Sequence[BooksError]):
        self.errors: tuple[BooksError, ...] = () if isinstance(errors, str) else tuple(errors)
        super().__init__(errors if isinstance(errors, str) else first_and_count(self.errors))


EXPORT_TARGETS = ("netsuite", "quickbooks", "xero", "sap", "csv", "beancount")
NETSUITE_DATE_FORMATS = ("MM/DD/YYYY", "DD/MM/YYYY", "YYYY-MM-DD")
XERO_DATE_FORMATS = ("DD/MM/YYYY", "DD MMM YYYY")


def _read_only(mapping: Mapping | None = None) -> Mapping:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class ExportSettings:
    """ERP export settings: per-target account codes and each target's fixed fields."""

    account_codes: Mapping[str, Mapping[str, str]]
    netsuite_subsidiary: str = "1"
    sap_company_code: str = "1000"
    sap_document_type: str = "SA"
    xero_tax_rate: str = "Tax Exempt"
    # Dates as the ERP user's date preference writes them (NetSuite's and Xero's imports
    # follow it); see EXPORT_DATE_FORMATS.
    netsuite_date_format: str = "MM/DD/YYYY"
    xero_date_format: str = "DD/MM/YYYY"
    # The file the account codes were read from: an export refusing a code names it.
    source: str = "the policy file"

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
    overage: OverageMode
    breakage_method: str
    source: str
    exports: ExportSettings
    post_costs: bool = False
    # The mappings are read-only (MappingProxyType): a frozen policy cannot change under a night.
    base_tier_price_per_credit: Mapping[str, Decimal] = field(default_factory=_read_only)
    breakage_products: Mapping[str, BreakageRule] = field(default_factory=_read_only)
    # Countries (ISO 3166-1 alpha-2) whose expired value is remitted as unclaimed property.
    escheat_countries: frozenset[str] = frozenset()
    overage_customers: Mapping[str, OverageMode] = field(default_factory=_read_only)
    overage_price_per_credit: Mapping[str, Decimal] = field(default_factory=_read_only)
    # The currency overage is billed in for a customer who never bought credits.
    overage_currency: str = "USD"
    # The books' functional currency: every line also carries its amount in it.
    functional_currency: str = "USD"
    # [sources.usage]: the metering system the usage file comes from, and its mapping.
    usage_source: UsageSource = CONTRACT_SOURCE
    # [sources.purchases]: the contract's purchases and refunds, or Stripe exports (intake/stripe.py).
    purchase_source: PurchaseSource = field(default_factory=PurchaseSource)
    # [chart] manual_accounts: accounts only people post to (manual journals), beside the roles.
    manual_accounts: tuple[str, ...] = ()
    # [rate_card]: credits per unit of each meter, for usage sources that report quantities.
    rate_card: RateCard | None = None

    # [controls]: who may close and who may approve; empty means anyone named.
    closers: frozenset[str] = frozenset()
    approvers: frozenset[str] = frozenset()
    # The file's text as read (a policy built from a document in memory has none).
    text: str = ""

    def breakage_rule(self, product: str) -> BreakageRule:
        return self.breakage_products.get(product, BreakageRule(self.breakage_method))

    def overage_for(self, customer_id: str) -> OverageMode:
        return self.overage_customers.get(customer_id, self.overage)

    def may_close(self, actor: str) -> bool:
        """Whether `actor` may close a period ([controls] closers; empty: anyone)."""
        return not self.closers or actor in self.closers

    def may_approve(self, actor: str) -> bool:
        """Whether `actor` may approve a reopen or a manual journal ([controls] approvers;
        empty: anyone). That the approver is not the requester is the caller's check."""
        return not self.approvers or actor in self.approvers


def policy_version_of_text(text: str) -> str:
    """The version of a policy text (TOML): what `load_policy` would record for it."""
    return _document_version(tomllib.loads(text))


def _document_version(document: dict) -> str:
    # The version hashes the document as parsed, not the checked values, so a file keeps
    # the version ledgers already recorded for it.
    canonical = json.dumps(_recognition_rules(document), sort_keys=True,
                           separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def load_policy(path: str | Path | None = None) -> Policy:
    policy_path = Path(path) if path else DEFAULT_POLICY_FILE
    try:
        raw_bytes = policy_path.read_bytes()
    except FileNotFoundError:
        raise PolicyError(f"policy file {policy_path} does not exist") from None
    except OSError as error:
        raise PolicyError(f"policy file {policy_path} cannot be read: {error.strerror}") from None
    try:
        text = raw_bytes.decode("utf-8")
        document = tomllib.loads(text)
    except UnicodeDecodeError as error:
        line = raw_bytes[:error.start].count(b"\n") + 1
        raise PolicyError(f"policy file {policy_path} is not UTF-8 text: line {line} has the "
                          f"byte 0x{raw_bytes[error.start]:02x}; save it as UTF-8") from None
    except tomllib.TOMLDecodeError as error:
        raise PolicyError(f"policy file {policy_path} is not valid TOML: {error}") from None
    return policy_from_document(document, source=str(policy_path), text=text)


def policy_from_document(document: dict, source: str = "<memory>", text: str = "") -> Policy:
    """The policy a parsed TOML document describes, checked against `SCHEMA`; `text` is
    the file it was parsed from."""
    version = _document_version(document)
    settings = _read_sections(document, source)
    accounts = _chart_of_accounts(settings["accounts"], document.get("accounts", {}),
                                  _Where(source, ("accounts",)))
    manual_accounts = settings["chart"]["manual_accounts"]
    exports = _export_settings(settings["export"], accounts, _Where(source, ("export",)),
                               manual_accounts)
    usage, breakage = settings["usage"], settings["breakage"]
    rate_card = _rate_card(settings["rate_card"], "rate_card" in document,
                           _Where(source, ("rate_card",)))
    usage_source = _rated_source(settings["sources"]["usage"], rate_card,
                                 _Where(source, ("sources", "usage")))
    return Policy(
        name=settings["policy"]["name"],
        version=version,
        reporting_timezone=settings["policy"]["reporting_timezone"],
        accounts=accounts,
        burn_order=settings["burn"]["order"],
        late_window_days=usage["late_window_days"],
        overage=usage["overage"],
        breakage_method=breakage["method"],
        source=source,
        exports=exports,
        post_costs=settings["costs"]["post"],
        base_tier_price_per_credit=settings["kpis"]["base_tier_price_per_credit"],
        breakage_products=breakage["products"],
        escheat_countries=settings["unclaimed_property"]["countries"],
        overage_customers=usage["overage_customers"],
        overage_price_per_credit=usage["overage_price_per_credit"],
        overage_currency=usage["overage_currency"],
        functional_currency=settings["fx"]["functional_currency"],
        closers=settings["controls"]["closers"],
        approvers=settings["controls"]["approvers"],
        text=text,
        usage_source=usage_source,
        rate_card=rate_card,
        purchase_source=settings["sources"]["purchases"],
        manual_accounts=manual_accounts,
    )


def _recognition_rules(document: dict) -> dict:
    """The document without [sources]: the version names the recognition rules, and where
    the files come from is not one (the same events from Lago or as CSV post the same
    entries). What was read is recorded anyway: each batch's input fingerprint, and the
    metering system's original file in the archive (intake/sources.py)."""
    return {section: value for section, value in document.items() if section != "sources"}


# --- where a value is, for messages ---------------------------------------------------------

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _key(name: str) -> str:
    """A key as TOML writes it: bare when it can be, else quoted (so it stays on one line)."""
    return name if _BARE_KEY.fullmatch(name) else json.dumps(name, ensure_ascii=False)


def _shown(value: object) -> str:
    """A value as the policy file writes it, short and on one line."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list) and any(isinstance(item, (dict, list)) for item in value):
        return "a list"
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, str) and len(value) > 60:
        value = value[:57] + "..."
    return json.dumps(value, ensure_ascii=False, default=str)


@dataclass(frozen=True)
class _Where:
    """A place in the policy file: its table (section path) and, when known, the key."""

    source: str
    section: tuple[str, ...]
    key: str | None = None

    def at(self, key: str) -> _Where:
        return _Where(self.source, self.section, key)

    def below(self) -> _Where:
        """The table this key holds, as a section of its own: [usage.overage_customers]."""
        return _Where(self.source, (*self.section, self.key))

    def problem(self, problem: str) -> BooksError:
        """The problem as data: the file, the message naming table and key, and that place."""
        table = ".".join(_key(part) for part in self.section)
        place = f"[{table}] {_key(self.key)}" if self.key is not None else f"[{table}]"
        return BooksError(source=self.source, message=f"{place} {problem}", entry=place)

    def refuse(self, problem: str) -> PolicyError:
        return PolicyError([self.problem(problem)])


def _collecting(problems: list[BooksError], parse: Callable, *arguments: object) -> object:
    """`parse(*arguments)`, or None with what it refused added to `problems`."""
    try:
        return parse(*arguments)
    except PolicyError as refused:
        problems.extend(refused.errors)
        return None


def _refuse_any(problems: list[BooksError]) -> None:
    if problems:
        raise PolicyError(problems)


# --- one parser per kind of value: the value as read, or PolicyError -------------------------

Parser = Callable[[object, _Where], object]
_DECIMAL_TEXT = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_DATE_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_COUNTRY_CODE = re.compile(r"[A-Z]{2}")


def _one_line_text(value: object) -> bool:
    return isinstance(value, str) and value.strip() != "" and value.isprintable()


def _name(value: object, where: _Where) -> str:
    if not _one_line_text(value):
        raise where.refuse(f"must be a name on one line, not {_shown(value)}")
    return value


def _text(value: object, where: _Where) -> str:
    if not _one_line_text(value):
        raise where.refuse(f"must be text on one line, not {_shown(value)}")
    return value


def _timezone(value: object, where: _Where) -> str:
    # "localtime" is whatever the machine says: not a rule the books can repeat elsewhere.
    problem = f'must be an IANA timezone name such as "America/New_York", not {_shown(value)}'
    if not isinstance(value, str) or value == "localtime":
        raise where.refuse(problem)
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "America" is a directory
        raise where.refuse(problem) from None
    return value


def _currency(value: object, where: _Where) -> str:
    if not isinstance(value, str) or not is_known_currency(value):
        raise where.refuse(f'must be an ISO 4217 currency code with a minor unit, such as "USD", '
                           f"not {_shown(value)}")
    return value


def _account_name(value: object, where: _Where) -> str:
    if not isinstance(value, str) or not is_valid_account_name(value):
        raise where.refuse(f'must be an account name such as "Income:Revenue:Usage", '
                           f"not {_shown(value)}")
    return value


def _manual_accounts(value: object, where: _Where) -> tuple[str, ...]:
    """[chart] manual_accounts: a list of account names, each once."""
    if not isinstance(value, list):
        raise where.refuse(f"must be a list of account names, not {_shown(value)}")
    names = tuple(_account_name(name, where) for name in value)
    if len(set(names)) != len(names):
        raise where.refuse("names an account twice")
    return names


def _true_or_false(value: object, where: _Where) -> bool:
    if not isinstance(value, bool):
        raise where.refuse(f"must be true or false, not {_shown(value)}")
    return value


def _one_of(choices: Iterable[str]) -> Parser:
    """A parser for one of `choices`; given a StrEnum, it returns the member, not the text."""
    members = tuple(choices)

    def parse(value: object, where: _Where) -> str:
        if not isinstance(value, str) or value not in members:
            listed = ", ".join(f'"{choice}"' for choice in members)
            raise where.refuse(f"must be one of {listed}, not {_shown(value)}")
        return members[members.index(value)]
    return parse


def _people(value: object, where: _Where) -> frozenset[str]:
    """A list of people's names, as actors are recorded (`creditbooks/actors.py`)."""
    if not isinstance(value, list) or not all(_one_line_text(name) for name in value):
        raise where.refuse(f'must be a list of names such as ["jane.cfo"], not {_shown(value)}')
    return frozenset(name.strip() for name in value)


def _late_window_days(value: object, where: _Where) -> int:
    # bool is an int in Python: `true` must not read as a window of 1 day.
    if isinstance(value, bool) or not isinstance(value, int) or not (
            1 <= value <= MAX_LATE_WINDOW_DAYS):
        raise where.refuse(f"must be a whole number of days from 1 to {MAX_LATE_WINDOW_DAYS}, "
                           f"not {_shown(value)}")
    return value


def _burn_order(value: object, where: _Where) -> tuple[str, ...]:
    order = tuple(value) if isinstance(value, list) else ()
    if (not order or any(key not in BURN_ORDER_KEYS for key in order)
            or len(set(order)) != len(order) or order[-1] != "purchase_id"):
        raise where.refuse(f"must list distinct keys from {', '.join(BURN_ORDER_KEYS)} and end "
                           f"with purchase_id so the order is total, not {_shown(value)}")
    return order


def _country_codes(value: object, where: _Where) -> frozenset[str]:
    if not isinstance(value, list):
        raise where.refuse('must be a list of ISO 3166-1 alpha-2 codes such as ["DE"], '
                           f"not {_shown(value)}")
    for code in value:
        if not isinstance(code, str) or not _COUNTRY_CODE.fullmatch(code):
            raise where.refuse(f'must be ISO 3166-1 alpha-2 codes such as "DE", not {_shown(code)}')
    return frozenset(value)


def _table(value: object, where: _Where, holds: str) -> dict:
    if not isinstance(value, dict):
        raise where.refuse(f"must be a table of {holds}, not {_shown(value)}")
    return value


def _each_entry(value: object, where: _Where, holds: str, parse: Parser) -> dict:
    """A table of `holds`, each entry `parse`d at its own key; every entry's problems are
    refused together, so one run of the check names them all."""
    problems: list[BooksError] = []
    parsed = {key: _collecting(problems, parse, entry, where.below().at(key))
              for key, entry in _table(value, where, holds).items()}
    _refuse_any(problems)
    return parsed


def _decimal_text(value: object, where: _Where, problem: str) -> Decimal:
    """A decimal written as a string ("0.05"): never a TOML float, which is binary."""
    if not isinstance(value, str) or not _DECIMAL_TEXT.fullmatch(value):
        raise where.refuse(f"{problem}, not {_shown(value)}")
    return Decimal(value)


def _price_table(value: object, where: _Where) -> Mapping[str, Decimal]:
    return _read_only(_each_entry(value, where, "currency = price per credit", _price))


def _price(price: object, where: _Where) -> Decimal:
    """The price per credit at key `where` (the currency it is in)."""
    _currency(where.key, where)
    parsed = _decimal_text(
        price, where, 'must be a price per credit written as a decimal string such as "0.01"')
    if parsed < 0:
        raise where.refuse(f"must not be negative, not {_shown(price)}")
    return parsed


def _overage_customers(value: object, where: _Where) -> Mapping[str, OverageMode]:
    return _read_only(_each_entry(value, where, "customer id = overage rule",
                                  _one_of(OverageMode)))


def _default_breakage_method(value: object, where: _Where) -> str:
    if value != "remote":
        raise where.refuse('must be "remote" (the default for every product; the proportional '
                           "method needs a product's expected rate, set under "
                           f"[breakage.products.NAME]), not {_shown(value)}")
    return value


def _breakage_products(value: object, where: _Where) -> Mapping[str, BreakageRule]:
    return _read_only(_each_entry(value, where, "[breakage.products.NAME] tables",
                                  _breakage_product))


def _breakage_product(rule: object, listed: _Where) -> BreakageRule:
    if not isinstance(rule, dict):
        raise listed.refuse(f"must be a table with method and rates, not {_shown(rule)}")
    product_where = listed.below()
    settings = _read_table(rule, PRODUCT_SCHEMA, product_where)
    if settings["method"] == "proportional" and not settings["rates"]:
        raise product_where.at("rates").refuse(
            "must not be empty: the proportional method needs at least one expected rate")
    return BreakageRule(settings["method"], settings["rates"])


def _breakage_rates(value: object, where: _Where) -> tuple[tuple[date, Decimal], ...]:
    shape = '{ from = DATE, rate = "0.05" }'
    if not isinstance(value, list):
        raise where.refuse(f"must be a list of {shape} entries, not {_shown(value)}")
    rates = []
    for number, entry in enumerate(value, start=1):
        if not isinstance(entry, dict) or set(entry) != {"from", "rate"}:
            found = f"a table with {', '.join(entry)}" if isinstance(entry, dict) else _shown(entry)
            raise where.refuse(f"entry {number} must be {shape}, not {found}")
        starts = _rate_start(entry["from"], where, number)
        rate = _decimal_text(entry["rate"], where, f'entry {number}: rate must be a decimal '
                             'string such as "0.05"')
        if not Decimal(0) <= rate < Decimal(1):
            raise where.refuse(f"entry {number}: rate must be at least 0 and below 1, "
                               f"not {_shown(entry['rate'])}")
        rates.append((starts, rate))
    if [starts for starts, _ in rates] != sorted({starts for starts, _ in rates}):
        raise where.refuse("must be in date order, one per date")
    return tuple(rates)


def _rate_start(value: object, where: _Where, number: int) -> date:
    # A TOML date, or its ISO text; a datetime is a date in Python but not a day.
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _DATE_TEXT.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise where.refuse(f"entry {number}: from must be a date such as 2026-01-01, "
                       f"not {_shown(value)}")


def _account_codes(value: object, where: _Where) -> dict[str, dict[str, str]]:
    """target -> ledger account -> ERP code; which accounts exist is checked with the chart."""
    return _each_entry(value, where, "[export.account_codes.TARGET] tables", _target_codes)


def _target_codes(table: object, target_where: _Where) -> dict[str, str]:
    """One target's account = code table."""
    if target_where.key not in EXPORT_TARGETS:
        raise target_where.refuse(f"is not a known target (known: {', '.join(EXPORT_TARGETS)})")
    codes = _table(table, target_where, "account = code")
    problems = [target_where.below().at(account).problem(
                    f"must be a code on one line, not {_shown(code)}")
                for account, code in codes.items() if not _one_line_text(code)]
    _refuse_any(problems)
    return dict(codes)


_FIELD_PATH = re.compile(r"[A-Za-z0-9_$@-]+(?:\.[A-Za-z0-9_$@-]+)*")


def _field_paths(value: object, where: _Where) -> tuple[str, ...]:
    """A field of a source's events, as a dotted path ("data.value"), or a list of paths of
    which each event's first present one is taken."""
    paths = [value] if isinstance(value, str) else value
    if (not isinstance(paths, list) or not paths
            or not all(isinstance(path, str) and _FIELD_PATH.fullmatch(path) for path in paths)):
        raise where.refuse('must be a field path such as "data.value", or a list of them (the '
                           f"first present wins), not {_shown(value)}")
    return tuple(paths)


def _usage_source(value: object, where: _Where) -> UsageSource:
    """[sources.usage]: a preset format (intake/sources.py), any field path or the time
    format overridden; the contract's own columns cannot be remapped."""
    source_where = where.below()
    settings = _read_table(_table(value, where, "format and field paths"), USAGE_SOURCE_SCHEMA,
                           source_where)
    preset = USAGE_SOURCE_PRESETS[settings["format"]]
    overrides = {role: settings[role] for role in FIELD_ROLES if settings[role]}
    if preset.is_contract and (overrides or settings["time_format"] or settings["rated"]):
        key = next(iter(overrides), "time_format" if settings["time_format"] else "rated")
        raise source_where.at(key).refuse(
            'maps a metering system\'s events; with format = "contract" (the default) the usage '
            "file has the contract's columns: set format first")
    if settings["rated"] and "credits" in overrides:
        raise source_where.at("credits").refuse(
            "is not read when rated = true: credits are the [rate_card] applied to the "
            "quantity field; remove credits or rated")
    if settings["rated"] and not overrides.get("quantity", preset.fields.get("quantity")):
        raise source_where.at("rated").refuse(
            'needs the field that holds each event\'s quantity: set quantity = "data.value" '
            "(the field path of the raw quantity)")
    return preset.overridden(overrides, settings["time_format"], settings["rated"])


def _rated_source(usage_source: UsageSource, rate_card: RateCard | None,
                  where: _Where) -> UsageSource:
    """The usage source, given the rate card when it reports quantities (rated = true)."""
    if not usage_source.rated:
        return usage_source
    if rate_card is None:
        raise where.at("rated").refuse(
            "needs a [rate_card] (its version and [rate_card.meters.NAME] rates) to turn "
            "quantities into credits")
    return usage_source.rated_by(rate_card)


def _purchase_source(value: object, where: _Where) -> PurchaseSource:
    """[sources.purchases]: the contract's files, or Stripe exports and how they name credits."""
    source_where = where.below()
    settings = _read_table(_table(value, where, "format and Stripe metadata keys"),
                           PURCHASE_SOURCE_SCHEMA, source_where)
    mapping = StripeMapping(**{key: settings[key] for key in PURCHASE_SOURCE_SCHEMA
                               if key != "format"})
    if settings["format"] != "stripe" and mapping != StripeMapping():
        key = next(key for key in PURCHASE_SOURCE_SCHEMA if key != "format" and key in value)
        raise source_where.at(key).refuse('maps Stripe objects; set format = "stripe" first')
    return PurchaseSource(settings["format"], mapping)


def _rate_card(settings: dict[str, object], written: bool, where: _Where) -> RateCard | None:
    """[rate_card]: none when the section is absent; when written, a version and a meter."""
    if not written:
        return None
    if settings["version"] is None:
        raise where.at("version").refuse(
            'is required: name this card\'s rates (e.g. "2026-01"); every burn slice it '
            "rates records it")
    if not settings["meters"]:
        raise where.at("meters").refuse(
            "must price at least one meter: [rate_card.meters.NAME] with credits_per_unit")
    return RateCard(settings["version"], settings["meters"])


def _rate_card_version(value: object, where: _Where) -> str:
    if not _one_line_text(value) or len(value) > VERSION_CHARACTERS_MAX:
        raise where.refuse(f'must be a version on one line of at most {VERSION_CHARACTERS_MAX} '
                           f'characters such as "2026-01", not {_shown(value)}')
    return value


def _rate_card_meters(value: object, where: _Where) -> Mapping[str, MeterRate]:
    return _read_only(_each_entry(value, where, "[rate_card.meters.NAME] tables", _meter_rate))


def _meter_rate(rate: object, listed: _Where) -> MeterRate:
    if not isinstance(rate, dict):
        raise listed.refuse(f"must be a table with credits_per_unit (and tiers), not "
                            f"{_shown(rate)}")
    meter_where = listed.below()
    settings = _read_table(rate, METER_RATE_SCHEMA, meter_where)
    if settings["credits_per_unit"] is None:
        raise meter_where.at("credits_per_unit").refuse(
            'is required: the credits one unit costs, as a decimal string such as "0.5"')
    return MeterRate(settings["credits_per_unit"], settings["tiers"])


def _credits_per_unit_rate(value: object, where: _Where, prefix: str = "") -> Decimal:
    """A rate card's credits per unit: above 0, below 10**9, at most 12 decimal places
    (so a quantity times it is exact in rules/rate_card.py). `prefix` names a tier's entry."""
    rate = _decimal_text(value, where, f'{prefix}must be credits per unit as a decimal string '
                         'such as "0.002"')
    places = max(0, -rate.normalize().as_tuple().exponent)
    if rate <= 0 or places > RATE_DECIMAL_PLACES_MAX or rate >= 10**RATE_WHOLE_DIGITS_MAX:
        raise where.refuse(f"{prefix}must be above 0, below {10**RATE_WHOLE_DIGITS_MAX:,} and "
                           f"have at most {RATE_DECIMAL_PLACES_MAX} decimal places, not "
                           f"{_shown(value)}")
    return rate


def _rate_tiers(value: object, where: _Where) -> tuple[Tier, ...]:
    """Graduated tiers: units of one event above each threshold at that tier's rate."""
    shape = '{ above = "1000", credits_per_unit = "0.001" }'
    if not isinstance(value, list):
        raise where.refuse(f"must be a list of {shape} entries, not {_shown(value)}")
    tiers: list[Tier] = []
    for number, entry in enumerate(value, start=1):
        if not isinstance(entry, dict) or set(entry) != {"above", "credits_per_unit"}:
            found = f"a table with {', '.join(entry)}" if isinstance(entry, dict) else _shown(entry)
            raise where.refuse(f"entry {number} must be {shape}, not {found}")
        above = _decimal_text(entry["above"], where, f"entry {number}: above must be a number "
                              'of units as a decimal string such as "1000"')
        if above <= 0 or max(0, -above.normalize().as_tuple().exponent) > QUANTITY_DECIMAL_PLACES:
            raise where.refuse(f"entry {number}: above must be above 0 with at most "
                               f"{QUANTITY_DECIMAL_PLACES} decimal places, not "
                               f"{_shown(entry['above'])}")
        if tiers and above <= tiers[-1].above_units:
            raise where.refuse(f"entry {number}: above must be greater than entry {number - 1}'s "
                               f"({tiers[-1].above_units}), not {_shown(entry['above'])}")
        rate = _credits_per_unit_rate(entry["credits_per_unit"], where,
                                      f"entry {number}: credits_per_unit ")
        tiers.append(Tier(above, rate))
    return tuple(tiers)


def _metadata_key(value: object, where: _Where) -> str:
    if not _one_line_text(value) or "." in value:
        raise where.refuse(f'must be a Stripe metadata key such as "credits", not {_shown(value)}')
    return value


def _credits_per_unit(value: object, where: _Where) -> Decimal:
    rate = _decimal_text(value, where, 'must be a positive decimal in quotes such as "1"')
    if rate <= 0:
        raise where.refuse(f"must be positive, not {_shown(value)}")
    return rate


# --- the schema: every section, its keys, their parsers and defaults -------------------------

Setting = tuple[Parser, object]  # (parser, default when the key is absent)

SCHEMA: dict[str, dict[str, Setting]] = {
    "policy": {"name": (_name, "default"), "reporting_timezone": (_timezone, "UTC")},
    "fx": {"functional_currency": (_currency, "USD")},
    "accounts": {role.name: (_account_name, role.default) for role in fields(ChartOfAccounts)},
    "burn": {"order": (_burn_order, BURN_ORDER_KEYS)},
    "usage": {
        "late_window_days": (_late_window_days, 31),
        "overage": (_one_of(OverageMode), OverageMode.EXCEPTION),
        "overage_customers": (_overage_customers, _read_only()),
        "overage_price_per_credit": (_price_table, _read_only()),
        "overage_currency": (_currency, "USD"),
    },
    # Where usage comes from: the contract, or a metering system's events mapped onto it.
    "sources": {"usage": (_usage_source, CONTRACT_SOURCE),
                "purchases": (_purchase_source, PurchaseSource())},
    "breakage": {"method": (_default_breakage_method, "remote"),
                 "products": (_breakage_products, _read_only())},
    "unclaimed_property": {"countries": (_country_codes, frozenset())},
    "costs": {"post": (_true_or_false, False)},
    "chart": {"manual_accounts": (_manual_accounts, ())},
    "kpis": {"base_tier_price_per_credit": (_price_table, _read_only())},
    "export": {
        "netsuite_subsidiary": (_text, "1"),
        "sap_company_code": (_text, "1000"),
        "sap_document_type": (_text, "SA"),
        "xero_tax_rate": (_text, "Tax Exempt"),
        "account_codes": (_account_codes, {}),
        "netsuite_date_format": (_one_of(NETSUITE_DATE_FORMATS), "MM/DD/YYYY"),
        "xero_date_format": (_one_of(XERO_DATE_FORMATS), "DD/MM/YYYY"),
    },
    # Segregation of duties: who may close, who may approve (empty: anyone named).
    "controls": {"closers": (_people, frozenset()), "approvers": (_people, frozenset())},
    # Credits per unit of each meter, for usage sources that report quantities (rated = true).
    "rate_card": {"version": (_rate_card_version, None),
                  "meters": (_rate_card_meters, _read_only())},
}
# [rate_card.meters.NAME]: the meter's rate, and graduated tiers above it.
METER_RATE_SCHEMA: dict[str, Setting] = {
    "credits_per_unit": (_credits_per_unit_rate, None),
    "tiers": (_rate_tiers, ()),
}
# [sources.usage]: the format (a preset), its time format and field paths, by role.
USAGE_SOURCE_SCHEMA: dict[str, Setting] = {
    "format": (_one_of(USAGE_SOURCE_PRESETS), "contract"),
    "time_format": (_one_of(TIME_FORMATS), None),
    **{role: (_field_paths, ()) for role in FIELD_ROLES},
    # The events carry raw quantities (the quantity field) that [rate_card] prices.
    "rated": (_true_or_false, False),
}
# [sources.purchases]: the format, and the metadata keys and rate that name a purchase's credits.
PURCHASE_SOURCE_SCHEMA: dict[str, Setting] = {
    "format": (_one_of(PURCHASE_FORMATS), "contract"),
    "credits_key": (_metadata_key, "credits"),
    "product_key": (_metadata_key, "product"),
    "expires_key": (_metadata_key, "expires_at"),
    "purchase_key": (_metadata_key, "purchase_id"),
    "grant_credits_per_unit": (_credits_per_unit, Decimal(1)),
}
# [breakage.products.NAME]
PRODUCT_SCHEMA: dict[str, Setting] = {
    "method": (_one_of(SUPPORTED_BREAKAGE), "remote"),
    "rates": (_breakage_rates, ()),
}


def _read_sections(document: dict, source: str) -> dict[str, dict[str, object]]:
    """Every section of SCHEMA, read (absent ones take their defaults); no unknown one.

    Every problem of every section is collected before refusing, unknown sections first."""
    problems = [_unknown_section(name, value, source)
                for name, value in document.items() if name not in SCHEMA]
    settings = {name: _collecting(problems, _read_table, document.get(name, {}), schema,
                                  _Where(source, (name,)))
                for name, schema in SCHEMA.items()}
    _refuse_any(problems)
    return settings


def _unknown_section(name: str, value: object, source: str) -> BooksError:
    known = ", ".join(SCHEMA)
    if isinstance(value, dict):
        place = f"[{_key(name)}]"
        return BooksError(source, f"{place} is not a known section (known: {known})", place)
    return BooksError(source, f"{_key(name)} is not a known section (known: {known}); "
                      "a setting belongs under its section's [header]", _key(name))


def _read_table(table: object, schema: dict[str, Setting], where: _Where) -> dict[str, object]:
    """One table's settings, each parsed or defaulted; unknown keys are refused.

    All of the table's problems are collected (unknown keys first, then in schema order)."""
    if not isinstance(table, dict):
        raise where.refuse(f"must be a table of settings, not {_shown(table)}")
    problems = [where.at(key).problem(f"is not a known key (known: {', '.join(schema)})")
                for key in table if key not in schema]
    settings = {key: _collecting(problems, parse, table[key], where.at(key))
                if key in table else default for key, (parse, default) in schema.items()}
    _refuse_any(problems)
    return settings


# --- the sections whose keys are checked together ---------------------------------------------

def _chart_of_accounts(roles: dict[str, str], written: dict, where: _Where) -> ChartOfAccounts:
    """The chart, each role with its own account (two roles on one account would net out).

    Roles the file sets are checked after the defaults, so a clash names the one written."""
    role_of: dict[str, str] = {}
    problems: list[BooksError] = []
    for role in sorted(roles, key=lambda role: role in written):
        account = roles[role]
        if account in role_of:
            problems.append(where.at(role).problem(
                f"is {_shown(account)}, the account of {role_of[account]} too; each role needs "
                "its own account"))
        role_of.setdefault(account, role)
    _refuse_any(problems)
    return ChartOfAccounts(**roles)


def _export_settings(settings: dict[str, object], accounts: ChartOfAccounts,
                     where: _Where, manual_accounts: tuple[str, ...] = ()) -> ExportSettings:
    """Export settings whose account codes name only accounts of the chart: a misspelt
    account would otherwise export under its ledger name, silently."""
    chart = set(accounts.all_accounts()) | set(manual_accounts)
    _refuse_any([where.at("account_codes").below().at(target).below().at(account).problem(
                     "is not an account of the chart ([accounts])")
                 for target, codes in settings["account_codes"].items()
                 for account in codes if account not in chart])
    account_codes = _read_only({target: _read_only(codes)
                                for target, codes in settings["account_codes"].items()})
    return ExportSettings(account_codes=account_codes, source=where.source, **{
        key: value for key, value in settings.items() if key != "account_codes"})
