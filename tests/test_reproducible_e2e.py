"""`dvc repro` is reproducible: forced again, or in another checkout at another path, it gives
byte-identical outputs and the same dvc.lock (every stage's output hash, models/ included)."""

import pytest

from tests.conftest import write_idx_dir
from tests.test_pipeline_e2e import compose_params, git, project_copy, run

pytestmark = pytest.mark.slow
OUTPUTS = ("dvc.lock", "metrics.json", "models/history.csv", "models/weights.npy", "plots/predictions.csv")


def small_project(dest, idx):
    repo = project_copy(dest)
    compose_params(
        repo,
        "fetch=local",
        f"fetch.local_dir={idx}",
        "fetch.verify_canonical=false",
        "data.valid_last=150",  # the last 150 of the small training set validate
        "fit.epochs=3",
        "trainer.accelerator=cpu",
    )
    git(repo, "commit", "-qam", "small run")
    return repo


def test_dvc_repro_gives_identical_outputs_and_lock_when_forced_and_elsewhere(tmp_path):
    write_idx_dir(tmp_path / "idx", n_train=2000, n_test=500)  # synthetic digits: the point is sameness, fast
    repo = small_project(tmp_path / "repo", tmp_path / "idx")
    run(repo, "dvc", "repro")
    first = {name: (repo / name).read_bytes() for name in OUTPUTS}

    out = run(repo, "dvc", "repro", "--force")
    assert "Running stage 'train'" in out and "Running stage 'evaluate'" in out
    assert {name: (repo / name).read_bytes() for name in OUTPUTS} == first

    elsewhere = small_project(tmp_path / "another" / "checkout", tmp_path / "idx")
    run(elsewhere, "dvc", "repro")
    assert {name: (elsewhere / name).read_bytes() for name in OUTPUTS} == first
    assert "up to date" in run(elsewhere, "dvc", "status")
