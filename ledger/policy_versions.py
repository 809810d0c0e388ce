"""The policy's text, kept per version (issue 21).

Batches, entries and closes record the policy version, a hash of the policy document
(`rules.policy`); a hash names rules but cannot show them. `policy_versions` keeps the full
text of each version the first time a night or a close uses it, with who and for what, in
that night's or close's transaction, so the text in force on any past day can be shown and
two versions compared. The table is append-only: a version's text is kept once, never
replaced, and sealed onto the record chain when kept (`ledger/record_chain.py`), so a
version removed or put back is named by `creditbooks verify`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, text

from ledger.record_chain import seal_policy_version


class PolicyVersionNotKeptError(ValueError):
    """The ledger keeps no text for the policy version asked for."""


@dataclass(frozen=True)
class KeptPolicy:
    version: str
    policy_text: str
    first_used_by: str
    first_used_for: str
    first_used_at: datetime


def keep_policy_version(connection: Connection, version: str, policy_text: str, actor: str,
                        used_for: str, recorded_at: datetime) -> bool:
    """Keep `policy_text` as `version` unless it is kept already, in the caller's
    transaction; True if kept now. A policy with no file text (built in memory) is not kept."""
    if not policy_text:
        return False
    # ON CONFLICT: two Airflow runs first using one version both commit; the first text stays.
    # NOT EXISTS: SQLite's append-only trigger refuses an INSERT onto a kept version before
    # ON CONFLICT is reached (ledger/guards.py); SQLite's one writer makes it race-free there.
    # CAST: PostgreSQL infers one type for :version, here and in the comparison below.
    inserted = connection.execute(text(
        "INSERT INTO policy_versions (version, policy_text, first_used_by, first_used_for, "
        "first_used_at) SELECT CAST(:version AS VARCHAR), :policy_text, :actor, :used_for, "
        ":recorded_at "
        "WHERE NOT EXISTS (SELECT 1 FROM policy_versions WHERE version = :version) "
        "ON CONFLICT (version) DO NOTHING"),
        {"version": version, "policy_text": policy_text, "actor": actor, "used_for": used_for,
         "recorded_at": recorded_at})
    if inserted.rowcount != 1:
        return False
    seal_policy_version(connection, version)  # kept once, sealed once (ledger/record_chain.py)
    return True


def kept_policy(connection: Connection, version: str | None = None) -> KeptPolicy:
    """The kept text of `version`, or of the latest version first used; refused in one
    line naming the versions kept when there is none."""
    rows = connection.execute(text(
        "SELECT version, policy_text, first_used_by, first_used_for, first_used_at "
        "FROM policy_versions ORDER BY first_used_at, version")).fetchall()
    if not rows:
        raise PolicyVersionNotKeptError("this ledger keeps no policy text yet: a night or a close "
                                        "keeps the text of the policy it uses")
    if version is None:
        return KeptPolicy(*rows[-1])
    for row in rows:
        if row[0] == version:
            return KeptPolicy(*row)
    raise PolicyVersionNotKeptError(f"policy version {version} is not kept in this ledger "
                                    f"(kept: {', '.join(row[0] for row in rows)})")
