import time

import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric, Param

from pipeline.errors import PipelineError
from pipeline.tracking import experiment_id, open_client, wait_for_logged


def test_wait_for_logged_waits_for_async_metrics_and_reports_lost_ones(tmp_path):
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    run_id = client.create_run(client.create_experiment("e")).info.run_id
    client.log_batch(run_id, params=[Param("optim.lr", "1.0")], synchronous=False)
    for epoch in range(3):
        client.log_batch(run_id, metrics=[Metric("train_loss", 0.5, int(time.time() * 1000), epoch)],
                         synchronous=False)
    wait_for_logged(client, run_id, {"optim.lr": 1.0}, epochs=3)
    assert len(client.get_metric_history(run_id, "train_loss")) == 3

    with pytest.raises(PipelineError, match=r"3 of 4 epochs of 'train_loss' and 1 of 2 params stored"):
        wait_for_logged(client, run_id, {"optim.lr": 1.0, "seed": 42}, epochs=4)


def test_a_sqlite_store_keeps_its_artifacts_beside_the_database_whatever_the_working_directory(tmp_path, monkeypatch):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # MLflow's default would be ./mlruns here
    client = open_client(f"sqlite:///{tmp_path}/store/mlflow.db")
    experiment = experiment_id(client, "e")
    assert experiment_id(client, "e") == experiment
    run_id = client.create_run(experiment).info.run_id
    (tmp_path / "note.txt").write_text("hello")
    client.log_artifact(run_id, str(tmp_path / "note.txt"))
    assert (tmp_path / "store/mlruns" / run_id / "artifacts/note.txt").read_text() == "hello"
    assert not (elsewhere / "mlruns").exists()
