# The README's commands. Each creates .venv and installs into it when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DAGSTER_HOME := $(CURDIR)/dagster_home

.PHONY: demo test test-cluster lint ui bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit("costwatch needs Python 3.11+") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/costwatch demo

# Two workers, one per core; a module's tests stay on one worker (its module-scoped fixtures),
# and the longest modules start first, in the order tests/conftest.py gives (no reordering by size).
# Under .ci/services.sh: Postgres and moto S3 on free loopback ports for the `distributed` tests,
# stopped by their PIDs when the shell exits; the shell exits with pytest's status.
test: $(STAMP)
	bash -c 'set -e; . .ci/services.sh; $(BIN)/python -m pytest -n 2 --dist loadfile --no-loadscope-reorder'

# The distributed mode end to end (tests/test_distributed_mode.py): a Dagster daemon on Postgres
# launching a run per day and stage, the lake on S3 (also in `make test`), then on local disk (only
# here, for `make test`'s 15 minutes). About four minutes on two cores.
test-cluster: $(STAMP)
	bash -c 'set -e; . .ci/services.sh; $(BIN)/python -m pytest tests/test_distributed_mode.py -m distributed -p no:cacheprovider -s'

# Python: formatted and clean under the rules in pyproject.toml. SQL: sqlfluff with the DuckDB
# dialect and the rule set in pyproject.toml ([tool.sqlfluff.*]). Nothing is rewritten; all three
# run, so one CI log shows every finding, and any finding fails the target.
lint: $(STAMP)
	status=0; \
	$(BIN)/ruff format --check . || status=1; \
	$(BIN)/ruff check . || status=1; \
	$(BIN)/sqlfluff lint --processes 2 sql/ pipelines/ || status=1; \
	exit $$status

ui: $(STAMP)
	$(BIN)/dagster dev -m pipelines.definitions --host 127.0.0.1 --port 3000

# Issue 12's benchmarks against the floor (bench/bench.py; BENCH_ARGS="--keep DIR" reuses inputs,
# "--only NAME ..." picks some), then the GX gates' own. Takes long: 10M requests, a year of days.
bench: $(STAMP)
	status=0; \
	$(BIN)/python bench/bench.py $(BENCH_ARGS) || status=1; \
	$(BIN)/python bench/bench_gx.py || status=1; \
	exit $$status

clean:
	rm -rf data dagster_home/storage dagster_home/history dagster_home/schedules dagster_home/.telemetry dagster_home/logs
