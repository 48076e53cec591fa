# Two commands do all the set-up on a fresh machine:
#   make demo   run the instrumented example CLI and show its telemetry (no server needed)
#   make test   install everything the tests need (Python deps, the collector built from
#               collector/builder-config.yaml, Prometheus, Jaeger, telemetrygen) and run them all
# Others: make dist (a wheel in dist/), make lint, make bench, make clean.
#
# make test prepares in parallel: the Go builds (the collector, the test tools) beside the
# Python side (venv, lint, compat venv, instrument venv), then runs pytest. Each long step
# prints "==> step" when it starts and "==> step: N s" when it ends. Everything is cached
# (Go builds in ~/.cache/otel-cli-telemetry, venvs by a hash of pyproject.toml).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-12)
EXTRAS := .[test,grpc]
# pytest's own arguments for `make test` (e.g. PYTEST_ARGS="-x -k seed"), and its worker
# processes (pytest-xdist; 0 = in one process). Two workers on the 2-core reference machine:
# 149 s instead of 227 s, and 86 s instead of 145 s, for two different parts of the suite.
PYTEST_ARGS    ?=
PYTEST_WORKERS ?= 2

# $(STEP) "name" command args...: runs the command between two progress lines.
STEP := bash -c 'name=$$1; shift; start=$$(date +%s); echo "==> $$name" >&2; \
	if "$$@"; then echo "==> $$name: $$(( $$(date +%s) - start )) s" >&2; \
	else rc=$$?; echo "==> $$name: FAILED (exit $$rc) after $$(( $$(date +%s) - start )) s" >&2; \
	exit $$rc; fi' step

.PHONY: demo test test-python prepare lint bench collector collector-test tools \
	compat instrument-venv dist clean

$(STAMP): pyproject.toml
	@$(STEP) "python: $(VENV) with the package and its test dependencies" sh -c \
	  'test -x $(PY) || $(PYTHON) -m venv $(VENV); \
	   $(PY) -m pip install -q --disable-pip-version-check --upgrade pip && \
	   $(PY) -m pip install -q --disable-pip-version-check -e "$(EXTRAS)"'
	@rm -f $(VENV)/.installed-* && touch $@

demo: $(STAMP)
	PY=$(PY) bash examples/deploy/demo.sh

collector:
	@$(STEP) "go: collector (collector/build.sh)" bash collector/build.sh >/dev/null

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
	@$(STEP) "go: prometheus, telemetrygen, jaeger (collector/install-test-tools.sh)" \
	  bash collector/install-test-tools.sh >/dev/null

# The oldest supported click (8.1) and typer before it vendored click (0.15). Editable, so
# only a change of pyproject.toml (or of these pins) needs a reinstall.
COMPAT_PINS  := 'click==8.1.8' 'typer==0.15.4'
COMPAT_STAMP := .work/compat-venv/.installed-$(shell echo "$(COMPAT_PINS)" | cat - pyproject.toml \
	| sha256sum | cut -c1-12)

compat: $(COMPAT_STAMP)

$(COMPAT_STAMP): pyproject.toml $(STAMP)
	@test -x .work/compat-venv/bin/python || $(PYTHON) -m venv .work/compat-venv
	@$(STEP) "python: .work/compat-venv (click 8.1, typer 0.15)" \
	  .work/compat-venv/bin/python -m pip install -q --disable-pip-version-check \
	  $(COMPAT_PINS) -e .
	@rm -f .work/compat-venv/.installed-* && touch $@

# Three real CLIs from PyPI (click, typer, argparse) for the opentelemetry-instrument tests.
instrument-venv: $(STAMP)
	@$(STEP) "python: .work/instrument-venv (examples/instrument/setup-venv.sh)" \
	  bash examples/instrument/setup-venv.sh

lint: $(STAMP)
	@$(STEP) "lint: ruff" $(VENV)/bin/ruff check otel_cli_telemetry tests examples benchmarks
	@$(STEP) "lint: mypy" $(VENV)/bin/mypy
	@$(PY) -W error -c "import otel_cli_telemetry"

# The two Go builds (module downloads, then compiles on both cores) and the Python side
# (pip is mostly network; lint needs the venv first) overlap. Go's module and build caches
# are safe for concurrent builds.
prepare: $(STAMP)
	@$(MAKE) --no-print-directory -j5 collector collector-test tools lint compat instrument-venv

# The suite without the collector tests (so without the Go builds). The venvs the fixtures
# would otherwise make are made first: two workers must not race for them.
test-python: $(STAMP) compat instrument-venv
	$(PY) -m pytest -q -n $(PYTEST_WORKERS) -m "not collector" $(PYTEST_ARGS)

test:
	@start=$$(date +%s); \
	$(MAKE) --no-print-directory prepare && \
	$(STEP) "pytest ($(PYTEST_WORKERS) workers)" $(PY) -m pytest -q -n $(PYTEST_WORKERS) --durations=10 \
	  $(PYTEST_ARGS); rc=$$?; \
	echo "==> make test: $$(( $$(date +%s) - start )) s in all (exit $$rc)" >&2; exit $$rc

# A wheel of the package in dist/, installable anywhere: pip install dist/otel_cli_telemetry-*.whl
dist: $(STAMP)
	@rm -f dist/otel_cli_telemetry-*.whl
	@$(STEP) "dist: wheel" $(PY) -m pip wheel -q --disable-pip-version-check --no-deps \
	  -w dist .
	@ls dist/otel_cli_telemetry-*.whl

bench: $(STAMP) collector
	$(PY) benchmarks/overhead.py
	$(PY) benchmarks/instructions.py
	$(PY) benchmarks/drain_throughput.py
	$(PY) benchmarks/collector_load.py

clean:
	rm -rf $(VENV) .work dist
