# homl-edge: the two set-up commands of the README are `make lab` and `make test`; both are idempotent.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.homl-edge-installed
PORT   ?= 8888
export TF_CPP_MIN_LOG_LEVEL ?= 3

.PHONY: install install-current lab test test-fast system-deps notebooks bench lock mutation clean help

help:
	@echo "make lab         install everything into .venv and open JupyterLab on notebooks/"
	@echo "make test        install everything and run the whole test suite (the lock's .venv and a current .venv-current)"
	@echo "make test-fast   the unit tests only (no notebooks, no browser)"
	@echo "make notebooks   re-execute the chapter notebooks in place (keeps their outputs)"
	@echo "make bench       benchmarks (writes benchmarks/RESULTS.md)"
	@echo "make mutation    mutation score of the core's pure-Python parts (mutmut over tests/unit)"
	@echo "make lock        re-resolve binder/requirements.in into the lock binder/requirements.txt"

# The stamp is newer than the lock and pyproject.toml once they are installed, so a second run installs nothing.
# binder/requirements-nodeps.txt: data-only packages installed without their dependencies; `pip check` may report
# only those missing dependencies (of the packages that file names), nothing else.
$(STAMP): binder/requirements.txt binder/requirements-nodeps.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r binder/requirements.txt
	$(PY) -m pip install --disable-pip-version-check -q --no-deps -r binder/requirements-nodeps.txt
	$(PY) -m pip install --disable-pip-version-check -q --no-deps --no-build-isolation -e .
	! $(PY) -m pip check | grep -vE "^(No broken requirements found|($$(grep -oE '^[A-Za-z0-9_.-]+==' binder/requirements-nodeps.txt | tr -d = | paste -sd'|')) [^ ]+ requires )"
	@touch $(STAMP)

install: $(STAMP)

# The second environment: Python 3.12 with the newest TensorFlow and numpy 2 installed first, homl-edge on top
CURRENT_STAMP := .venv-current/.homl-edge-installed
$(CURRENT_STAMP): binder/current.txt pyproject.toml scripts/current-env.sh
	bash scripts/current-env.sh
	@touch $(CURRENT_STAMP)

install-current: $(CURRENT_STAMP)

system-deps:
	@bash scripts/install-system-deps.sh

# root (a container, a CI machine) must say --allow-root to Jupyter; everyone else does not need it
ROOT_FLAG := $(shell [ "$$(id -u)" = 0 ] && echo --allow-root)

lab: install
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks --ip=$${LAB_IP:-127.0.0.1} --port=$(PORT) $(ROOT_FLAG) $${LAB_ARGS:-}

# Both environments, one after the other (scripts/test.sh); HOML_EDGE_REQUIRE_TOOLS=1 there: the chapters' optional tools
# (Chromium, gcc) are mandatory in the test run
test: system-deps install install-current
	bash scripts/test.sh

test-fast: install
	$(PY) -m pytest tests -m "not browser" $${PYTEST_ARGS:-}

notebooks: install
	$(PY) scripts/run_notebooks.py

bench: install
	$(PY) benchmarks/run.py

mutation: install
	$(PY) scripts/mutation.py --min 80

lock:
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r binder/requirements.in
	$(PY) scripts/lock.py

clean:
	rm -rf $(VENV) .venv-current web/node_modules .pytest_cache test-artifacts mutants
