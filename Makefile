# Two commands do all the set-up on a fresh machine:
#   make demo   the main job: a synthetic quarter on embedded SQLite
#   make test   the whole test suite (SQLite and a real PostgreSQL the harness starts)
#   make test-fast   the quick subset for every change (no slow or PostgreSQL tests)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: install demo test test-fast lint airflow airflow-postgres bench bench-quick clean

install: $(INSTALLED)

$(INSTALLED): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==0.13.9
	$(BIN)/uv pip install --quiet --python $(BIN)/python --require-hashes -r requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $@

demo: install
	$(BIN)/creditbooks demo

test: install lint
	bash scripts/ensure-test-tools.sh
	$(BIN)/pytest

# Every package, without the tests marked slow (each over a second here) or PostgreSQL.
test-fast: install lint
	$(BIN)/pytest -m "not slow and not postgres" -q

airflow: install
	bash scripts/airflow-demo.sh

# Scale-out proven: LocalExecutor on PostgreSQL runs burn shards at once, posting the CLI's books.
airflow-postgres: install
	bash scripts/airflow-postgres.sh $(AIRFLOW_POSTGRES_ARGS)

# The benchmark suite (not part of `make test`): `make bench BENCH_ARGS="--name mine"`.
bench: install
	bash scripts/ensure-test-tools.sh
	$(BIN)/python -m bench $(BENCH_ARGS)

# Every figure at a tenth of the scale, once each, in about five minutes: bench/results/quick.json.
bench-quick: install
	$(BIN)/python -m bench --preset quick $(BENCH_ARGS)

lint: install
	$(BIN)/ruff check ledger intake rules reports creditbooks dags tests bench
	$(BIN)/ruff check --preview --select AIR dags

clean:
	rm -rf $(VENV) creditbooks-demo creditbooks-airflow .pytest_cache
