"""docs/runs.md lists what a training run holds: a trained run, read back, holds exactly that."""

import re

import mlflow
import mlflow.pytorch
from mlflow import MlflowClient

from pipeline.config.compose import to_flat_dict
from pipeline.data.normalized import read
from pipeline.train import train
from tests.conftest import REPO


def documented() -> dict[str, set[str]]:
    """The table in docs/runs.md: part -> the backticked names in its row."""
    rows = re.findall(r"^\| ([^|]+?) \| (.+?) \|$", (REPO / "docs/runs.md").read_text(), re.MULTILINE)
    return {part: set(re.findall(r"`([^`]+)`", names)) for part, names in rows if part not in ("part", "---")}


def test_a_linear_run_holds_what_docs_runs_md_lists(normalized, tmp_path):
    cfg = normalized
    doc = documented()
    run_id = train(cfg, tmp_path / "models")["run_id"]
    client = MlflowClient(cfg.tracking.uri)
    run = client.get_run(run_id)

    identity = {"data.count.train", "data.count.valid", "data.count.test", "data.raw_sha256"}  # the data actually used
    expected_params = {key for key in to_flat_dict(cfg) if not key.startswith("tracking.")} | identity
    assert set(run.data.params) == expected_params  # once each: no `optim/lr` copies
    assert not [key for key in run.data.params if "/" in key]
    assert set(run.data.metrics) == doc["metrics per epoch (step = epoch)"] | doc["final metrics (one value)"]
    assert "epoch" not in run.data.metrics
    for name in doc["metrics per epoch (step = epoch)"]:
        assert [m.step for m in client.get_metric_history(run_id, name)] == list(range(cfg.fit.epochs)), name
    for name in doc["final metrics (one value)"]:
        assert len(client.get_metric_history(run_id, name)) == 1, name
    assert {a.path for a in client.list_artifacts(run_id)} == doc["artifacts (linear)"]

    tags = set(run.data.tags)
    assert doc["tags"] | doc["MLflow's own tags"] <= tags
    assert tags <= doc["tags"] | doc["MLflow's own tags"] | doc["tags when they apply"]
    assert {i.dataset.name for i in run.inputs.dataset_inputs} == doc["dataset inputs"]

    # The model: a Logged Model linked to the run, loadable by the run and by its own id.
    mlflow.set_tracking_uri(cfg.tracking.uri)
    [output] = run.outputs.model_outputs
    model = mlflow.get_logged_model(output.model_id)
    assert {model.name} == doc["model"] and model.source_run_id == run_id
    x = read(cfg.paths.normalized).arrays["valid"][0][:4]
    by_run = mlflow.pyfunc.load_model(f"runs:/{run_id}/{model.name}").predict(x)
    by_id = mlflow.pyfunc.load_model(f"models:/{model.model_id}").predict(x)
    assert by_run.equals(by_id) and list(by_run.columns) == ["digit", "prob_3"]
