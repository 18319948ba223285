PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
UI := src/edgestack/hub/ui
UI_STAMP := $(UI)/node_modules/.package-lock.json

.PHONY: demo test lint clean system-packages

# Flower (flwr) pins typer, rich, FastAPI, uvicorn and protobuf below what the rest runs on
# (that typer warns on import with today's click, an error under the tests); its SuperLink,
# SuperNodes and apps run on the newer ones, so it goes in without its pins.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip install --quiet --no-deps 'flwr>=1.42,<2'
	touch $(STAMP)

# The dashboard's one browser library (Chart.js), as its lock file pins it, served by the hub;
# without npm the dashboard works and says it cannot draw charts.
$(UI_STAMP): $(UI)/package-lock.json
	@if command -v npm >/dev/null; then cd $(UI) && npm ci --no-audit --no-fund --silent; \
	else echo "npm not found: the dashboard will draw no charts (install nodejs and npm)" >&2; fi

demo: $(STAMP) $(UI_STAMP)
	$(BIN)/edgestack demo --report demo-report.json

# The MQTT tests run a real Mosquitto broker, the PostgreSQL tests a real PostgreSQL server,
# the speak sink's tests espeak-ng and the dashboard's tests Chromium (they skip, saying why,
# without them); as root with apt-get, install them.
system-packages:
	@missing=""; \
	command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || missing="mosquitto"; \
	command -v espeak-ng >/dev/null || missing="$$missing espeak-ng"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
	    || missing="$$missing postgresql"; \
	if [ -n "$$missing" ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    export DEBIAN_FRONTEND=noninteractive; \
	    { apt-get install -y -qq $$missing || { apt-get update -qq && apt-get install -y -qq $$missing; }; } \
	        >/dev/null || echo "could not install$$missing; their tests will skip" >&2; \
	fi

# Two workers, each test file on one: the integration tests mostly wait on their processes,
# so the second core is free half the time, and a file's module fixtures are built once.
test: $(STAMP) $(UI_STAMP) system-packages
	$(BIN)/pytest -q -n 2 --dist loadfile --durations=25

lint: $(STAMP)
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy src

clean:
	rm -rf $(VENV) $(UI)/node_modules demo-data demo-report.json test-artifacts
