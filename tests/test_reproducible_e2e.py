"""Two `dvc repro --force` of the whole pipeline give byte-identical metrics and histories."""

import pytest

from tests.conftest import write_idx_dir
from tests.test_pipeline_e2e import compose_params, git, project_copy, run

pytestmark = pytest.mark.slow


def test_dvc_repro_force_twice_gives_identical_metrics(tmp_path):
    repo = project_copy(tmp_path / "repo")
    write_idx_dir(tmp_path / "idx", n_train=2000, n_test=500)  # synthetic digits: the point is sameness, fast
    compose_params(repo, "fetch=local", f"fetch.local_dir={tmp_path}/idx", "fetch.verify_canonical=false",
                   "optim.epochs=3", "trainer.accelerator=cpu")
    git(repo, "commit", "-qam", "small run")
    outputs = ("metrics.json", "models/history.csv", "models/weights.npy", "plots/predictions.csv")
    run(repo, "dvc", "repro")
    first = {name: (repo / name).read_bytes() for name in outputs}
    out = run(repo, "dvc", "repro", "--force")
    assert "Running stage 'train'" in out and "Running stage 'evaluate'" in out
    for name in outputs:
        assert (repo / name).read_bytes() == first[name], name
