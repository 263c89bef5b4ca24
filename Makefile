# Two commands do everything on a fresh machine: `make demo` and `make test`.
# Each creates (or refreshes, when pyproject.toml changed) the Python 3.12 virtualenv first.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# this machine's pip config names local indexes that may be absent: keep its noise out
QUIET_PIP := sed '/^WARNING: Location/d'
# pyenv resolves `python3.12` through .python-version on these machines; fall back to PATH.
BASE_PYTHON ?= $(shell command -v python3.12 || (command -v pyenv >/dev/null && pyenv which python3.12) || echo python3)

.PHONY: demo test lint docs bench venv clean

$(STAMP): pyproject.toml constraints.txt
	@$(BASE_PYTHON) -c 'import sys; assert sys.version_info >= (3, 12), f"Python 3.12+ needed, got {sys.version}"'
	@[ -x $(PY) ] || $(BASE_PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip 2>&1 | $(QUIET_PIP)
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev,docs]' 2>&1 | $(QUIET_PIP)
	@$(PY) -c 'import robust_score'
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/robust-score demo

# the whole tree, Markdown code blocks included, so `make lint` and `ruff format --check .` agree
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# the docs are checked here too, in parts (tests/test_docs.py: each notebook executed once, the
# Sphinx build with execution off, every page's code blocks); worksteal keeps both workers busy
# when a long test lands late
test: lint
	$(VENV)/bin/pytest -n 2 --dist worksteal --durations=15

# optional third command: the Sphinx site (pages, API reference, executed example notebooks)
# into docs/_build/html; warnings are errors. RS_DOCS_EXECUTION=force re-runs every notebook.
docs: $(STAMP)
	$(VENV)/bin/sphinx-build -W --keep-going -b html docs docs/_build/html

# benchmarks (≤ 15 min on an idle 2-core machine): rewrites docs/benchmarks.md and
# docs/_static/benchmarks/results.json; one section: $(PY) -m benchmarks.NAME [--quick]
bench: $(STAMP)
	$(PY) -m pip install --quiet -c constraints.txt -e '.[bench]' 2>&1 | $(QUIET_PIP)
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
