# `make run`: set up and reproduce the pipeline on real MNIST.  `make test`: set up and test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# dvc.yaml's commands say `python`: make it the project's.
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: run test params setup system-deps
run: setup params
	$(BIN)/dvc repro

test: setup system-deps
	$(BIN)/python -m pytest

# params.yaml is conf/ composed by Hydra: what `dvc repro` runs with (`dvc exp run` recomposes it).
params: setup
	$(BIN)/python -m pipeline.config > params.yaml.tmp && mv params.yaml.tmp params.yaml

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q -e '.[test]'
	touch $@

# Debian packages the tests use (a browser for the MLflow UI test, PostgreSQL behind a tracking
# server); installed with apt-get when missing (CI and the dev machines run as root).
APT_PACKAGES := chromium postgresql
system-deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi
