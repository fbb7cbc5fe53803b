# Martingale Lanes: `make run` starts the app locally, `make test` runs both test suites, `make bench` the
# benchmarks, `make soak` the full-size soak (faults, outage, Galera cluster).
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: venv run test bench soak

# The venv is (re)installed only when requirements.txt is newer than the stamp.
venv: $(STAMP)

$(STAMP): requirements.txt
	bash scripts/apt-deps.sh build
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

soak:
	bash scripts/soak.sh
