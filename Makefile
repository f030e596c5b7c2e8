# Two commands for a newcomer: `make demo` runs the pipeline end to end on the embedded stack,
# `make test` runs every test. Both install what they need (uv, the venv, jars, the Databricks CLI)
# into caches outside the repository and are quick when re-run.

SHELL := /bin/bash
CACHE ?= $(HOME)/.cache/avrolake
export AVROLAKE_CACHE := $(CACHE)

UV_VERSION := 0.13.9
UV := $(CACHE)/tools/uv-$(UV_VERSION)/bin/uv
VENV := .venv
SYNCED := $(VENV)/.synced

# The Databricks CLI, built from source by the Go toolchain (the module proxy is the only way in).
DATABRICKS_CLI_VERSION := v0.298.0
DATABRICKS_CLI := $(CACHE)/bin/databricks-$(DATABRICKS_CLI_VERSION)
export AVROLAKE_DATABRICKS_CLI := $(DATABRICKS_CLI)

# actionlint, built the same way; tests/integration/test_bundle.py lints .github/workflows with it.
ACTIONLINT_VERSION := v1.7.12
ACTIONLINT := $(CACHE)/bin/actionlint-$(ACTIONLINT_VERSION)
export AVROLAKE_ACTIONLINT := $(ACTIONLINT)

# What every Databricks job cluster installs next to the wheel: the wheel's dependencies at exactly
# the versions of uv.lock (no dev group, no extras: the Databricks Runtime brings pyspark and
# delta-spark). `make requirements` after every change of uv.lock; a test fails until then.
CLUSTER_REQUIREMENTS := requirements/cluster.txt

.PHONY: demo test unit lint fmt jars databricks-cli actionlint requirements wheel bench clean-local

demo: $(SYNCED) jars
	$(VENV)/bin/avrolake demo --definitions pipelines.yml  # the example definition

test: $(SYNCED) jars databricks-cli actionlint
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest

unit: $(SYNCED)
	$(VENV)/bin/pytest -m "not integration and not spark"  # no JVM, no stack: seconds

lint: $(SYNCED)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

fmt: $(SYNCED)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

$(UV):
	python3 -m venv $(CACHE)/tools/uv-$(UV_VERSION)
	$(CACHE)/tools/uv-$(UV_VERSION)/bin/pip install --quiet uv==$(UV_VERSION)

# The locked venv: avrolake editable with its extras, the dev group, and in it avrolake-dev (dev/,
# a uv workspace member, editable): the local stack, the demo and the chart, which add
# `avrolake local …` and `avrolake demo`. None of that is in the wheel `make wheel` builds.
$(SYNCED): pyproject.toml dev/pyproject.toml uv.lock $(UV)
	$(UV) sync --frozen --all-extras
	touch $@

# Spark connectors, the Kafka broker and Apicurio, from Maven Central via jvm/pom.xml.
jars: $(SYNCED)
	$(VENV)/bin/avrolake local jars

databricks-cli: $(DATABRICKS_CLI)

$(DATABRICKS_CLI):
	@mkdir -p $(dir $@)
	@# `go install cli@tag` needs the proxy's version list, which is not reachable here; download
	@# the pinned module and build it in place instead (same sources, same go.mod).
	dir=$$(go mod download -json github.com/databricks/cli@$(DATABRICKS_CLI_VERSION) | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])') && \
	  cd "$$dir" && go build -o $@.tmp . && mv $@.tmp $@

actionlint: $(ACTIONLINT)

$(ACTIONLINT):
	@mkdir -p $(dir $@)
	dir=$$(go mod download -json github.com/rhysd/actionlint@$(ACTIONLINT_VERSION) | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])') && \
	  cd "$$dir" && go build -o $@.tmp ./cmd/actionlint && mv $@.tmp $@

requirements: $(UV)
	$(UV) export --frozen --no-dev --no-hashes --no-emit-project \
	  --no-emit-package pyspark --no-emit-package delta-spark > $(CLUSTER_REQUIREMENTS).tmp
	mv $(CLUSTER_REQUIREMENTS).tmp $(CLUSTER_REQUIREMENTS)

wheel: $(UV)
	$(UV) build --wheel

bench: $(SYNCED) jars
	$(VENV)/bin/python benchmarks/producer_bench.py
	$(VENV)/bin/python benchmarks/silver_bench.py

clean-local: $(SYNCED)
	$(VENV)/bin/avrolake local down
