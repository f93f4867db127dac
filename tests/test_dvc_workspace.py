"""What `dvc exp run` and `dvc repro` leave in the workspace, on small generated data in a temporary
copy of the repository: a refused value costs nothing, a changed value retrains, the lock reproduces,
and `dvc exp show` is readable at 120 columns."""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import write_idx_dir
from tests.test_pipeline_e2e import git, project_copy, run

pytestmark = pytest.mark.slow


def tree_digest(path: Path) -> dict[str, str]:
    return {
        str(f.relative_to(path)): hashlib.md5(f.read_bytes()).hexdigest()
        for f in sorted(path.rglob("*"))
        if f.is_file()
    }


def dvc(repo, *args, columns=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
    if columns:
        env["COLUMNS"] = str(columns)
    return subprocess.run(["dvc", *args], cwd=repo, env=env, capture_output=True, text=True)


@pytest.fixture(scope="module")
def reproduced(tmp_path_factory):
    """A committed `dvc repro` of the pipeline on generated IDX files, and the -S overrides that
    recompose its params.yaml."""
    tmp = tmp_path_factory.mktemp("ws")
    write_idx_dir(tmp / "idx")
    repo = project_copy(tmp / "repo")
    base = [
        "fetch=local",
        f"fetch.local_dir={tmp}/idx",
        "fetch.verify_canonical=false",
        "data.valid_last=150",  # the last 150 of the small training set validate
        "fit.epochs=2",
        "trainer.accelerator=cpu",
    ]
    (repo / "params.yaml").write_text(run(repo, sys.executable, "-m", "pipeline.config", *base))
    run(repo, "dvc", "repro")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "reproduced")
    return repo, [arg for override in base for arg in ("-S", override)]


def test_a_refused_value_costs_the_workspace_nothing(reproduced):
    repo, sets = reproduced
    models, params = tree_digest(repo / "models"), (repo / "params.yaml").read_text()
    done = dvc(repo, "exp", "run", *sets, "-S", "optim.lr=0")
    assert done.returncode != 0
    ours = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(ours) == 1 and "optim.lr=0.0: expected a number > 0" in ours[0]
    assert "Traceback" not in done.stdout + done.stderr
    assert tree_digest(repo / "models") == models  # DVC kept models/ (persist) and train refused before writing
    if (repo / "params.yaml").read_text() != params:  # DVC leaves its composition: the error says how to recover
        assert "git checkout params.yaml && dvc checkout" in ours[0]
        git(repo, "checkout", "params.yaml")
    assert dvc(repo, "status").stdout.strip().endswith("Data and pipelines are up to date.")


def test_repro_reproduces_the_lock_and_a_changed_value_retrains(reproduced):
    repo, sets = reproduced
    lock = (repo / "dvc.lock").read_text()
    done = dvc(repo, "repro", "--force", "train")
    assert done.returncode == 0, done.stderr
    assert (repo / "dvc.lock").read_text() == lock  # the same model, byte for byte, through the atomic replace
    models = tree_digest(repo / "models")
    done = dvc(repo, "exp", "run", "-n", "lr-half", *sets, "-S", "optim.lr=0.5")
    assert done.returncode == 0, done.stderr
    assert "Running stage 'train'" in done.stdout and tree_digest(repo / "models") != models
    assert sorted(tree_digest(repo / "models")) == sorted(models)  # no stale file, none missing


def test_dvc_exp_show_is_readable_at_120_columns(reproduced):
    repo, sets = reproduced
    if dvc(repo, "exp", "show", "--json").stdout.count("lr-half") == 0:
        assert dvc(repo, "exp", "run", "-n", "lr-half", *sets, "-S", "optim.lr=0.5").returncode == 0
    # --drop models: the model directory's hash (a dependency of evaluate) says nothing a reader needs
    table = dvc(repo, "exp", "show", "--only-changed", "--drop", "models", "--no-pager", columns=120).stdout
    header = table.splitlines()[1].split()
    assert len(max(table.splitlines(), key=len)) <= 120, table
    assert header[:2] == ["Experiment", "Created"] and "optim.lr" in header, table  # the changed param
    assert "…" not in table, table  # no column cut off
    assert "[lr-half]" in table
