"""Whether a backup restored over a ledger is that ledger's own books.

`restore --replace` over a live ledger replaces years of books with a file. A file that
passes verify can still be a rewrite: someone with the project's own sealing functions can
change an entry and re-seal both chains from there. Such a file is told apart from an older
(or newer) backup of the same books by comparing the two ledgers' seals: the journal chain
and the record chain are append-only, so every backup of one ledger holds the same seal
at every sequence both have. A backup whose seal differs at a shared sequence is a rewrite
and is refused, naming the first differing seal. A backup of another ledger (its ledger id
differs) is refused unless asked for (`--other-ledger`), naming both ids and what the
replaced ledger holds. When one of them has no ledger id (made before ids, v0.1.0),
differing seals may be a rewrite or another ledger: refused, unless `--other-ledger`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, inspect, text

from creditbooks.backup import BackupError, _engine_at
from ledger.domain import BatchStatus, PeriodAction
from ledger.store import redacted

# The chains whose seals a backup of the same ledger shares, by table.
SEAL_TABLES = {"journal_seals": "journal chain", "record_seals": "record chain"}
_SEALS = {"journal_seals": "SELECT sequence, chain_hash FROM journal_seals",
          "record_seals": "SELECT sequence, chain_hash FROM record_seals"}


def require_same_books(backup_url: str, ledger_url: str, source: Path,
                       other_ledger: bool) -> str:
    """Refuse the backup at `backup_url` (restored from `source`) over the ledger at
    `ledger_url` unless it is the same ledger's books (or `other_ledger`); one line saying
    how they compare."""
    with _connected(backup_url) as backup, _connected(ledger_url) as ledger:
        backup_id, ledger_id = _ledger_id(backup), _ledger_id(ledger)
        if backup_id and ledger_id and backup_id != ledger_id:
            if other_ledger:
                return (f"the backup is ledger {backup_id}, replacing ledger {ledger_id} "
                        "(--other-ledger)")
            raise BackupError(
                f"backup {source} is ledger {backup_id}, but {redacted(ledger_url)} is ledger "
                f"{ledger_id}, which holds {_holdings(ledger)}; nothing was restored: give "
                "--other-ledger to replace it with another ledger's books")
        compared = []
        for table, chain in SEAL_TABLES.items():
            shared = _first_differing_seal(backup, ledger, table)
            if isinstance(shared, str) and not (backup_id and ledger_id) and other_ledger:
                # One of them predates ledger ids (v0.1.0): nothing says they are one ledger.
                return (f"the backup replaces {redacted(ledger_url)}'s books with other books "
                        f"(--other-ledger): its {chain} seal {shared}")
            if isinstance(shared, str) and not (backup_id and ledger_id):
                raise BackupError(
                    f"backup {source} is not {redacted(ledger_url)}'s books: its {chain} seal "
                    f"{shared}; {redacted(ledger_url)} holds {_holdings(ledger)}; nothing was "
                    "restored: give --other-ledger if the backup is another ledger's (one of "
                    "them has no ledger id to tell)")
            if isinstance(shared, str):
                raise BackupError(
                    f"backup {source} is not {redacted(ledger_url)}'s books: its {chain} seal "
                    f"{shared}; the backup is a rewrite of this ledger, nothing was restored "
                    f"(ledger {ledger_id or 'without an id'} is as it was)")
            compared.append(f"{chain} {shared} seals")
    return (f"the backup is the same ledger's books as the one replaced "
            f"({', '.join(compared)} alike)")


def _first_differing_seal(backup: Connection, ledger: Connection, table: str) -> int | str:
    """How many seals both ledgers hold alike in `table`, or the first that differs, as
    'at sequence N is X, the ledger's is Y'."""
    backup_seals, ledger_seals = _seals(backup, table), _seals(ledger, table)
    shared = sorted(backup_seals.keys() & ledger_seals.keys())
    for sequence in shared:
        if backup_seals[sequence] != ledger_seals[sequence]:
            return (f"at sequence {sequence} is {backup_seals[sequence]}, the ledger's is "
                    f"{ledger_seals[sequence]}")
    return len(shared)


def _seals(connection: Connection, table: str) -> dict[int, str]:
    """{sequence: chain hash} of a seal table ({} when the ledger predates it)."""
    if table not in inspect(connection).get_table_names():
        return {}
    return {int(row[0]): row[1] for row in connection.execute(text(_SEALS[table]))}


def _ledger_id(connection: Connection) -> str | None:
    if "ledger_identity" not in inspect(connection).get_table_names():
        return None
    return connection.execute(text("SELECT ledger_id FROM ledger_identity")).scalar()


def _holdings(connection: Connection) -> str:
    """'N nights published (the last D), M periods closed (P, Q)'."""
    nights = connection.execute(text(
        "SELECT COUNT(*), MAX(business_date) FROM batches WHERE status <> :open"),
        {"open": BatchStatus.OPEN}).first()
    last_action: dict[str, str] = {}
    for period, action in connection.execute(text(
            "SELECT period, action FROM period_events ORDER BY id")):
        last_action[period] = action  # the last event of a period rules
    closed = sorted(period for period, action in last_action.items()
                    if action == PeriodAction.CLOSE)
    last = f" (the last {str(nights[1])[:10]})" if nights[1] is not None else ""
    return (f"{int(nights[0])} nights published{last}, {len(closed)} periods closed"
            + (f" ({', '.join(closed)})" if closed else ""))


@contextmanager
def _connected(url: str) -> Iterator[Connection]:
    """A connection to `url`, its engine disposed after."""
    with _engine_at(url) as engine, engine.connect() as connection:
        yield connection
