# binhyen — the two commands are `make demo` and `make test`; both run `setup` first.
# `setup` is idempotent: it creates .venv, installs the project, and installs Debian's
# ClickHouse, Prometheus and ZooKeeper when they are missing (apt-get; root or sudo).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
SYSTEM_TOOLS := clickhouse-server clickhouse-client prometheus promtool
# ZooKeeper for the local ClickHouse cluster (`binhyen up --cluster`, tests/integration/test_cluster.py):
# Debian's `zookeeper` (the server jars; `zookeeperd` only adds a system service, which would
# listen on every interface — binhyen starts it itself, on loopback, by pid).
ZOOKEEPER_JAR := /usr/share/java/zookeeper.jar
SYSTEM_PACKAGES := clickhouse-server clickhouse-client prometheus zookeeper

.PHONY: setup system-packages demo test test-unit up down status bench clean mutation mutation-setup

setup: system-packages $(STAMP)

system-packages:
	@missing=""; for tool in $(SYSTEM_TOOLS); do command -v $$tool >/dev/null 2>&1 || missing="$$missing $$tool"; done; \
	[ -f $(ZOOKEEPER_JAR) ] || missing="$$missing zookeeper"; \
	if [ -n "$$missing" ]; then \
	  echo "setup: installing Debian packages (missing:$$missing)"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(SYSTEM_PACKAGES) >/dev/null || \
	  { echo "setup: apt-get install $(SYSTEM_PACKAGES) failed; install them and re-run"; exit 1; }; \
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
	$(BIN)/python -m pytest -q --durations=12

test-unit: setup
	$(BIN)/python -m pytest -q tests/unit

up: setup
	$(BIN)/binhyen up

down:
	@[ -x $(BIN)/binhyen ] && $(BIN)/binhyen down || true

status: setup
	$(BIN)/binhyen status

clean: down
	rm -rf .state $(VENV) $(MUT_VENV) mutants

# Measurements, not tests (figures and commands are in README.md). Needs the local stack for the last two.
bench: setup
	$(BIN)/python bench/dedup_quality.py
	$(BIN)/python bench/dedup_cost.py
	$(BIN)/python bench/simulator.py
	$(BIN)/python bench/credibility_quality.py --days 7 --seed 2 --plot bench/results/calibration.png
	$(BIN)/binhyen up
	$(BIN)/python bench/broker_latency.py
	$(BIN)/python bench/alert_latency.py --seconds 60
	$(BIN)/python bench/throughput.py --days 3
	$(BIN)/python bench/two_workers.py --days 3

# Mutation testing (mutmut 3) over the pure processors and the sink/checkpoint code, with the
# unit suite only; scope and options are in pyproject.toml [tool.mutmut], figures in
# bench/results/mutation.md. Not part of `make test`. It has its own venv: mutmut 3.8 needs
# click>=8.4.2 and faust-streaming pins click<8.4, so it cannot go into .venv's resolve.
# One child at a time (a 2-core machine, often shared with an integration run): about 20 min.
# Results are cached in mutants/ and only mutants of changed functions run again; after adding
# tests, `rm -rf mutants` (or `mutmut run NAME...`) to check the survivors again.
MUT_VENV := .venv-mutation
MUT_BIN := $(MUT_VENV)/bin
MUT_STAMP := $(MUT_VENV)/.installed-stamp
MUTMUT_CHILDREN ?= 1

$(MUT_STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "mutation: binhyen needs Python >= 3.11 (set PYTHON=python3.11)")'
	@[ -x $(MUT_BIN)/python ] || $(PYTHON) -m venv $(MUT_VENV)
	$(MUT_BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	$(MUT_BIN)/python -m pip install -q --disable-pip-version-check -e '.[test]'
	$(MUT_BIN)/python -m pip install -q --disable-pip-version-check --group mutation
	@touch $@

mutation-setup: $(MUT_STAMP)

mutation: mutation-setup
	$(MUT_BIN)/mutmut run --max-children $(MUTMUT_CHILDREN); status=$$?; $(MUT_BIN)/mutmut results; exit $$status
