#!/usr/bin/env bash
# Scale-out, proven on this machine (issue 26): a real Airflow 3 scheduler, DAG processor and
# API server with LocalExecutor (parallelism 4), Airflow's metadata and the ledger on a
# throwaway PostgreSQL server. The scheduler catches up the nightly DAG over a few business
# days of generated landing files, each burn mapped over 4 customer shards; then the script
# prints each run's burn task instances (start, end, process) and which of them overlapped,
# and compares the ledger's trial balances, journal entry count and chain head with the same
# nights posted by `creditbooks nightly` on SQLite. Exit 0 when shards overlapped and the
# books are the same.
#
#   make airflow-postgres                                   # 2026-01-01..03, 4 shards
#   scripts/airflow-postgres.sh --from 2026-01-01 --to 2026-01-05 --shards 6 --parallelism 4
#
# Files and logs stay in creditbooks-airflow/scale-out/ (task logs under airflow-home/logs/).
# Run as root (PostgreSQL then runs as `postgres`) or as a user who can run initdb.
set -euo pipefail
cd "$(dirname "$0")/.."

.venv/bin/python -m tests.support.airflow_cluster "$@" &
runner=$!
# Whatever ends this script (Ctrl-C, a kill, an error), the runner stops Airflow's process
# groups and the PostgreSQL server; the script waits until it has (up to a minute).
stop_runner() {
    kill -TERM "$runner" 2>/dev/null || return 0
    for _ in $(seq 60); do kill -0 "$runner" 2>/dev/null || return 0; sleep 1; done
}
trap 'stop_runner; exit 130' INT
trap 'stop_runner; exit 143' TERM
trap stop_runner EXIT
wait "$runner"
