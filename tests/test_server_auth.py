"""Accounts on the project's tracking server (`python -m pipeline.server`: MLflow's basic-auth app) on
PostgreSQL, on loopback, as a team runs it: who may read, write, register and grant; the pipeline's
commands as clients of it (`dvc repro`, the learner sweeps, predict, compare, the report, `mlflow
models serve`); and no credential recorded anywhere, whichever way it was given (environment
variables, a user:password@ URI, MLflow's credentials file). One server for the whole module."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psycopg2
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from pipeline.config.errors import AccountError
from pipeline.server import accounts
from pipeline.tracking.server import free_port
from tests.conftest import REPO, write_idx_dir
from tests.drawn_digits import draw
from tests.postgres import postgres_cluster
from tests.test_pipeline_e2e import project_copy
from tests.test_served_model import post, wait_until_serving

pytestmark = [pytest.mark.slow, pytest.mark.needs_postgres]

PASSWORDS = {  # each one distinct, to be searched for wherever the runs left something
    "admin": "admin-Pa55-0001",
    "trainer": "trainer-Pa55-0002",  # EDIT on threes-sevens and its registered model: dvc repro
    "sweeper": "sweeper-Pa55-0003",  # EDIT on learner: the sweeps, given in the tracking URI
    "reader": "reader-Pa55-0004",  # READ on both experiments and the model: predict, compare, report, serve
    "editor": "editor-Pa55-0005",  # EDIT on experiment A only
    "manager": "manager-Pa55-0006",  # MANAGE on experiment A
}
WRONG = "wrong-Pa55-0007"
MODEL = "threes-sevens-3-7"
# The learner sweeps' overrides, and the report's (as tests/test_learner_e2e.py); data.valid_last as
# the synthetic data was made (a run records its data's, and the report looks for runs by it).
SMALL = ["fit.epochs=2", "seed=0,1", "data.valid_last=150"]


@dataclass
class Server:
    url: str
    postgres: int
    tmp: Path
    log: Path
    outputs: dict[str, subprocess.CompletedProcess] = field(default_factory=dict)
    repo: Path | None = None  # the project's copy the pipeline ran in (the `runs` fixture)

    def env(self, account: str | None = None, password: str | None = None, **more) -> dict[str, str]:
        """A clean environment (no MLflow settings of this process, a HOME of no one) for the server,
        as `account` when given."""
        home = self.tmp / "home"
        home.mkdir(exist_ok=True)
        keep = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "PIPELINE_PROJECT_DIR"))}
        env = {**keep, "HOME": str(home), "MLFLOW_TRACKING_URI": self.url, "PYTHONPATH": str(REPO)}
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"  # dvc runs `python`
        if account:
            env |= {"MLFLOW_TRACKING_USERNAME": account, "MLFLOW_TRACKING_PASSWORD": password or PASSWORDS[account]}
        return env | more

    def run(self, name: str, cwd: Path, env: dict, *args: str, ok: bool = True, stdin: str | None = None):
        done = subprocess.run(args, cwd=cwd, env=env, input=stdin, capture_output=True, text=True, timeout=900)
        self.outputs[name] = done
        if ok:
            assert done.returncode == 0, f"{name}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        return done


@contextmanager
def as_account(server: Server, account: str):
    """This process's MLflow calls (which read the variables at each request) as `account`."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in server.env(account).items():
            if name.startswith("MLFLOW_"):
                patch.setenv(name, value)
        yield MlflowClient(server.url)


def refused(call) -> str:
    with pytest.raises(MlflowException) as raised:
        call()
    return str(raised.value)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`python -m pipeline.server` on PostgreSQL, its admin password in a secret file, started from
    a directory of its own (where MLflow would put basic_auth.db)."""
    tmp = tmp_path_factory.mktemp("auth")
    (tmp / "secrets").mkdir()
    (tmp / "secrets/admin").write_text(PASSWORDS["admin"] + "\n")
    (tmp / "cwd").mkdir()
    with postgres_cluster() as postgres:
        port, log = free_port(), tmp / "server.log"
        store = f"postgresql+psycopg2://postgres@127.0.0.1:{postgres}/mlflow"
        command = [sys.executable, "-m", "pipeline.server", "--port", str(port), "--backend-store-uri", store]
        server = Server(f"http://127.0.0.1:{port}", postgres, tmp, log)
        env = server.env(MLFLOW_AUTH_ADMIN_PASSWORD_FILE=str(tmp / "secrets/admin"))
        with open(log, "w") as out:
            process = subprocess.Popen(
                [*command, "--artifacts-destination", str(tmp / "artifacts")],
                cwd=tmp / "cwd",
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            deadline = time.monotonic() + 300  # MLflow creates its tables, then the accounts' tables
            while True:
                assert process.poll() is None, log.read_text()[-3000:]
                try:
                    urllib.request.urlopen(f"{server.url}/health", timeout=2)
                    break
                except OSError:
                    assert time.monotonic() < deadline, "the server did not come up"
                    time.sleep(0.5)
            yield server
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.fixture(scope="module")
def users(server):
    """The accounts: the first through `python -m pipeline.server users` (as the admin), the others
    through the same module in this process."""
    admin, tmp = server.env("admin"), server.tmp
    users = [sys.executable, "-m", "pipeline.server", "users"]
    server.run("users add", tmp, admin, *users, "add", "trainer", "--password-file", "-", stdin=PASSWORDS["trainer"])
    server.run("grant experiment", tmp, admin, *users, "grant", "trainer", "EDIT", "--experiment", "threes-sevens")
    with as_account(server, "admin") as client:
        accounts.grant(server.url, "trainer", "EDIT", registered_model=MODEL)
        for name in ("sweeper", "reader", "editor", "manager"):
            accounts.add_user(server.url, name, PASSWORDS[name])
        accounts.grant(server.url, "sweeper", "EDIT", experiment="learner")
        for experiment in ("threes-sevens", "learner"):
            accounts.grant(server.url, "reader", "READ", experiment=experiment)
        accounts.grant(server.url, "reader", "READ", registered_model=MODEL)
        accounts.grant(server.url, "editor", "EDIT", experiment="A")
        accounts.grant(server.url, "manager", "MANAGE", experiment="A")
        client.create_experiment("B")
    return server


@pytest.fixture(scope="module")
def runs(users):
    """The pipeline on synthetic data in a copy of the project, through the server: `dvc repro` as
    trainer (credentials in the environment), the learner sweeps as sweeper (in the tracking URI),
    predict, compare and the report as reader (MLflow's credentials file), and three refusals."""
    server, tmp = users, users.tmp
    write_idx_dir(tmp / "idx")
    repo = project_copy(tmp / "repo")
    small = [
        "fetch=local",
        f"fetch.local_dir={tmp / 'idx'}",
        "fetch.verify_canonical=false",
        "data.valid_last=150",
        "fit.epochs=2",
    ]
    params = server.run("params", repo, server.env(), sys.executable, "-m", "pipeline.config", *small)
    (repo / "params.yaml").write_text(params.stdout)
    server.run("dvc repro", repo, server.env("trainer"), "dvc", "repro")

    in_uri = server.url.replace("://", f"://sweeper:{PASSWORDS['sweeper']}@")
    for experiment in ("learner", "learning_rates"):
        train = [sys.executable, "-m", "pipeline.train", "-m", f"+experiment={experiment}", *SMALL]
        server.run(experiment, repo, server.env(MLFLOW_TRACKING_URI=in_uri), *train, "tracking.log_model=false")

    reader_home = tmp / "reader-home"
    (reader_home / ".mlflow").mkdir(parents=True)
    (reader_home / ".mlflow/credentials").write_text(
        f"[mlflow]\nmlflow_tracking_username = reader\nmlflow_tracking_password = {PASSWORDS['reader']}\n"
    )
    reader = server.env(HOME=str(reader_home))
    draw(3, np.random.default_rng(0)).save(tmp / "three.png")
    server.run("predict", repo, reader, sys.executable, "-m", "pipeline.predict", str(tmp / "three.png"))
    server.run("compare", repo, reader, sys.executable, "-m", "pipeline.compare", "latest")
    report = [sys.executable, "-m", "pipeline.report", "--out", str(tmp / "report"), *SMALL]
    server.run("report", repo, reader, *report)

    train = [sys.executable, "-m", "pipeline.train"]
    server.run("wrong password", repo, server.env("trainer", WRONG), *train, ok=False)
    server.run("read account", repo, reader, *train, ok=False)
    in_config = f"tracking.uri={in_uri}"
    server.run("uri in config", repo, server.env(), *train, in_config, ok=False)
    server.repo = repo
    return server


def status(url: str, auth: tuple[str, str] | None = None) -> int:
    request = urllib.request.Request(url)
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(":".join(auth).encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


def test_without_an_account_the_api_and_the_ui_answer_401(server):
    search = f"{server.url}/api/2.0/mlflow/experiments/search?max_results=1"
    assert status(search) == status(f"{server.url}/") == 401
    assert status(search, ("admin", WRONG)) == status(search, ("admin", "password1234")) == 401
    assert (
        status(search, ("admin", PASSWORDS["admin"])) == status(f"{server.url}/", ("admin", PASSWORDS["admin"])) == 200
    )
    assert status(f"{server.url}/health") == 200


def test_the_accounts_live_in_the_servers_postgresql(users):
    with (
        psycopg2.connect(host="127.0.0.1", port=users.postgres, user="postgres", dbname="mlflow") as db,
        db.cursor() as cursor,
    ):
        cursor.execute("SELECT username, is_admin FROM users")
        assert dict(cursor.fetchall()) == {name: name == "admin" for name in PASSWORDS}
    assert not list(users.tmp.glob("cwd/*")) and not (REPO / "basic_auth.db").exists()
    assert users.outputs["users add"].stdout == "users: added trainer\n"
    assert users.outputs["grant experiment"].stdout == "users: trainer: EDIT on experiment 'threes-sevens'\n"


def test_a_training_without_the_right_account_stops_before_it_starts_with_one_line(runs):
    lines = {name: runs.outputs[name].stderr.strip().splitlines() for name in ("wrong password", "read account")}
    assert lines["wrong password"] == [
        f"error: MLFLOW_TRACKING_URI={runs.url}: the server refused account 'trainer' (HTTP 401): a wrong password, "
        "or no such account; check MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or ~/.mlflow/credentials)"
    ]
    assert lines["read account"] == [
        f"error: MLFLOW_TRACKING_URI={runs.url}: account 'reader' has READ on experiment 'threes-sevens', and a "
        "training needs EDIT on it; ask the server's admin for it: "
        "python -m pipeline.server users grant reader EDIT --experiment threes-sevens"
    ]
    assert runs.outputs["uri in config"].stderr.strip().splitlines() == [
        f"error: tracking.uri=http://***@127.0.0.1:{runs.url.rsplit(':', 1)[1]}: expected a URI without "
        "user:password@, which would be saved with the configuration; set MLFLOW_TRACKING_USERNAME and "
        "MLFLOW_TRACKING_PASSWORD instead"
    ]
    with as_account(runs, "admin") as client:  # the only run of threes-sevens is dvc repro's
        assert len(client.search_runs([client.get_experiment_by_name("threes-sevens").experiment_id])) == 1


def test_the_pipelines_commands_record_and_read_through_their_accounts(runs):
    with as_account(runs, "admin") as client:
        [repro] = client.search_runs([client.get_experiment_by_name("threes-sevens").experiment_id])
        learner = client.search_runs([client.get_experiment_by_name("learner").experiment_id])
        champion = client.get_model_version_by_alias(MODEL, "champion")
    assert repro.info.status == "FINISHED" and repro.info.run_name.startswith("dvc-repro")
    assert json.loads((runs.repo / "mlflow_run.json").read_text())["mlflow_run_id"] == repro.info.run_id
    assert champion.run_id == repro.info.run_id
    children = [run for run in learner if "mlflow.parentRunId" in run.data.tags]
    assert len(children) == 2 * 9 and {run.info.status for run in learner} == {"FINISHED"}  # 6 models + 3 rates
    assert runs.outputs["predict"].stdout.startswith(f"{runs.tmp}/three.png: ")
    assert f"model {MODEL} v{champion.version} (champion)" in runs.outputs["predict"].stdout
    assert "sweep " in runs.outputs["compare"].stdout and "experiment 'learner'" in runs.outputs["compare"].stdout
    assert runs.outputs["report"].stdout.strip() == f"report: {runs.tmp}/report/index.html"


def test_a_read_account_browses_but_cannot_log_register_or_move_the_champion(runs):
    with as_account(runs, "admin") as client:
        champion = client.get_model_version_by_alias(MODEL, "champion")
    with as_account(runs, "reader") as client:
        experiment = client.get_experiment_by_name("threes-sevens").experiment_id
        [run] = client.search_runs([experiment])
        assert client.get_run(run.info.run_id).data.metrics["final_val_acc"] > 0
        assert "403" in refused(lambda: client.create_run(experiment))
        assert "403" in refused(lambda: client.log_metric(run.info.run_id, "x", 1.0))
        assert "403" in refused(lambda: client.create_model_version(MODEL, champion.source, run.info.run_id))
        assert "403" in refused(lambda: client.set_registered_model_alias(MODEL, "champion", champion.version))


def test_edit_on_one_experiment_does_not_write_another(users):
    with as_account(users, "admin") as client:
        a, b = (client.get_experiment_by_name(name).experiment_id for name in ("A", "B"))
    with as_account(users, "editor") as client:
        assert client.create_run(a).info.status == "RUNNING"
        assert "403" in refused(lambda: client.create_run(b))


def test_only_the_admin_or_a_manage_user_changes_permissions(users):
    with as_account(users, "reader") as client:  # a new account is granted nothing on what it was not given
        assert "403" in refused(lambda: client.get_experiment_by_name("A"))
    grant = [sys.executable, "-m", "pipeline.server", "users", "grant", "reader", "READ", "--experiment", "A"]
    denied = users.run("editor grants", users.tmp, users.env("editor"), *grant, ok=False)
    assert denied.returncode == 1 and denied.stderr.strip().splitlines() == [
        "error: cannot grant READ on experiment 'A' to 'reader': account 'editor' may not (HTTP 403); "
        "only the admin, or a user with MANAGE on it, grants"
    ]
    with as_account(users, "reader"), pytest.raises(AccountError, match="account 'reader' may not"):
        accounts.grant(users.url, "reader", "MANAGE", experiment="threes-sevens")
    with as_account(users, "manager"):
        assert accounts.grant(users.url, "reader", "READ", experiment="A") == "reader: READ on experiment 'A'"
    with as_account(users, "reader") as client:
        assert client.get_experiment_by_name("A").name == "A"


def test_mlflow_models_serve_loads_the_champion_with_a_read_account(runs):
    port, log = free_port(), runs.tmp / "serve.log"
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", f"models:/{MODEL}@champion"]
    with open(log, "w") as out:
        serving = subprocess.Popen(
            [*command, "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)],
            env=runs.env("reader"),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until_serving(serving, port, log)
        answer, body = post(port, json.dumps({"inputs": np.zeros((2, 784)).tolist()}).encode())
        assert answer == 200 and [row["digit"] in (3, 7) for row in json.loads(body)["predictions"]] == [True, True]
    finally:
        os.killpg(serving.pid, signal.SIGTERM)
        serving.wait(30)


def recorded_strings(client: MlflowClient) -> dict[str, str]:
    """Every param, tag and run name of every run, and every registered version's tags."""
    found = {}
    for experiment in client.search_experiments():
        for run in client.search_runs([experiment.experiment_id], max_results=1000):
            for kind, values in (("param", run.data.params), ("tag", run.data.tags)):
                found |= {f"run {run.info.run_id} {kind} {key}": value for key, value in values.items()}
            found[f"run {run.info.run_id} name"] = run.info.run_name
    for version in client.search_model_versions(f"name = '{MODEL}'"):
        found |= {f"{MODEL} v{version.version} tag {key}": value for key, value in version.tags.items()}
    return found


def test_no_credential_is_recorded_in_runs_configs_params_locks_logs_or_messages(runs):
    secrets = [*PASSWORDS.values(), WRONG]
    with as_account(runs, "admin") as client:
        recorded = recorded_strings(client)
    assert len(recorded) > 500  # the runs of dvc repro and of the sweeps, their params and tags
    assert [where for where, value in recorded.items() if any(secret in value for secret in secrets)] == []

    this = runs.repo / "tests" / Path(__file__).name  # the copy of this module: the passwords, written out
    files = [path for path in runs.repo.rglob("*") if path.is_file() and path != this]
    files += [runs.log, *(path for path in (runs.tmp / "artifacts").rglob("*") if path.is_file())]
    names = {path.name for path in files}
    assert {"params.yaml", "dvc.lock", "overrides.yaml", "config.yaml", "hydra.yaml", "multirun.yaml"} <= names
    assert {"train.log", "sweep.yaml", "mlflow_run.json"} <= names
    holding = [str(path) for path in files if any(secret.encode() in path.read_bytes() for secret in secrets)]
    assert holding == []
    said = {name: done.stdout + done.stderr for name, done in runs.outputs.items()}
    assert [name for name, text in said.items() if any(secret in text for secret in secrets)] == []
