"""A training whose store fails once the model is saved: the outputs and unrecorded.json stay on disk,
the training ends with StoreLost (one line, the command), and `python -m pipeline.tracking record`
completes the same run without sending anything twice. The store here is a sqlite file and the
failure a patched call; a real server that goes away: tests/test_store_outage_e2e.py."""

import mlflow
import pytest
import requests
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from pipeline.config.errors import PipelineError, StoreLost
from pipeline.tracking import results
from pipeline.tracking.__main__ import main as tracking_command
from pipeline.train import train


def test_a_lost_store_keeps_the_model_and_the_command_completes_the_same_run(normalized, tmp_path, monkeypatch):
    log_artifact = mlflow.log_artifact

    def store_gone(*args, **kwargs):  # what MLflow raises once its retries give up
        try:
            raise requests.exceptions.ConnectionError("Connection refused")
        except requests.exceptions.ConnectionError:
            raise MlflowException("API request to http://127.0.0.1:5000/... failed") from None

    monkeypatch.setattr(mlflow, "log_artifact", store_gone)  # after the final metrics were sent
    out = tmp_path / "out"
    with pytest.raises(StoreLost) as lost:
        train(normalized, out)
    assert f"the model is saved in {out}" in str(lost.value)
    assert str(lost.value).endswith(f"once the server is back: python -m pipeline.tracking record {out}")
    assert {"model.ckpt", "history.csv", "unrecorded.json"} <= {path.name for path in out.iterdir()}
    client = MlflowClient(normalized.tracking.uri)
    [run] = client.search_runs([client.get_experiment_by_name("threes-sevens").experiment_id])
    assert run.info.status == "FAILED" and run.data.tags["end_reason"] == str(lost.value)
    assert mlflow.active_run() is None  # left without waiting on the store

    monkeypatch.setattr(mlflow, "log_artifact", log_artifact)
    tracking_command(["record", str(out)])
    run = client.get_run(run.info.run_id)
    assert run.info.status == "FINISHED" and "end_reason" not in run.data.tags and "recorded_later" in run.data.tags
    assert len(client.get_metric_history(run.info.run_id, "final_val_acc")) == 1  # sent once, before the failure
    assert {"history.csv", "predictions.csv"} <= {a.path for a in client.list_artifacts(run.info.run_id)}
    [_] = client.search_logged_models([run.info.experiment_id], f"source_run_id = '{run.info.run_id}'")
    assert client.get_model_version_by_alias("threes-sevens-3-7", "champion").run_id == run.info.run_id
    assert not (out / "unrecorded.json").exists()


def test_a_directory_without_a_run_to_record_is_refused_in_one_line(tmp_path):
    with pytest.raises(PipelineError) as refused:
        results.Results.load(tmp_path)
    assert str(refused.value) == (
        f"{tmp_path}/unrecorded.json: not found; {tmp_path} holds no run waiting to be recorded "
        "(its run was recorded, or it is not a training's output directory)"
    )
    (tmp_path / "unrecorded.json").write_text('{"run": 1}')
    with pytest.raises(PipelineError, match="unrecorded.json: not what a training writes"):
        results.Results.load(tmp_path)


def test_results_keep_no_credentials_and_read_back_as_written(tmp_path):
    pending = results.Results("r1", "http://alice:s3cret@127.0.0.1:5000", {"final_val_acc": 0.5}, artifacts=["a"])
    pending.save(tmp_path)
    assert "s3cret" not in (tmp_path / "unrecorded.json").read_text()
    read = results.Results.load(tmp_path)
    assert read == results.Results("r1", "http://127.0.0.1:5000", {"final_val_acc": 0.5}, artifacts=["a"])
