"""What a training writes (pipeline/model/outputs.py): each kind of model its own pictures, logged
as artifacts of its run."""

import warnings

import numpy as np
from mlflow import MlflowClient

from pipeline.data.normalized import read
from pipeline.model.outputs import example_indices
from pipeline.train import train
from tests.conftest import make_config


def artifacts_of(cfg, run_id):
    return {a.path for a in MlflowClient(cfg.tracking.uri).list_artifacts(run_id)}


def test_example_indices_take_the_first_images_of_each_digit():
    labels = np.array([0, 1, 1, 0, 0, 1, 1, 0], np.float32)
    assert example_indices(labels, per_digit=2).tolist() == [1, 2, 0, 3]


def test_linear_run_logs_contribution_maps_and_bias_trajectory(normalized, tmp_path):
    results = train(normalized, tmp_path / "models")
    assert {"contributions.png", "bias.png", "weights.png"} <= artifacts_of(normalized, results["run_id"])
    for name in ("contributions.png", "bias.png"):
        assert (tmp_path / "models" / name).read_bytes()[:4] == b"\x89PNG"


def test_linear_without_bias_has_contributions_but_no_bias_trajectory(normalized, tmp_path):
    cfg = make_config(tmp_path, ["model.bias=false", "tracking.log_model=false"])
    artifacts = artifacts_of(cfg, train(cfg, tmp_path / "models")["run_id"])
    assert "contributions.png" in artifacts and "bias.png" not in artifacts


def test_pixel_similarity_trains_through_lightning_and_logs_its_templates(normalized, tmp_path):
    cfg = make_config(tmp_path, ["model=pixel_similarity", "fit.epochs=1"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = train(cfg, tmp_path / "models")
    assert not [w for w in caught if "optimizer" in str(w.message)]  # "nothing to optimise" is no warning
    client = MlflowClient(cfg.tracking.uri)
    run = client.get_run(results["run_id"])
    assert run.info.status == "FINISHED" and run.data.params["model.name"] == "pixel_similarity"
    assert run.data.metrics["final_val_acc"] == results["acc"] > 0.9  # the synthetic digits are far apart
    assert {"templates.npy", "templates.png"} <= artifacts_of(cfg, results["run_id"])
    assert "weights.npy" not in artifacts_of(cfg, results["run_id"])
    templates = np.load(client.download_artifacts(results["run_id"], "templates.npy", str(tmp_path)))
    x, y = read(cfg.paths.normalized).arrays["train"]
    assert np.allclose(templates, [x[y == 1].mean(0), x[y == 0].mean(0)], atol=1e-6)
