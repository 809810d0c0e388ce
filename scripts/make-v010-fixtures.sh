#!/usr/bin/env bash
# Make the v0.1.0 fixture ledgers the migration tests upgrade (tests/fixtures/v0.1.0/):
# the demo's first five nights (100 customers), posted by the v0.1.0 code itself into a
# SQLite file and into a PostgreSQL database (saved as a plain-SQL pg_dump), and the books
# v0.1.0 reported for them (books.json: trial balances, lot balances, chain head).
#
# The v0.1.0 code runs from a git worktree of the tag with this repo's venv python and
# PYTHONPATH at the worktree, so the editable install (which points at this tree) is not
# what runs; the script checks that. Run as root (PostgreSQL runs as `postgres`) or as a
# user who can run initdb.
#
#   scripts/make-v010-fixtures.sh            # worktree at /tmp/v010 (made if missing)
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-$repo/.venv/bin/python}
worktree=${V010_WORKTREE:-/tmp/v010}
out=$repo/tests/fixtures/v0.1.0
pg_bin=${PG_BIN:-$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | sort | tail -1)")}

git -C "$repo" rev-parse -q --verify v0.1.0 >/dev/null || git -C "$repo" tag v0.1.0 012a646
[ -d "$worktree" ] || git -C "$repo" worktree add --detach "$worktree" v0.1.0
[ "$(git -C "$worktree" rev-parse HEAD)" = "$(git -C "$repo" rev-parse 'v0.1.0^{commit}')" ] \
    || { echo "$worktree is not at v0.1.0" >&2; exit 1; }

old() {  # the v0.1.0 command line
    (cd "$worktree" && PYTHONPATH="$worktree" "$python" -c \
        'import sys; from creditbooks.cli import main; sys.argv[0] = "creditbooks"; main()' "$@")
}
loaded=$(cd "$worktree" && PYTHONPATH="$worktree" "$python" -c \
    'import ledger.store, creditbooks.cli; print(ledger.store.__file__, creditbooks.cli.__file__)')
case "$loaded" in "$worktree/ledger/store.py $worktree/creditbooks/cli.py") ;;
    *) echo "v0.1.0 run would load $loaded, not the worktree's code" >&2; exit 1 ;; esac

work=$(mktemp -d)
chmod 755 "$work"
server_running=""
cleanup() {
    [ -z "$server_running" ] || as_postgres "$pg_bin/pg_ctl" -D "$work/pg/data" -m fast stop >/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

old demo --generate-only --customers 100 --out "$work/demo"
nights=(nightly --from 2026-01-01 --to 2026-01-05 --landing "$work/demo/landing")

sqlite_url="sqlite:///$work/ledger.sqlite"
old --db "$sqlite_url" init
old --db "$sqlite_url" "${nights[@]}" --archive "$work/archive-sqlite"
old --db "$sqlite_url" verify >/dev/null

mkdir -p "$work/pg"
[ "$(id -u)" != 0 ] || chown postgres:postgres "$work/pg"
port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
as_postgres "$pg_bin/initdb" -D "$work/pg/data" -U postgres --auth=trust -E UTF8 --no-sync >/dev/null
as_postgres "$pg_bin/pg_ctl" -D "$work/pg/data" -l "$work/pg/server.log" -w \
    -o "-p $port -k $work/pg -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
server_running=yes
"$pg_bin/createdb" -h 127.0.0.1 -p "$port" -U postgres ledger
postgres_url="postgresql+psycopg://postgres@127.0.0.1:$port/ledger"
old --db "$postgres_url" init
old --db "$postgres_url" "${nights[@]}" --archive "$work/archive-postgresql"
old --db "$postgres_url" verify >/dev/null

# The books as v0.1.0 reports them, from each store: they must be the same books.
(cd "$worktree" && PYTHONPATH="$worktree" "$python" "$repo/scripts/record_books.py" \
    "$sqlite_url" "$work/books-sqlite.json")
(cd "$worktree" && PYTHONPATH="$worktree" "$python" "$repo/scripts/record_books.py" \
    "$postgres_url" "$work/books-postgresql.json")
diff "$work/books-sqlite.json" "$work/books-postgresql.json" >&2 \
    || { echo "v0.1.0 reported different books on SQLite and PostgreSQL" >&2; exit 1; }

mkdir -p "$out"
# One file, no WAL beside it: fold the write-ahead log into the database file.
"$python" -c 'import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute("PRAGMA wal_checkpoint(TRUNCATE)"); c.close()' "$work/ledger.sqlite"
cp "$work/ledger.sqlite" "$out/ledger.sqlite"
"$pg_bin/pg_dump" -h 127.0.0.1 -p "$port" -U postgres --no-owner --no-privileges ledger \
    > "$out/ledger.postgresql.sql"
cp "$work/books-sqlite.json" "$out/books.json"
# The archive both ledgers wrote (the same bytes: checked), which `upgrade --archive` adopts.
diff -r "$work/archive-sqlite" "$work/archive-postgresql" >&2 \
    || { echo "v0.1.0 archived different partitions on SQLite and PostgreSQL" >&2; exit 1; }
rm -rf "$out/archive"
cp -r "$work/archive-sqlite" "$out/archive"
echo "made by v0.1.0 ($(git -C "$worktree" rev-parse --short HEAD)): $(ls "$out")"
