"""`make test`'s set-up path on a newcomer's machine: as an ordinary user it installs the environment,
calls no apt-get, and reaches pytest. Run on a copy of the Makefile with stand-ins for python, pip,
dpkg and apt-get that record each call (a real install would take minutes)."""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.conftest import REPO

RECORDER = """#!/bin/sh
echo "{name} $*" >> "{log}"
{body}
"""


def recorder(path: Path, log: Path, body: str = "") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(RECORDER.format(name=path.name, log=log, body=body))
    path.chmod(0o755)


@pytest.fixture
def checkout():
    """A directory any user may write, holding the Makefile and the files its set-up reads, with
    recording stand-ins first on PATH; yields (directory, environment, log of calls)."""
    directory = Path(tempfile.mkdtemp(prefix="make-setup-"))  # not under pytest's root-only tmp_path
    directory.chmod(0o777)
    for name in ("Makefile", "pyproject.toml", "requirements.lock", "requirements-test.lock"):
        shutil.copy(REPO / name, directory / name)
    fakes, venv, log = directory / "fakes", directory / "venv-template", directory / "calls.log"
    for name in ("python", "pip", "ruff"):  # what `python3 -m venv .venv` and the lock install make: recorders
        recorder(venv / "bin" / name, log)
    recorder(fakes / "python3", log, f'[ "$1 $2" = "-m venv" ] && cp -r {venv} "$3"')
    recorder(fakes / "dpkg", log, "exit 1")  # no package installed
    for name in ("apt-get", "sudo"):
        recorder(fakes / name, log)
    log.touch()
    log.chmod(0o666)
    env = {"PATH": f"{fakes}:/usr/bin:/bin", "HOME": str(directory)}
    yield directory, env, log
    shutil.rmtree(directory, ignore_errors=True)


def make_test(directory: Path, env: dict, user: list[str] = ()) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*user, "env", *(f"{k}={v}" for k, v in env.items()), "make", "-C", directory, "test"],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_make_test_as_an_ordinary_user_installs_the_lock_and_reaches_pytest_without_apt(checkout):
    directory, env, log = checkout
    unprivileged = ["runuser", "-u", "nobody", "--"] if os.geteuid() == 0 else []
    done = make_test(directory, env, unprivileged)
    assert done.returncode == 0, done.stdout + done.stderr
    calls = log.read_text().splitlines()
    assert [call.split()[0] for call in calls] == ["python3", "pip", "pip", "python", "ruff", "ruff", "python"], calls
    assert calls[0] == "python3 -m venv .venv"
    assert calls[1].endswith("install -r requirements-test.lock")  # the runtime lock, and the test tools on it
    assert calls[2].endswith("install --no-deps -e .")
    assert calls[3:] == [
        "python -m tests.system_deps",
        "ruff check .",
        "ruff format --check .",
        "python -m pytest",
    ]  # no apt/sudo


def test_make_test_as_root_on_debian_installs_the_missing_packages_with_apt(checkout):
    """The other branch (CI's): the same stand-ins, so the test above would see apt-get if it were called."""
    if os.geteuid() != 0:
        pytest.skip("the root branch needs root")
    directory, env, log = checkout
    done = make_test(directory, env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "apt-get install -y -q chromium postgresql podman podman-compose mmdebstrap runc" in log.read_text()
    assert log.read_text().splitlines()[-1] == "python -m pytest"


def test_away_from_the_locks_platform_make_installs_pyprojects_pins(checkout):
    """The locks hold torch's Linux-only CUDA libraries: on a Mac pip resolves pyproject.toml instead."""
    directory, env, log = checkout
    recorder(directory / "fakes" / "uname", log, 'echo "Darwin arm64"')
    done = make_test(directory, env)
    assert done.returncode == 0, done.stdout + done.stderr
    calls = [call for call in log.read_text().splitlines() if not call.startswith("uname")]
    assert calls[1].endswith("install -e .[test]") and calls[2].endswith("install --no-deps -e .")
    assert calls[-1] == "python -m pytest"
