"""Who did it: the one place the person behind an action is resolved (issue 21).

Every action that changes the books records an actor: the nightly run (command line and
Airflow), close, reopen, and the manual journals' import, approve, reject and reverse. The
actor is the name given (`--actor`, or the Airflow run's person, which its task passes as
given: `airflow_actor`), else `$CREDITBOOKS_ACTOR`. Close, reopen and approve refuse
without one: a lock signed by whatever account the shell runs as is no signature. The
nightly run, which a scheduler starts, may fall back to the operating-system user,
recorded as `os:NAME` so it is never mistaken for a named person.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping

ACTOR_ENVIRONMENT_VARIABLE = "CREDITBOOKS_ACTOR"
OS_USER_PREFIX = "os:"
DAG_OWNER_PREFIX = "dag-owner:"
MAX_ACTOR_LENGTH = 200  # the actor columns' width (ledger/schema/)


class MissingActorError(ValueError):
    """An action that needs a named person was given none, or not a usable name."""


def resolve_actor(given: str | None, action: str, os_fallback: bool = False) -> str:
    """The actor of `action` (e.g. "closing a period"): `given`, else $CREDITBOOKS_ACTOR,
    else (only with `os_fallback`) `os:` and the operating-system user; else refused in
    one line saying how to give one."""
    name = (given or "").strip() or os.environ.get(ACTOR_ENVIRONMENT_VARIABLE, "").strip()
    if name:
        return _checked(name, action)
    if os_fallback:
        return OS_USER_PREFIX + getpass.getuser()
    raise MissingActorError(f"{action} needs a person: give --actor NAME or set "
                            f"${ACTOR_ENVIRONMENT_VARIABLE}")


def _checked(name: str, action: str) -> str:
    if not name.isprintable() or len(name) > MAX_ACTOR_LENGTH:
        raise MissingActorError(f"{action}: the actor must be a name on one line of at most "
                                f"{MAX_ACTOR_LENGTH} characters, not {name[:40]!r}")
    if name.startswith(OS_USER_PREFIX):  # that prefix says "no person was named"
        raise MissingActorError(f"{action}: the actor {name!r} is not a person's name; "
                                f"{OS_USER_PREFIX}NAME is recorded only for unnamed nightly runs")
    return name


def airflow_actor(context: Mapping) -> str:
    """The person behind an Airflow task (its task context): who triggered the DAG run
    (Airflow 3's `dag_run.triggering_user_name`; none for a scheduled run), else the DAG's
    owner, recorded as `dag-owner:NAME`."""
    user = getattr(context.get("dag_run"), "triggering_user_name", None)
    if user and str(user).strip():
        return str(user).strip()
    owner = getattr(context.get("dag"), "owner", None) or "airflow"
    return f"{DAG_OWNER_PREFIX}{owner}"
