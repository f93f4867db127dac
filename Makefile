# `make run`: set up and reproduce the pipeline on real MNIST.  `make test`: set up and test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# dvc.yaml's commands say `python`: make it the project's.
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: run test params setup
run: setup params
	$(BIN)/dvc repro

test: setup
	$(BIN)/python -m pytest

# params.yaml is conf/ composed by Hydra: what `dvc repro` runs with (`dvc exp run` recomposes it).
params: setup
	$(BIN)/python -m pipeline.config > params.yaml.tmp && mv params.yaml.tmp params.yaml

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q -e '.[test]'
	touch $@
