"""DVC experiments from conf/: `dvc exp run -S` recomposes params.yaml through Hydra (with the sweep
callback and the Optuna search group in conf/), and experiments compare with exp show, metrics
diff and plots diff. Real MNIST, two epochs, in a temporary copy of the repository."""

import json

import mlflow
import pytest

from tests.test_pipeline_e2e import WHEEL_CACHE, project_copy, run

pytestmark = pytest.mark.slow


def exp_run(repo, name, *overrides):
    sets = [
        arg for override in ("optim.epochs=2", f"fetch.cache_dir={WHEEL_CACHE}", *overrides) for arg in ("-S", override)
    ]
    return run(repo, "dvc", "exp", "run", "-n", name, *sets)


def test_dvc_experiments_from_conf(tmp_path):
    repo = project_copy(tmp_path / "repo")
    out = exp_run(repo, "lr-1", "optim.lr=1.0")
    assert "Running stage 'train'" in out
    out = exp_run(repo, "lr-quarter", "optim.lr=0.25", "model.bias=false")
    assert [s for s in ("fetch", "filter", "normalize", "train", "evaluate") if f"Running stage '{s}'" in out] == [
        "train",
        "evaluate",
    ]  # the data stages are unchanged

    rows = json.loads(run(repo, "dvc", "exp", "show", "--json"))
    experiments = {exp["name"]: exp["revs"][0]["data"] for row in rows for exp in row.get("experiments") or []}
    assert set(experiments) == {"lr-1", "lr-quarter"}
    params = {name: data["params"]["params.yaml"]["data"] for name, data in experiments.items()}
    assert params["lr-1"]["optim"]["lr"] == 1.0 and params["lr-quarter"]["optim"]["lr"] == 0.25
    assert params["lr-quarter"]["model"]["bias"] is False and params["lr-quarter"]["optim"]["epochs"] == 2
    table = run(repo, "dvc", "exp", "show", "--csv").splitlines()
    assert "valid.acc" in table[0].split(",")
    assert {line.split(",")[0] for line in table[1:]} >= {"lr-1", "lr-quarter"}

    diff = json.loads(run(repo, "dvc", "metrics", "diff", "lr-1", "lr-quarter", "--json"))
    acc = diff["metrics.json"]["valid.acc"]
    assert 0.9 < acc["old"] <= 1 and 0.9 < acc["new"] <= 1 and acc["diff"] == pytest.approx(acc["new"] - acc["old"])
    assert "valid.acc" in run(repo, "dvc", "metrics", "diff", "lr-1", "lr-quarter")

    run(repo, "dvc", "plots", "diff", "lr-1", "lr-quarter", "-o", str(tmp_path / "plots"))
    page = (tmp_path / "plots/index.html").read_text()
    assert "lr-1" in page and "lr-quarter" in page and "Validation accuracy per epoch" in page

    # Each experiment's train stage recorded its own MLflow run.
    mlflow.set_tracking_uri(f"sqlite:///{repo}/mlflow.db")
    runs = mlflow.search_runs(experiment_names=["threes-sevens"])
    assert sorted(runs["params.optim.lr"]) == ["0.25", "1.0"]
    assert set(runs["status"]) == {"FINISHED"}
