"""docker/, checked without an engine by real tools: hadolint lints the Dockerfile, check-jsonschema
validates the compose files against the compose-spec schema; and `make image`'s choice of engine.
tests/test_image.py builds the image and runs the compose stack with podman."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import REPO

DOCKER = REPO / "docker"
COMPOSE_FILES = [DOCKER / "compose.yaml", DOCKER / "compose.gpu.yaml"]


def tool(name: str) -> str:
    return shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)


def hadolint(dockerfile: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [tool("hadolint"), "--no-color", "--config", DOCKER / ".hadolint.yaml", dockerfile],
        capture_output=True,
        text=True,
    )


def check_compose(*files: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", *files], capture_output=True, text=True
    )


def test_dockerfile_passes_hadolint():
    done = hadolint(DOCKER / "Dockerfile")
    assert done.returncode == 0, done.stdout + done.stderr


def test_hadolint_catches_what_the_dockerfile_avoids(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM nvidia/cuda\nRUN pip install torch\nUSER root\n")
    done = hadolint(bad)
    assert done.returncode != 0
    for rule in ("DL3006", "DL3013", "DL3002"):  # untagged base image, unpinned pip, root user
        assert rule in done.stdout, rule


def test_dockerfile_pins_its_base_runs_unprivileged_and_reproduces_by_default():
    text = (DOCKER / "Dockerfile").read_text()
    lines = [line.split() for line in text.splitlines() if line and line[0] != "#"]
    assert [words for words in lines if words[0] == "FROM"] == [["FROM", "${BASE}"]]
    # the default base: Python 3.11 (the lock's), a slim Debian release, a tag rather than latest
    assert re.search(r"^ARG BASE=python:3\.11-slim-[a-z]+$", text, re.MULTILINE)
    assert [words for words in lines if words[0] == "USER"] == [["USER", "${UID}"]]
    assert re.search(r'useradd .*--uid "\$\{UID\}" .*trainer', text)  # the user that UID names
    assert lines[-1] == ["CMD", '["dvc",', '"repro"]']


def test_dockerfile_installs_the_lock_exactly_then_the_project_without_resolving():
    text = (DOCKER / "Dockerfile").read_text()
    assert "pip install --no-cache-dir --no-deps -r /tmp/requirements.lock" in text
    assert re.search(r"pip install --no-cache-dir --no-deps --no-build-isolation /tmp/threes-sevens\b", text)
    locked = (REPO / "requirements.lock").read_text()
    assert re.search(r"^psycopg2-binary==", locked, re.MULTILINE)  # the tracking server's PostgreSQL driver


def test_compose_files_match_the_compose_spec():
    done = check_compose(*COMPOSE_FILES)
    assert done.returncode == 0, done.stdout + done.stderr


def test_compose_schema_check_rejects_a_broken_file(tmp_path):
    broken = tmp_path / "compose.yaml"
    broken.write_text("services:\n  trainer:\n    image: threes-sevens\n    depends_on: 5\n    ports: nope\n")
    assert check_compose(broken).returncode != 0


def test_compose_runs_mlflow_on_postgresql_with_an_artifact_store_and_the_trainer():
    services = yaml.safe_load((DOCKER / "compose.yaml").read_text())["services"]
    assert re.fullmatch(r"\$\{POSTGRES_IMAGE:-postgres:[\d.]+\}", services["postgres"]["image"])  # the official one
    server = " ".join(services["mlflow"]["command"])
    # no password in the URL: libpq takes it from PGPASSWORD, whatever characters it holds
    assert "--backend-store-uri postgresql+psycopg2://mlflow@postgres:5432/mlflow " in server
    assert services["mlflow"]["environment"]["PGPASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    assert "--artifacts-destination /mlartifacts" in server
    # the UI published where docker/.env says, the host's loopback unless it says otherwise
    assert services["mlflow"]["ports"] == ["${PUBLISH_ADDRESS:-127.0.0.1}:${MLFLOW_PORT:-5000}:5000"]
    allowed = services["mlflow"]["command"][services["mlflow"]["command"].index("--allowed-hosts") + 1]
    assert allowed == "mlflow:5000,127.0.0.1:5000,${MLFLOW_ALLOWED_HOSTS:-localhost:*,127.0.0.1:*}"
    assert services["trainer"]["environment"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert services["trainer"]["depends_on"]["mlflow"]["condition"] == "service_healthy"
    assert services["mlflow"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_compose_runs_the_server_with_accounts_and_the_trainer_with_its_own():
    services = yaml.safe_load((DOCKER / "compose.yaml").read_text())["services"]
    server = " ".join(services["mlflow"]["command"])
    assert server.startswith("python -m pipeline.server ") and "--no-auth" not in server
    admin = services["mlflow"]["environment"]["MLFLOW_AUTH_ADMIN_PASSWORD"]
    assert admin.startswith("${MLFLOW_AUTH_ADMIN_PASSWORD:?")  # from the environment, required
    trainer = services["trainer"]["environment"]
    assert trainer["MLFLOW_TRACKING_USERNAME"] == "trainer"
    assert trainer["MLFLOW_TRACKING_PASSWORD"].startswith("${MLFLOW_TRAINER_PASSWORD:?")  # not the admin's
    assert services["serve"]["environment"]["MLFLOW_TRACKING_USERNAME"] == "serve"
    # podman-compose 1.0.3 leaves `${VAR:-}` (an empty default) as written: the password would be that text
    assert services["serve"]["environment"]["MLFLOW_TRACKING_PASSWORD"] == "${MLFLOW_SERVE_PASSWORD}"
    assert ":-}" not in (DOCKER / "compose.yaml").read_text()


def test_compose_serves_the_champion_on_loopback_from_the_training_image():
    services = yaml.safe_load((DOCKER / "compose.yaml").read_text())["services"]
    serve = services["serve"]
    assert serve["image"] == services["trainer"]["image"]
    command = " ".join(serve["command"])
    assert command.startswith(  # waits for the champion (pipeline/server/await_model.py), then serves it
        "python -m pipeline.server.await_model mlflow models serve --model-uri models:/threes-sevens-3-7@champion"
    )
    assert "--env-manager local" in command and "--port 5001" in command
    assert serve["ports"] == ["${PUBLISH_ADDRESS:-127.0.0.1}:${SERVE_PORT:-5001}:5001"]
    assert serve["restart"] == "on-failure:3"  # a refused account is not restarted forever
    assert serve["environment"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert serve["depends_on"]["mlflow"]["condition"] == "service_healthy"


def make_image(tmp_path: Path, engines: list[str]) -> tuple[subprocess.CompletedProcess, str]:
    """`make image` with only `engines` (recording stand-ins) and uname on PATH; make's result and the calls."""
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    bin_dir.mkdir(parents=True)
    (bin_dir / "uname").symlink_to(shutil.which("uname"))
    for engine in engines:
        (bin_dir / engine).write_text(f'#!/bin/sh\necho "{engine} $*" >> {log}\n')
        (bin_dir / engine).chmod(0o755)
    env = {"PATH": str(bin_dir), "HOME": str(tmp_path)}
    done = subprocess.run([shutil.which("make"), "-s", "-C", REPO, "image"], env=env, capture_output=True, text=True)
    return done, log.read_text() if log.exists() else ""


def test_make_image_builds_with_podman_or_docker_whichever_is_installed(tmp_path):
    done, calls = make_image(tmp_path / "docker", ["docker"])
    assert done.returncode == 0, done.stderr
    assert calls == "docker build -f docker/Dockerfile -t threes-sevens .\n"
    _, calls = make_image(tmp_path / "both", ["docker", "podman"])
    assert calls.startswith("podman build -f docker/Dockerfile")


def test_make_image_says_so_in_one_line_when_neither_is_installed(tmp_path):
    done, calls = make_image(tmp_path, [])
    assert done.returncode != 0 and calls == ""
    assert done.stderr.splitlines()[0] == "make image: neither podman nor docker is installed"


def test_compose_builds_the_trainers_uid_from_docker_env_and_every_setting_is_in_env_example():
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    for name in ("mlflow", "trainer", "serve"):
        assert compose["services"][name]["build"]["args"] == {"UID": "${TRAINER_UID:-1000}"}, name
    used = set(re.findall(r"\$\{(\w+)", (DOCKER / "compose.yaml").read_text()))
    example = dict(
        line.split("=", 1) for line in (DOCKER / "env.example").read_text().splitlines() if line and line[0] != "#"
    )
    assert sorted(used - {"POSTGRES_IMAGE"} - set(example)) == [], "set in compose.yaml, not in docker/env.example"
    assert example["PUBLISH_ADDRESS"] == "127.0.0.1"  # loopback unless a team sets its address
    assert [name for name, value in example.items() if "PASSWORD" in name and value] == []  # none to forget
