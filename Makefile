# binhyen — the two commands are `make demo` and `make test`; both run `setup` first.
# `setup` is idempotent: it creates .venv, installs the project, and installs Debian's
# ClickHouse and Prometheus when they are missing (apt-get; root or sudo).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
SYSTEM_TOOLS := clickhouse-server clickhouse-client prometheus promtool

.PHONY: setup system-packages demo test test-unit up down status bench clean

setup: system-packages $(STAMP)

system-packages:
	@missing=""; for tool in $(SYSTEM_TOOLS); do command -v $$tool >/dev/null 2>&1 || missing="$$missing $$tool"; done; \
	if [ -n "$$missing" ]; then \
	  echo "setup: installing Debian packages (missing:$$missing)"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq clickhouse-server clickhouse-client prometheus >/dev/null || \
	  { echo "setup: apt-get install clickhouse-server clickhouse-client prometheus failed; install them and re-run"; exit 1; }; \
	fi

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "setup: binhyen needs Python >= 3.11 (set PYTHON=python3.11)")'
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[test]'
	@touch $@

demo: setup
	$(BIN)/binhyen demo

test: setup
	$(BIN)/python -m pytest -q

test-unit: setup
	$(BIN)/python -m pytest -q tests/unit

up: setup
	$(BIN)/binhyen up

down:
	@[ -x $(BIN)/binhyen ] && $(BIN)/binhyen down || true

status: setup
	$(BIN)/binhyen status

clean: down
	rm -rf .state $(VENV)

# Measurements, not tests (figures and commands are in README.md). Needs the local stack for the last two.
bench: setup
	$(BIN)/python bench/dedup_quality.py
	$(BIN)/python bench/dedup_cost.py
	$(BIN)/python bench/credibility_quality.py --days 7 --seed 2 --plot bench/results/calibration.png
	$(BIN)/binhyen up
	$(BIN)/python bench/broker_latency.py
	$(BIN)/python bench/alert_latency.py --seconds 60
	$(BIN)/python bench/throughput.py --days 3
	$(BIN)/python bench/two_workers.py --days 3
