# Two commands for a new machine (only Python 3.11, pip and make needed):
#   make dev    installs, seeds demo logs into the local plane if empty, starts the Dagster UI
#   make test   installs, runs the test suite
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 3000
export DAGSTER_HOME ?= $(CURDIR)/dagster_home
export DAGSTER_DISABLE_TELEMETRY = 1

.PHONY: install dev test seed serve bench

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

install: $(VENV)/.installed

seed: install
	$(VENV)/bin/bt-dagster local seed --if-empty --project "Customer Support" --days 30 --spans-per-day 200

dev: seed
	$(VENV)/bin/dagster dev -w workspace.yaml -h 127.0.0.1 -p $(PORT)

test: install
	$(PY) -m pytest

serve: install
	$(VENV)/bin/bt-dagster local serve --port 8765

bench: install
	$(PY) benchmarks/local_plane.py
