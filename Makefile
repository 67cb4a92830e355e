# The two commands of the README: `make run` and `make test`. Both build .venv when it is
# missing, and reinstall when pyproject.toml or constraints.txt (the lock) change.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PIP_INSTALL := $(PY) -m pip install --quiet -c constraints.txt
PYTEST_ARGS ?=
# Most tests wait on real processes (elections, workers, browsers), not the CPU: three
# pytest workers take about a third of the time on 2 cores. Each file stays on one worker
# (module fixtures: clusters, release wheels). TEST_WORKERS=0 runs in this process.
TEST_WORKERS ?= 3

.DEFAULT_GOAL := help
.PHONY: help run test lint fmt

help: ## show this list
	@awk 'BEGIN {FS = ":.*## "} /^[a-z]+:.*## / {printf "  make %-5s  %s\n", $$1, $$2}' $(MAKEFILE_LIST)

run: $(VENV)/.installed-run ## start everything locally (console at http://127.0.0.1:8000/)
	$(PY) manage.py up

test: $(VENV)/.installed-test ## run the test suite (PYTEST_ARGS="-k login" to narrow)
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

lint: $(VENV)/.installed-test ## ruff lint and format check; import layers (.importlinter)
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(VENV)/bin/lint-imports --no-cache

fmt: $(VENV)/.installed-test ## ruff format and autofix
	$(VENV)/bin/ruff format . && $(VENV)/bin/ruff check --fix .

$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || \
		{ echo "need Python 3.11 (found $(PYTHON)); set PYTHON=/path/to/python3.11" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); \
		echo "creating the venv failed; on Debian: apt-get install python3-venv" >&2; exit 1; }

$(VENV)/.installed-run: pyproject.toml constraints.txt | $(PY)
	$(PIP_INSTALL) -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml constraints.txt | $(PY)
	$(PIP_INSTALL) -e '.[test]'
	@touch $@ $(VENV)/.installed-run

.PHONY: chaos
CHAOS_FAULTS ?= 40
CHAOS_SEED ?=
CHAOS_TIME_BOUND_S ?= 900
chaos: $(VENV)/.installed-test ## long randomized robustness run as root (CHAOS_SEED=n replays one)
	$(PY) -m tests.chaos.run_chaos --random $(CHAOS_FAULTS) --time-bound-s $(CHAOS_TIME_BOUND_S) $(if $(CHAOS_SEED),--seed $(CHAOS_SEED))
