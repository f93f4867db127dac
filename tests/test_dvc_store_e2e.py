"""One MLflow store wherever a training starts: DVC's queued and temporary experiments record their
runs in the repository's store, tagged with the experiment, and `dvc exp show` names each
experiment's run; a training started in a subdirectory writes only where conf/ says. Synthetic
digits, 3 epochs, in a temporary copy of the repository."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.conftest import write_idx_dir
from tests.test_pipeline_e2e import compose_params, git, project_copy, run

pytestmark = pytest.mark.slow
QUEUED = {"lr-03": "0.3", "lr-05": "0.5", "lr-20": "2.0"}


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """A copy of the project, reproduced on synthetic data and committed: the experiments' baseline."""
    tmp = tmp_path_factory.mktemp("store")
    write_idx_dir(tmp / "idx", n_train=1000, n_test=300)
    repo = project_copy(tmp / "repo")
    compose_params(repo, *small(repo))
    run(repo, "dvc", "repro")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "reproduced")
    return repo


def small(repo) -> list[str]:
    """The synthetic data beside the copy, few epochs: what params.yaml and every experiment set."""
    return [
        "fetch=local",
        f"fetch.local_dir={repo.parent / 'idx'}",
        "fetch.verify_canonical=false",
        "data.valid_last=150",  # the last 150 of the small training set validate
        "fit.epochs=3",
        "trainer.accelerator=cpu",
        "tracking.log_model=false",
    ]


def dvc_env() -> dict:
    """As tests.test_pipeline_e2e.run runs dvc: the venv's commands first, no MLFLOW_* settings."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    return {k: v for k, v in env.items() if not k.startswith("MLFLOW_")}


def exp_run(repo, *args, lr):
    sets = [arg for override in (*small(repo), f"optim.lr={lr}") for arg in ("-S", override)]
    return run(repo, "dvc", "exp", "run", *args, *sets)


def store_runs(repo) -> dict:
    """The project store's runs of the DVC experiments, by experiment name."""
    client = MlflowClient(f"sqlite:///{repo}/mlflow.db")
    runs = client.search_runs(["1"], "tags.`dvc.exp_name` LIKE '%'")
    return {r.data.tags["dvc.exp_name"]: r for r in runs}


def experiments(repo) -> dict:
    """`dvc exp show --json`: each experiment's data, by name."""
    rows = json.loads(run(repo, "dvc", "exp", "show", "--json"))
    return {exp["name"]: exp["revs"][0]["data"] for row in rows for exp in row.get("experiments") or []}


def baseline_run(repo):
    [repro] = MlflowClient(f"sqlite:///{repo}/mlflow.db").search_runs(
        ["1"], "tags.`dvc.exp_name` IS NULL", order_by=["attributes.start_time ASC"], max_results=1
    )
    return repro


@pytest.mark.timeout(1800)  # dvc repro, then three experiments in temporary workspaces, two at a time
def test_queued_experiments_run_in_parallel_record_their_runs_in_the_project_store(repo):
    for name, lr in QUEUED.items():
        exp_run(repo, "--queue", "-n", name, lr=lr)
    try:  # its workers outlive it holding its stdout: no pipe to wait on
        subprocess.run(
            ["dvc", "queue", "start", "-j", "2"],
            cwd=repo,
            env=dvc_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=True,
        )
        deadline = time.monotonic() + 1500
        status = run(repo, "dvc", "queue", "status")
        while "Queued" in status or "Running" in status:
            assert time.monotonic() < deadline, status
            time.sleep(5)
            status = run(repo, "dvc", "queue", "status")
    finally:
        run(repo, "dvc", "queue", "stop")
    assert status.count("Success") == 3, status

    runs, shown, head = store_runs(repo), experiments(repo), run(repo, "git", "rev-parse", "HEAD").strip()
    repro = baseline_run(repo)
    for name, lr in QUEUED.items():
        mlflow_run = runs[name]
        assert mlflow_run.info.status == "FINISHED" and mlflow_run.data.params["optim.lr"] == lr
        tags = mlflow_run.data.tags
        assert tags["dvc.exp_baseline_rev"] == tags["mlflow.source.git.commit"] == head
        # The same lineage as the `dvc repro` run: the same data, as dvc.lock records it.
        assert tags["data.dvc_md5"] == repro.data.tags["data.dvc_md5"] and tags["data.dvc_lock"] == "matches"
        # The link back: the experiment's metrics name its run, and agree with it.
        data = shown[name]
        assert data["metrics"]["mlflow_run.json"]["data"]["mlflow_run_id"] == mlflow_run.info.run_id
        acc = data["metrics"]["metrics.json"]["data"]["valid"]["acc"]
        assert mlflow_run.data.metrics["final_val_acc"] == pytest.approx(acc)
    assert len({runs[name].info.run_id for name in QUEUED}) == 3


@pytest.mark.timeout(900)
def test_a_temporary_experiment_records_one_run_in_the_project_store(repo):
    exp_run(repo, "--temp", "-n", "temp-lr", lr="0.7")
    mlflow_run = store_runs(repo)["temp-lr"]
    assert mlflow_run.info.status == "FINISHED" and mlflow_run.data.params["optim.lr"] == "0.7"
    shown = experiments(repo)["temp-lr"]["metrics"]["mlflow_run.json"]["data"]
    assert shown["mlflow_run_id"] == mlflow_run.info.run_id


def test_training_from_a_subdirectory_uses_the_project_store_and_writes_nothing_stray(repo):
    def status():
        return set(run(repo, "git", "status", "--porcelain", "--ignored", "--untracked-files=all").splitlines())

    def train_in_plots(*overrides):
        env = {**dvc_env(), "PYTHONPATH": str(repo)}  # the copy's pipeline/, as an editable install would give
        return subprocess.run(
            [sys.executable, "-m", "pipeline.train", "trainer.accelerator=cpu", "tracking.log_model=false", *overrides],
            cwd=repo / "plots",
            env=env,
            capture_output=True,
            text=True,
        )

    client = MlflowClient(f"sqlite:///{repo}/mlflow.db")
    before_runs = {r.info.run_id for r in client.search_runs(["1"])}
    before = {line for line in status() if not line.startswith("!! mlruns/")}  # the store's own files

    done = train_in_plots("fit.epochs=1")
    assert done.returncode == 0, done.stderr[-3000:]
    [new] = [r for r in client.search_runs(["1"]) if r.info.run_id not in before_runs]
    assert new.info.status == "FINISHED" and new.data.params["fit.epochs"] == "1"
    added = {line for line in status() - before if not line.startswith("!! mlruns/")}
    assert {line.split("/")[0] for line in added} == {"!! outputs"}  # Hydra's run directory, in the project

    done = train_in_plots("paths.normalized=nowhere")  # a missing input: its path and what makes it, no traceback
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert (
        done.stderr.strip().splitlines()[-1]
        == f"error: {repo}/nowhere/stats.json: missing; remake it with `dvc repro`, or restore the committed "
        f"version with `dvc checkout {repo}/nowhere`"
    )
