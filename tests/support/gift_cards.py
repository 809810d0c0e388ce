"""The policy of the gift-card tests: product "gift" under proportional breakage."""

from __future__ import annotations

import tomllib

from rules.policy import DEFAULT_POLICY_FILE, policy_from_document


def gift_card_policy(*rates: tuple[str, str], escheat_countries: tuple[str, ...] = ()):
    """The default policy with product "gift" expecting `rates` ((from date, rate) as the
    file writes them) of breakage, and the expired value of customers in
    `escheat_countries` owed to the state as unclaimed property."""
    document = tomllib.loads(DEFAULT_POLICY_FILE.read_text())
    document["unclaimed_property"] = {"countries": list(escheat_countries)}
    document["breakage"]["products"] = {"gift": {"method": "proportional", "rates": [
        {"from": starts, "rate": rate} for starts, rate in rates]}}
    return policy_from_document(document)
