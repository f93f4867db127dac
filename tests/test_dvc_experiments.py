"""DVC experiments from conf/: `dvc exp run -S` recomposes params.yaml through Hydra (with the sweep
callback and the Optuna search group in conf/), and experiments compare with exp show, metrics
diff and plots diff. Real MNIST, two epochs, in a temporary copy of the repository; and the README's
`dvc exp show` across digit pairs, on small generated data."""

import json
import re
import shlex

import mlflow
import pytest

from tests.conftest import REPO, write_idx_dir
from tests.test_pipeline_e2e import WHEEL_CACHE, compose_params, git, project_copy, run

pytestmark = pytest.mark.slow


def exp_run(repo, name, *overrides):
    sets = [
        arg for override in ("fit.epochs=2", f"fetch.cache_dir={WHEEL_CACHE}", *overrides) for arg in ("-S", override)
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
    assert params["lr-quarter"]["model"]["bias"] is False and params["lr-quarter"]["fit"]["epochs"] == 2
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


def readme_exp_show() -> str:
    """The README's short `dvc exp show` command (one, wherever the README gives it)."""
    commands = set(re.findall(r"^(dvc exp show --only-changed .+)$", (REPO / "README.md").read_text(), re.MULTILINE))
    assert len(commands) == 1, commands
    return commands.pop()


def test_the_readme_exp_show_fits_120_columns_across_digit_pairs(tmp_path, monkeypatch):
    """A baseline trained on 3 and 7, an experiment on 1 and 8: the README's command shows what differs
    (accuracy overall and on each digit, under the same names, and data.digits) within 120 columns."""
    repo = project_copy(tmp_path / "repo")
    write_idx_dir(tmp_path / "idx")
    small = [
        "fetch=local",
        f"fetch.local_dir={tmp_path}/idx",
        "fetch.verify_canonical=false",
        "data.valid_last=150",
        "fit.epochs=1",
    ]
    small.append("optim.lr=0.025")  # short of perfect on this easy data: the accuracies differ between the pairs
    compose_params(repo, *small)
    run(repo, "dvc", "repro")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "3 and 7")
    run(repo, "dvc", "exp", "run", "-n", "pair18", *[arg for o in [*small, "data.digits=[1,8]"] for arg in ("-S", o)])

    monkeypatch.setenv("COLUMNS", "1000")  # the table at its own width (DVC squeezes it to a terminal's)
    lines = [line.rstrip() for line in run(repo, *shlex.split(readme_exp_show())).splitlines() if line.strip()]
    header = lines[1].split()
    # what differs, under the same names for both pairs: no valid.acc_3 / valid.acc_1, no data hashes
    assert {"Experiment", "valid.acc", "data.digits"} <= set(header)
    assert set(header) <= {
        "Experiment",
        "valid.loss",
        "valid.acc",
        "valid.acc_first",
        "valid.acc_second",
        "data.digits",
    }
    rows = {line.split()[0]: line for line in lines[2:] if not line.lstrip().startswith("─")}
    assert rows["master"].endswith("[3, 7]") and rows["workspace"].endswith("[1, 8]")
    assert any("[pair18]" in line and line.endswith("[1, 8]") for line in lines)
    assert max(len(line) for line in lines) <= 120, "\n".join(lines)
