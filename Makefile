PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint clean broker

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/edgestack demo --report demo-report.json

# The MQTT tests run a real Mosquitto broker (they skip, saying why, without one); as root
# with apt-get, install it.
broker:
	@if ! command -v mosquitto >/dev/null && [ ! -x /usr/sbin/mosquitto ] \
	    && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    export DEBIAN_FRONTEND=noninteractive; \
	    { apt-get install -y -qq mosquitto || { apt-get update -qq && apt-get install -y -qq mosquitto; }; } \
	        >/dev/null || echo "could not install mosquitto; the MQTT tests will skip" >&2; \
	fi

test: $(STAMP) broker
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy src

clean:
	rm -rf $(VENV) demo-data demo-report.json
