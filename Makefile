# aurora-gameday — every target sets up what it needs on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup engines report-tools test bench soak gameday report clean

setup: $(STAMP) engines report-tools

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Engines for the emulator: PostgreSQL 15 (postgres, pg_receivewal, pg_rewind, pgbench; PL/Python for
# Aurora's aurora_inject_*() and aurora_replica_status() functions; pgextwlist, so the master user
# creates extensions as rds_superuser can) and
# MariaDB 10.11 (mariadbd, mariadb-install-db, mariadb-backup, mariadb-binlog).
engines:
	@missing=""; \
	ls /usr/lib/postgresql/15/bin/pg_receivewal >/dev/null 2>&1 || missing="$$missing postgresql-15 postgresql-client-15"; \
	ls /usr/share/postgresql/15/extension/plpython3u.control >/dev/null 2>&1 || missing="$$missing postgresql-plpython3-15"; \
	ls /usr/lib/postgresql/15/lib/plugins/pgextwlist.so >/dev/null 2>&1 || missing="$$missing postgresql-15-pgextwlist"; \
	command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || missing="$$missing mariadb-server"; \
	command -v mariadb-backup >/dev/null 2>&1 || missing="$$missing mariadb-backup"; \
	if [ -z "$$missing" ]; then echo "engines: PostgreSQL 15 and MariaDB present"; else \
		echo "engines: installing$$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# Allure 3 and playwright-core from npm (pinned in package-lock.json), Debian's Chromium for
# checking rendered reports in a real browser.
report-tools: node_modules/.installed
	@command -v chromium >/dev/null 2>&1 || { echo "report-tools: installing Chromium"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium; }

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The whole suite, as three streams at once (tools/test_streams.py says why they cannot meet).
test: setup
	$(BIN)/python tools/test_streams.py

# A game day on the local emulator, its HTML report, and a check of that report in Chromium.
gameday: setup
	@status=0; $(BIN)/gameday run --tags "not @negative-control" || status=$$?; \
	$(BIN)/gameday report && $(BIN)/python -m harness.report.inspect && \
	echo "gameday: report at $$(ls -dt $(CURDIR)/reports/*/html | head -1)/index.html"; \
	exit $$status

report: setup
	$(BIN)/gameday report

bench: setup
	$(BIN)/python -m harness.bench.emulator
	$(BIN)/python -m harness.bench.probes
	$(BIN)/python -m harness.bench.load
	$(BIN)/python -m harness.bench.load --workers 2
	$(BIN)/python -m harness.bench.restore
	$(BIN)/python -m harness.bench.backtrack
	$(BIN)/python -m harness.bench.global_database
	$(BIN)/python -m harness.bench.blue_green

# The long soak (not in `make test`, which runs ten back-to-back failovers per engine): 100 failovers
# per engine at random intervals with reboots and crashes, under writers and a Locust load, at DNS TTL
# 0 and 5 s; exits non-zero on any lost write, stuck failover or process left behind.
soak: setup
	$(BIN)/python -m harness.bench.soak

clean:
	rm -rf $(VENV) build *.egg-info
