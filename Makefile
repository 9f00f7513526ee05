# costline: `make demo` runs the demo organization end to end; `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.9
UV := $(shell command -v uv 2>/dev/null)
ifeq ($(UV),)
UV := $(PYTHON) -m uv
endif
# The interpreter's real path (not a pyenv shim): with a shim, uv sees a "different" Python on
# every call and rebuilds .venv each time.
export UV_PYTHON ?= $(shell "$$(command -v python3.11 || command -v $(PYTHON))" -c 'import sys; print(sys.executable)' 2>/dev/null)

.PHONY: help setup print-python setup-system demo test test-unit lint typecheck bench docs clean

help:
	@echo "make demo   - set up, generate the demo organization, ingest it, report, and serve the dashboard"
	@echo "make test   - set up and run the whole test suite (unit + integration)"
	@echo "make lint / typecheck / bench / clean"

# uv from PyPI if missing, then the locked environment (.venv) from uv.lock, compiled to bytecode:
# uv does not compile by default, and a first `costline --help` that compiles every module it
# imports takes several times longer (docs/benchmarks.md, "CLI start-up"). Later runs only check.
setup:
	@command -v uv >/dev/null 2>&1 || $(PYTHON) -m uv --version >/dev/null 2>&1 || \
		$(PYTHON) -m pip install --quiet "uv==$(UV_VERSION)"
	$(UV) sync --locked --compile-bytecode

# Debian packages the integration tests need: Java 17 (PySpark), Prometheus and promtool (the real
# DCGM / kube-state-metrics source), Chromium (the dashboard's browser tests, driven by Playwright
# with executable_path=/usr/bin/chromium). Installed as root with apt-get; CI runs as root on a
# fresh box.
SYSTEM_PACKAGES := prometheus
setup-system:
	@missing=""; \
	command -v java >/dev/null 2>&1 || missing="$$missing openjdk-17-jre-headless"; \
	command -v promtool >/dev/null 2>&1 || missing="$$missing $(SYSTEM_PACKAGES)"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	if [ -z "$$missing" ]; then echo "system packages present"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	else echo "warning: missing$$missing (install them as root); their tests will be skipped"; fi

# The demo organization end to end, then its dashboard and API (Ctrl-C stops the server).
DEMO_PORT ?= 8000
demo: setup
	$(UV) run costline demo --fresh --format table
	$(UV) run costline --ledger duckdb://demo-org/ledger.duckdb --config demo-org/costline.yaml \
		serve --host 127.0.0.1 --port $(DEMO_PORT)

test: setup setup-system
	$(UV) run pytest -q

test-unit: setup
	$(UV) run pytest -q tests/unit

lint: setup
	$(UV) run ruff check src tests bench
	$(UV) run ruff format --check src tests bench

typecheck: setup
	$(UV) run mypy

docs: setup
	$(UV) run python -m costline.cli.reference > docs/cli.md

bench: setup
	$(UV) run python bench/ingest.py

clean:
	rm -rf .costline demo-org bench/out .pytest_cache .mypy_cache .ruff_cache

print-python:
	@echo "$(UV_PYTHON)"
