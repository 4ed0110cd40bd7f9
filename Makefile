# Two commands for a new machine (only Python 3.11, pip and make needed; Node 18+ and npm for
# TypeScript pipeline files):
#   make dev    installs, seeds demo logs into the local plane if empty, materializes the examples'
#               windows once, starts the Dagster UI
#   make test   installs, runs the test suite
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 3000
export DAGSTER_HOME ?= $(CURDIR)/dagster_home
export DAGSTER_DISABLE_TELEMETRY = 1

.PHONY: install dev test seed first-run serve bench

NODE_ROOM := pipelines_repo/node

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

# The Node runner for .ts/.js pipeline files: exact versions from the committed lockfile, no
# install scripts (so no download of bt's binary). Without node/npm, TS files report how to fix it.
$(NODE_ROOM)/node_modules/.installed: $(NODE_ROOM)/package.json $(NODE_ROOM)/package-lock.json
	@if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then \
		BT_SKIP_DOWNLOAD=1 npm ci --prefix $(NODE_ROOM) --ignore-scripts --no-audit --no-fund --loglevel=error && touch $@; \
	else \
		echo "note: node/npm not found; TypeScript pipeline files need Node 18+ (apt-get install nodejs npm), then make install"; \
	fi

install: $(VENV)/.installed $(NODE_ROOM)/node_modules/.installed

seed: install
	$(VENV)/bin/bt-dagster local seed --if-empty --project "Customer Support" --days 30 --spans-per-day 200

# Materialize the windows with logs of every example once (later starts find them done).
first-run: seed
	$(VENV)/bin/bt-dagster first-run

dev: first-run
	$(VENV)/bin/dagster dev -w workspace.yaml -h 127.0.0.1 -p $(PORT)

test: install
	$(PY) -m pytest

serve: install
	$(VENV)/bin/bt-dagster local serve --port 8765

bench: install
	$(PY) benchmarks/local_plane.py
