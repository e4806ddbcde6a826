# aurora-gameday — every target sets up what it needs on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup engines test bench clean

setup: $(STAMP) engines

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# PostgreSQL 15 server binaries (postgres, pg_receivewal, pg_rewind, pgbench) for the emulator.
engines:
	@if ls /usr/lib/postgresql/15/bin/pg_receivewal >/dev/null 2>&1; then \
		echo "engines: PostgreSQL 15 server binaries present"; \
	else \
		echo "engines: installing PostgreSQL 15 server binaries"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends postgresql-15 postgresql-client-15; \
	fi

test: setup
	$(BIN)/pytest

bench: setup
	$(BIN)/python -m harness.bench.emulator

clean:
	rm -rf $(VENV) build *.egg-info
