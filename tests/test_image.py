"""The image built and run with podman: docker/Dockerfile on a Debian base made here with mmdebstrap (no registry
is assumed reachable), then docker/compose.yaml brought up with podman-compose the way docs/scaling.md ("Docker")
says: PostgreSQL (an image built here too, tests/postgres_image/), the tracking server with accounts, the trainer's
account made and granted from the host with this project's environment, `dvc repro` in the trainer, and a second
training gated against the first. Slow: ~7 min on a 2-core machine under a light load, ~5 of them the build, whose
disk use peaks ~27 GB above the start; each phase's wall time is logged (`--log-cli-level=INFO` shows them).
Everything it makes lives in one podman directory, removed at the end whether the tests pass or fail."""

from __future__ import annotations

import logging
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from pipeline.server import accounts
from tests.conftest import REPO
from tests.podman import Podman, make_base, pip_sources, run

pytestmark = [pytest.mark.slow, pytest.mark.needs_podman, pytest.mark.timeout(1800)]

BASE = "localhost/threes-sevens-test-base"
IMAGE = "localhost/threes-sevens:latest"  # the name docker/compose.yaml runs
POSTGRES = "localhost/threes-sevens-test-postgres"
PROJECT = "threes-sevens-test"  # podman-compose 1.0.3 ignores the file's top-level `name:`
EXPERIMENT, MODEL = "threes-sevens", "threes-sevens-3-7"  # the trainer's (docs/scaling.md, "Accounts")
log = logging.getLogger(__name__)


@contextmanager
def phase(name: str):
    """Logs the wall time of what it holds: where this module's minutes go, in CI's log too."""
    start = time.monotonic()
    try:
        yield
    finally:
        log.info("phase %s: %.1f s", name, time.monotonic() - start)


@pytest.fixture(scope="module")
def podman(tmp_path_factory) -> Podman:
    engine = Podman(tmp_path_factory.mktemp("podman"))
    yield engine
    with phase("teardown"):
        engine.remove()


@pytest.fixture(scope="module")
def images(podman) -> None:
    """The base, then on it side by side: docker/Dockerfile (IMAGE), pip inside reaching the packages where the
    host's pip does, and the PostgreSQL stand-in (POSTGRES: ~20 s, within the image's build)."""
    with phase("base"):
        make_base(podman, BASE)
    on_base = ["build", "--network=host", f"--build-arg=BASE={BASE}"]
    with ThreadPoolExecutor(max_workers=1) as beside:
        postgres = beside.submit(podman, *on_base, f"--tag={POSTGRES}", REPO / "tests/postgres_image")
        volumes = pip_sources(podman.root / "pip.conf")
        with phase("build"):
            podman(*on_base, *volumes, "--file=docker/Dockerfile", f"--tag={IMAGE}", ".", cwd=REPO)
            postgres.result()


def checkout_copy(directory: Path) -> Path:
    """This checkout's files (tracked, and untracked but not ignored: no outputs, no caches) as a fresh git
    repository owned by UID 1000, the image's user, who writes to it."""
    listed = run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO).stdout
    for name in filter(None, listed.split("\0")):
        if (REPO / name).is_file():
            (directory / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, directory / name)
    git = ["git", "-C", directory, "-c", "user.name=test", "-c", "user.email=test@localhost"]
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "a copy of the checkout"]):
        run([*git, *command])
    run(["chown", "-R", "1000:1000", directory])
    return directory


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Stack:
    """A checkout's docker/compose.yaml run by podman-compose as project PROJECT, with the variables `env`."""

    def __init__(self, podman: Podman, checkout: Path, env: dict):
        self.podman, self.checkout, self.env = podman, checkout, env
        self.url = f"http://127.0.0.1:{env['MLFLOW_PORT']}"

    def compose(self, *args):
        return self.podman.compose("-p", PROJECT, "-f", self.checkout / "docker/compose.yaml", *args, env=self.env)

    def up(self, service: str, timeout_s: float = 180) -> None:
        """`up -d SERVICE`, then wait until its own compose healthcheck passes: podman-compose 1.0.3 ignores
        `depends_on` conditions (and podman schedules no healthchecks without systemd: the test runs them).
        --no-build: the image is built already, and a name that missed it would build it again, for minutes."""
        self.compose("up", "-d", "--no-build", service)
        container, deadline = f"{PROJECT}_{service}_1", time.monotonic() + timeout_s
        while self.podman("healthcheck", "run", container, check=False).returncode != 0:
            if time.monotonic() > deadline:
                logs = self.podman("logs", container, check=False)
                raise AssertionError(f"{service} not healthy after {timeout_s} s:\n{logs.stdout[-4000:]}{logs.stderr}")
            time.sleep(1)

    def run_trainer(self, *command: str, status: int = 0) -> str:
        """`run trainer [COMMAND]`; its output, its exit status checked. podman-compose 1.0.3 exits 0 whatever the
        container did, so the container is named and its status read. --no-deps: the services are up, and 1.0.3
        would build the image again before starting them."""
        name = f"{PROJECT}_trainer_run"
        done = self.compose("run", "--no-deps", "-T", f"--name={name}", "trainer", *command)
        exited = self.podman("inspect", "--format={{.State.ExitCode}}", name).stdout.strip()
        self.podman("rm", name)
        output = done.stdout + done.stderr
        assert exited == str(status), f"trainer {' '.join(command) or '(its command)'}: exit {exited}\n{output[-8000:]}"
        return output

    def users(self, *args: str, stdin: str | None = None) -> None:
        """`python -m pipeline.server users ARGS` from the host with this project's environment, as the admin: how
        docs/scaling.md ("Docker") adds and grants the trainer's account."""
        env = {**self.podman.env, "MLFLOW_TRACKING_URI": self.url, "MLFLOW_TRACKING_USERNAME": "admin"}
        env["MLFLOW_TRACKING_PASSWORD"] = self.env["MLFLOW_AUTH_ADMIN_PASSWORD"]
        run([sys.executable, "-m", "pipeline.server", "users", *args], env=env, input=stdin)

    @contextmanager
    def as_admin(self):
        """An MLflow client of the server as its admin (MLflow reads the account from the environment)."""
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
            patch.setenv("MLFLOW_TRACKING_PASSWORD", self.env["MLFLOW_AUTH_ADMIN_PASSWORD"])
            yield MlflowClient(self.url)

    def sql(self, query: str) -> list[str]:
        """Rows of `query` in the tracking server's PostgreSQL database, as psql's unaligned `a|b` lines."""
        psql = ["psql", "--username=mlflow", "--dbname=mlflow", "--tuples-only", "--no-align", f"--command={query}"]
        password = f"--env=PGPASSWORD={self.env['POSTGRES_PASSWORD']}"
        return self.podman("exec", password, f"{PROJECT}_postgres_1", *psql).stdout.split()


@pytest.fixture(scope="module")
def stack(podman, images) -> Stack:
    """PostgreSQL and the tracking server with accounts up from a copy of this checkout, the server published on a
    free port of the host's loopback, and the trainer's account with EDIT on its experiment and registered model,
    made as docs/scaling.md says (the podman fixture's teardown removes the containers, volumes and network)."""
    env = {
        "POSTGRES_IMAGE": POSTGRES,
        "POSTGRES_PASSWORD": secrets.token_hex(12),
        "MLFLOW_AUTH_ADMIN_PASSWORD": secrets.token_hex(12),
        "MLFLOW_TRAINER_PASSWORD": secrets.token_hex(12),
        "MLFLOW_PORT": str(free_port()),
    }
    stack = Stack(podman, checkout_copy(podman.root / "checkout"), env)
    with phase("up"):
        stack.up("postgres")
        stack.up("mlflow")
    with phase("accounts"):
        stack.users("add", "trainer", "--password-file", "-", stdin=env["MLFLOW_TRAINER_PASSWORD"] + "\n")
        grants = [("--experiment", EXPERIMENT), ("--registered-model", MODEL)]
        with ThreadPoolExecutor(max_workers=2) as both:  # independent: each its own process, as in the docs
            list(both.map(lambda target: stack.users("grant", "trainer", "EDIT", *target), grants))
    return stack


@pytest.fixture(scope="module")
def first_training(stack) -> str:
    """The trainer's own command, `dvc repro`, on the copy: the whole pipeline, its run and model on the server."""
    with phase("first training"):
        return stack.run_trainer()


@pytest.fixture(scope="module")
def refused_training(stack, first_training) -> str:
    """A training while the trainer's account holds only READ on the registered model (the admin's rights as
    they were): the server's permissions are the trainer's own if it stops before training. EDIT given back."""
    with phase("refused training"):
        with stack.as_admin():
            accounts.grant(stack.url, "trainer", "READ", registered_model=MODEL)
        try:
            return stack.run_trainer("python", "-m", "pipeline.train", "fit.epochs=2", status=1)
        finally:
            with stack.as_admin():
                accounts.grant(stack.url, "trainer", "EDIT", registered_model=MODEL)


@pytest.fixture(scope="module")
def second_training(stack, refused_training) -> str:
    """Another training on the same data (2 epochs: quick, and no better), through the same server, once the
    refusal above is over (the account's EDIT given back)."""
    with phase("second training"):
        return stack.run_trainer("python", "-m", "pipeline.train", "fit.epochs=2")


def test_the_image_holds_exactly_the_lock_and_runs_as_uid_1000(podman, images):
    shown = podman("run", "--rm", IMAGE, "sh", "-c", "id -u; python -V; pip freeze --all").stdout
    uid, python, *frozen = shown.splitlines()
    assert uid == "1000" and python.startswith("Python 3.11."), (uid, python)
    project = [line for line in frozen if line.startswith("threes-sevens")]
    assert len(project) == 1, frozen
    locked = {line for line in (REPO / "requirements.lock").read_text().splitlines() if line and line[0] != "#"}
    installed = set(frozen) - set(project)
    assert sorted(locked - installed) == [], "locked, not installed"
    assert sorted(installed - locked) == [], "installed, not locked"


def test_the_tracking_server_on_postgresql_answers_on_the_hosts_loopback(stack):
    with urllib.request.urlopen(f"{stack.url}/health", timeout=10) as response:
        assert (response.status, response.read()) == (200, b"OK")


def test_the_tracking_server_answers_no_one_without_an_account(stack):
    for path in ("/api/2.0/mlflow/experiments/search?max_results=1", "/"):  # the API, the UI
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{stack.url}{path}", timeout=10)
        assert refused.value.code == 401, path


def committed(path: str) -> str:
    """A file as this checkout's HEAD holds it: `make run` may have rewritten the working tree's copy."""
    return subprocess.run(["git", "show", f"HEAD:{path}"], cwd=REPO, capture_output=True, text=True, check=True).stdout


def locked_hashes(lock_text: str) -> dict[str, str]:
    """path -> md5 of every stage's dependencies and outputs in a dvc.lock's text."""
    stages = yaml.safe_load(lock_text)["stages"].values()
    entries = [entry for stage in stages for entry in stage.get("deps", []) + stage.get("outs", [])]
    return {entry["path"]: entry.get("md5") for entry in entries}


def test_dvc_repro_in_the_trainer_reproduces_the_committed_lock_and_metrics(stack, first_training):
    assert (stack.checkout / "metrics.json").read_text() == committed("metrics.json")
    reproduced_lock = (stack.checkout / "dvc.lock").read_text()
    committed_hashes, reproduced = locked_hashes(committed("dvc.lock")), locked_hashes(reproduced_lock)
    paths = {*committed_hashes, *reproduced}
    differing = sorted(path for path in paths if committed_hashes.get(path) != reproduced.get(path))
    assert differing == [], f"dvc.lock differs for {differing}"
    assert reproduced_lock == committed("dvc.lock")


def test_the_trainer_registers_its_model_on_the_server_as_the_first_champion(stack, first_training):
    with stack.as_admin() as client:
        first = client.get_model_version(MODEL, "1")
    assert (first.tags["gate.alias"], first.tags["gate.reason"]) == ("champion", "no champion yet")
    assert f"{MODEL}|1" in stack.sql("SELECT name, version FROM model_versions")  # the registry is in PostgreSQL
    artifacts = stack.podman("exec", f"{PROJECT}_mlflow_1", "find", "/mlartifacts", "-name", "MLmodel").stdout
    assert artifacts.strip(), "no model files in the server's artifact store"


def test_the_trainer_trains_as_its_own_account_not_the_admins(refused_training):
    line = f"account 'trainer' has READ on registered model '{MODEL}', and a training needs EDIT on it"
    assert line in refused_training, refused_training[-3000:]


def test_a_second_training_is_gated_against_the_first_as_champion(stack, second_training):
    with stack.as_admin() as client:
        second = client.get_model_version(MODEL, "2")
        champion = client.get_model_version_by_alias(MODEL, "champion").version
    assert second.tags["gate.champion_version"] == "1"
    alias = second.tags["gate.alias"]
    assert alias in second.aliases and f"version 2 is the {alias}" in second_training
    assert champion == ("2" if alias == "champion" else "1")
