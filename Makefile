# Two entry points for a fresh machine (see README): `make run` and `make test`.
# Both are idempotent: the virtual environment is built once and rebuilt only when a requirements
# file changes (stamp files in .venv/).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8501
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test install dev chromium fashion-mnist lint lint-checks clean

run: install fashion-mnist  ## set up and open the dashboard on the shipped demo zoos
	@echo "kdviz: open http://localhost:$(PORT) in your browser (Ctrl+C stops the app)"
	$(BIN)/python -m kdviz.ui.launch --server.port $(PORT)  # = streamlit run app.py, imports warmed meanwhile

test: dev chromium fashion-mnist  ## set up and run the whole test suite (lint, import contracts, dead code, pytest with browser tests)
	$(MAKE) --no-print-directory lint-checks
	$(BIN)/python -m pytest

install: $(VENV)/.app-installed
dev: $(VENV)/.dev-installed

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.app-installed: requirements.txt requirements-nodeps.txt pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install -r requirements.txt
	$(BIN)/python -m pip install --no-deps -r requirements-nodeps.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $@

$(VENV)/.dev-installed: requirements-dev.txt $(VENV)/.app-installed
	$(BIN)/python -m pip install -r requirements-dev.txt
	@touch $@

chromium:  ## Debian's Chromium for the real-browser tests (Playwright's own download does not work offline)
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "kdviz: installing Debian's chromium for the browser tests"; \
	  ($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium) || \
	  { if [ -n "$$CI" ]; then exit 1; else echo "kdviz: chromium not installed; browser tests will be skipped"; fi; }; }

FASHION_MNIST := /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz

fashion-mnist:  ## Debian's Fashion-MNIST (MIT, 31 MB) for the KED zoo: idx files under /usr/share/datasets/fashion-mnist
	@test -f $(FASHION_MNIST) || { \
	  echo "kdviz: installing Debian's dataset-fashion-mnist"; \
	  ($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq dataset-fashion-mnist) || \
	  { if [ -n "$$CI" ]; then exit 1; else echo "kdviz: dataset-fashion-mnist not installed; the Fashion-MNIST zoo and its tests are skipped"; fi; }; }

lint: dev  ## ruff (style, complexity, docstrings of the public API), import contracts, dead code
	$(MAKE) --no-print-directory lint-checks

lint-checks:
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/vulture kdviz pages app.py .ci/vulture_whitelist.py --min-confidence 80

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache test-artifacts
