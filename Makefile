# Set-up is two commands: `make run` (the demo) and `make test` (the suite). Everything else is here too.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
TORCH_VERSION ?= 2.13.0

.PHONY: run test bench lint install install-test compile clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e .
	$(MAKE) --no-print-directory compile
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml
	# torch first, pinned: a CPU build is on disk, while other versions pull gigabytes of CUDA.
	$(PIP) install --quiet "torch==$(TORCH_VERSION)" || echo "torch $(TORCH_VERSION) not available: torch flavor tests will skip"
	$(PIP) install --quiet -e ".[all,dev]"
	# Debian's chromium for the browser tests (offline report, dashboard); playwright's own download is unreachable.
	SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); command -v chromium >/dev/null || ( $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver ) || echo "could not install chromium: browser tests will skip"
	# Debian's Alertmanager and promtool: notifications are delivered to a real Alertmanager, exported rules checked.
	SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); ( command -v prometheus-alertmanager && command -v promtool ) >/dev/null || ( $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus prometheus-alertmanager ) || echo "could not install prometheus and prometheus-alertmanager: their tests will skip (and fail in CI)"
	$(MAKE) --no-print-directory compile
	touch $@

# `shipyard serve` runs Python with -OO; its compiled files are written here once, so a server (and its
# shadow process) starts in seconds even where PYTHONDONTWRITEBYTECODE keeps Python from caching them.
# The other commands run plain Python: Shipyard's own modules get their plain bytecode too (pip compiles the
# libraries'), so `shipyard --help` does not recompile the CLI on every run.
compile:
	$(PY) -OO -m compileall -q -j 0 src $(VENV)/lib >/dev/null 2>&1 || true
	$(PY) -m compileall -q -j 0 src >/dev/null 2>&1 || true

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

run: $(VENV)/.installed
	$(VENV)/bin/shipyard demo

test: $(VENV)/.installed-test
	$(PY) -m pytest -n 2 --dist loadfile -q

bench: $(VENV)/.installed-test
	$(PY) benchmarks/run.py

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/mypy src

clean:
	rm -rf $(VENV) .shipyard .pytest_cache .ruff_cache .mypy_cache
