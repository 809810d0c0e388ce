#!/usr/bin/env bash
# A real local Airflow (standalone) over the demo quarter: the nightly DAG backfills
# 2026-01-01..2026-03-31 in order and the month-end DAG closes each month as it ends.
# UI: http://localhost:8080 (the admin password is printed by Airflow at start-up and
# kept in creditbooks-airflow/airflow-home/simple_auth_manager_passwords.json.generated).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD/creditbooks-airflow"
export PATH="$PWD/.venv/bin:$PATH"
export AIRFLOW_HOME="$root/airflow-home"
export AIRFLOW__CORE__DAGS_FOLDER="$PWD/dags"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=False
export AIRFLOW__API__HOST=127.0.0.1
export CREDITBOOKS_DB="sqlite:///$root/creditbooks.db"
export CREDITBOOKS_LANDING="$root/landing"
export CREDITBOOKS_ARCHIVE="$root/archive"
export CREDITBOOKS_CLOSE_DIR="$root/close"
export CREDITBOOKS_START_DATE=2026-01-01
export CREDITBOOKS_END_DATE=2026-03-31
.venv/bin/creditbooks demo --out "$root" --generate-only
.venv/bin/creditbooks --db "$CREDITBOOKS_DB" init
exec .venv/bin/airflow standalone
