# `make run`: set up and reproduce the pipeline on real MNIST.  `make test`: set up and test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip --disable-pip-version-check -q
# dvc.yaml's commands say `python`: make it the project's.
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: run test lint lock params setup system-deps image
run: setup params
	$(BIN)/dvc repro

test: setup system-deps lint
	$(BIN)/python -m pytest

lint: setup  # ruff's lint and format, as configured in pyproject.toml (part of `make test`)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# params.yaml is conf/ composed by Hydra: what `dvc repro` runs with (`dvc exp run` recomposes it).
params: setup
	$(BIN)/python -m pipeline.config --out params.yaml

setup: $(VENV)/.installed

# The environment is requirements.lock (every package at the version CI tests), then the project itself.
# The lock is resolved on Linux x86_64, where torch brings its CUDA libraries; elsewhere (a Mac, ARM) those
# do not exist, so pip resolves pyproject.toml's pins instead.
ifeq ($(shell uname -sm),Linux x86_64)
REQUIREMENTS := -r requirements.lock
else
REQUIREMENTS := -e '.[test]'
endif
$(VENV)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(PIP) install $(REQUIREMENTS)
	$(PIP) install --no-deps -e .
	touch $@

# `make lock` refreshes requirements.lock: pyproject.toml's pins (runtime and the test extra) installed in a
# fresh venv, then frozen (--all keeps setuptools, which torch requires). Exact `==` pins without hashes, though a
# lock with the sha256 that `pip install --dry-run --report` gives installs here too (checked; this machine's
# torch wheels are byte-identical to PyPI's): those are the hashes of this interpreter's wheels only, which
# would confine the lock to CPython 3.11 (Ubuntu 24.04 ships 3.12), and pip-compile --generate-hashes, which
# collects every platform's, downloads each file of each pinned release to hash it (torch's CUDA wheels:
# 23 min and >20 GB here without finishing). Exact pins fix every version; PyPI never replaces a file.
LOCK_VENV := .cache/lock-venv
lock:
	rm -rf $(LOCK_VENV)
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/pip --disable-pip-version-check -q install -e '.[test]'
	{ echo "# Made by \`make lock\` on $$(uname -sm), $$($(LOCK_VENV)/bin/python -V): pyproject.toml's pins and the" \
	       "test extra installed in a fresh venv, then \`pip freeze\`."; \
	  $(LOCK_VENV)/bin/pip freeze --all --exclude-editable; } > requirements.lock
	rm -rf $(LOCK_VENV)

# Debian packages a few tests need: chromium (the MLflow UI test), postgresql (the tracking server test), and
# podman, podman-compose, mmdebstrap and runc (the image test, tests/test_image.py).
# As root on a Debian-family system (CI) apt-get installs the missing ones. Elsewhere nothing is installed:
# one line says which tests will be skipped and how to get what they need (tests/system_deps.py; under
# CI=true those tests fail instead of skipping).
APT_PACKAGES := chromium postgresql podman podman-compose mmdebstrap runc
system-deps: setup
	@if [ "$$(id -u)" = 0 ] && command -v dpkg >/dev/null && command -v apt-get >/dev/null; then \
	  missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	  if [ -n "$$missing" ]; then \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	  fi; \
	else \
	  $(BIN)/python -m tests.system_deps; \
	fi

# `make image`: the project's image (docker/Dockerfile: requirements.lock, then the project), tagged IMAGE, built
# with podman or docker, whichever is installed (podman first: where both are, `docker` is often podman's shim).
IMAGE ?= threes-sevens
CONTAINER_ENGINE ?= $(shell command -v podman || command -v docker)
image:
	@[ -n "$(CONTAINER_ENGINE)" ] || { echo "make image: neither podman nor docker is installed" >&2; exit 1; }
	$(CONTAINER_ENGINE) build -f docker/Dockerfile -t $(IMAGE) .
