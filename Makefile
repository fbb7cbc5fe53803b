# Martingale Lanes: `make run` starts everything on the embedded defaults; `make test` runs the suites.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: run test venv bench

venv: $(STAMP)

$(STAMP): requirements.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.txt
	touch $(STAMP)

run: venv
	bash scripts/run.sh

test:
	bash scripts/test.sh

bench: venv
	bash scripts/bench.sh
