# Two commands do all the set-up on a fresh machine:
#   make demo   run the instrumented example CLI and show its telemetry (no server needed)
#   make test   install everything the tests need (Python deps, the collector built from
#               collector/builder-config.yaml, Prometheus, Jaeger, telemetrygen) and run them all

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-12)

.PHONY: demo test test-python lint bench collector collector-test tools compat instrument-venv clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,grpc]'
	rm -f $(VENV)/.installed-* && touch $@

demo: $(STAMP)
	PY=$(PY) bash examples/deploy/demo.sh

collector:
	bash collector/build.sh

# The Go checks of our collector modules (normalizer processor, ingestguard extension): vet,
# unit tests (incl. the SDK scrub vectors and the shipped allowlist), and a bounded fuzz run
# of each fuzz target.
GO ?= PATH="$$PATH:/usr/local/go/bin" go
collector-test:
	cd collector/normalizer && $(GO) vet ./... && $(GO) test ./... \
	  && $(GO) test -run='^$$' -fuzz='^FuzzNormalizeTraces$$' -fuzztime=12s . \
	  && $(GO) test -run='^$$' -fuzz='^FuzzNormalizeMetrics$$' -fuzztime=5s . \
	  && $(GO) test -run='^$$' -fuzz='^FuzzScrubText$$' -fuzztime=5s .
	cd collector/ingestguard && $(GO) vet ./... && $(GO) test ./... \
	  && $(GO) test -run='^$$' -fuzz='^FuzzCheckProto$$' -fuzztime=10s . \
	  && $(GO) test -run='^$$' -fuzz='^FuzzCheckJSON$$' -fuzztime=5s .

tools:
	bash collector/install-test-tools.sh

# The oldest supported click (8.1) and typer before it vendored click (0.15).
compat: $(STAMP)
	test -x .work/compat-venv/bin/python || $(PYTHON) -m venv .work/compat-venv
	.work/compat-venv/bin/python -m pip install -q 'click==8.1.8' 'typer==0.15.4' -e .

# Three real CLIs from PyPI (click, typer, argparse) for the opentelemetry-instrument tests.
instrument-venv: $(STAMP)
	bash examples/instrument/setup-venv.sh

lint: $(STAMP)
	$(VENV)/bin/ruff check otel_cli_telemetry tests examples benchmarks
	$(VENV)/bin/mypy
	$(PY) -W error -c "import otel_cli_telemetry"

test-python: $(STAMP)
	$(PY) -m pytest -q

test: $(STAMP) collector collector-test tools lint compat instrument-venv
	$(PY) -m pytest -q

bench: $(STAMP) collector
	$(PY) benchmarks/overhead.py
	$(PY) benchmarks/instructions.py
	$(PY) benchmarks/drain_throughput.py
	$(PY) benchmarks/collector_load.py

clean:
	rm -rf $(VENV) .work
