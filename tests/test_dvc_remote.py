"""Data sharing: `dvc push` to a DVC remote, `dvc pull` in a fresh clone gives the same data and
model without running anything (a local-directory remote here; S3 works the same way)."""

import pytest

from tests.conftest import write_idx_dir
from tests.test_pipeline_e2e import compose_params, git, project_copy, run

pytestmark = pytest.mark.slow
SHARED = ["data/raw/manifest.json", "data/normalized/train_x.npy", "data/normalized/valid_y.npy", "models/model.ckpt"]


def test_push_then_pull_in_a_fresh_clone_restores_every_stage_output(tmp_path):
    repo = project_copy(tmp_path / "repo")
    write_idx_dir(tmp_path / "idx")
    compose_params(
        repo,
        "fetch=local",
        f"fetch.local_dir={tmp_path}/idx",
        "fetch.verify_canonical=false",
        "data.valid_last=150",  # the last 150 of the small training set validate
        "fit.epochs=2",
        "trainer.accelerator=cpu",
        "tracking.log_model=false",
    )
    run(repo, "dvc", "repro")
    run(repo, "dvc", "remote", "add", "--default", "shared", str(tmp_path / "remote"))
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "trained; remote configured")

    assert "pushed" in run(repo, "dvc", "push")
    assert any((tmp_path / "remote").rglob("*")), "nothing reached the remote"
    assert "in sync" in run(repo, "dvc", "status", "--cloud")

    git(tmp_path, "clone", "-q", str(repo), "clone")
    clone = tmp_path / "clone"
    assert not (clone / "data").exists()
    run(clone, "dvc", "pull")
    for name in SHARED:
        assert (clone / name).read_bytes() == (repo / name).read_bytes(), name
    assert "Data and pipelines are up to date" in run(clone, "dvc", "status")
    assert "Running stage" not in run(clone, "dvc", "repro")  # nothing to recompute
