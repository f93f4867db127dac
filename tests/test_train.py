import json

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient

from pipeline.model.metrics import FIT_SECONDS
from pipeline.model.predictions import FILE as PREDICTIONS
from pipeline.tracking.store import logged_params
from pipeline.train import train


def test_train_records_everything_in_one_mlflow_run(normalized, tmp_path):
    cfg = normalized
    results = train(cfg, tmp_path / "models")
    assert results["acc"] > 0.9  # the synthetic digits are linearly separable
    client = MlflowClient(cfg.tracking.uri)
    run = client.get_run(results["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.params["optim.lr"] == "1.0" and run.data.params["model.name"] == "linear"
    assert not any(key.startswith("tracking.") for key in run.data.params)
    for metric in ("train_loss", "val_loss", "val_acc", "bias"):
        assert len(client.get_metric_history(run.info.run_id, metric)) == cfg.optim.epochs, metric
    assert {"final_val_acc", "final_val_acc_first", "final_val_acc_second"} <= set(run.data.metrics)
    assert run.data.tags["data.dvc_md5"].endswith(".dir")
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"weights.npy", "weights.png", "history.csv"} <= artifacts
    weights = np.load(client.download_artifacts(run.info.run_id, "weights.npy", str(tmp_path)))
    assert weights.shape == (784,)
    model = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")  # the served model
    x = np.load(tmp_path / "data/normalized/valid_x.npy")[:5]
    logits = x @ weights + float(run.data.metrics["bias"])
    assert (model.predict(x)["digit"].to_numpy() == np.where(logits > 0, 3, 7)).all()
    assert results["registry"]["alias"] == "champion" and results["registry"]["version"] == 1
    assert (tmp_path / "models/model.ckpt").is_file()
    history = (tmp_path / "models/history.csv").read_text().splitlines()
    assert history[0].split(",")[:1] == ["epoch"] and len(history) == 1 + cfg.optim.epochs


def test_tracking_uri_comes_from_the_environment_when_config_leaves_it(monkeypatch, normalized, tmp_path):
    from dataclasses import replace

    from pipeline.tracking.store import tracking_uri

    cfg = replace(normalized, tracking=replace(normalized.tracking, uri=None))
    assert tracking_uri(cfg) == f"sqlite:///{tmp_path}/mlflow.db"  # the project directory's (here: the cwd)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/env.db")
    assert tracking_uri(cfg) == f"sqlite:///{tmp_path}/env.db"
    assert "tracking.uri" not in logged_params(cfg)


def test_same_seed_same_weights_and_metrics(normalized, tmp_path):
    first = train(normalized, tmp_path / "a")
    second = train(normalized, tmp_path / "b")
    assert np.array_equal(np.load(tmp_path / "a/weights.npy"), np.load(tmp_path / "b/weights.npy"))
    assert first["acc"] == second["acc"] and first["loss"] == second["loss"]
    # Bitwise: every per-epoch value, in the history file and in MLflow.
    assert (tmp_path / "a/history.csv").read_bytes() == (tmp_path / "b/history.csv").read_bytes()
    client = MlflowClient(normalized.tracking.uri)
    for metric in ("train_loss", "val_loss", "val_acc", "bias"):
        histories = [
            [(m.step, m.value) for m in client.get_metric_history(r["run_id"], metric)] for r in (first, second)
        ]
        assert histories[0] == histories[1] and len(histories[0]) == normalized.optim.epochs, metric
    finals = [client.get_run(r["run_id"]).data.metrics for r in (first, second)]
    assert all(f.pop(FIT_SECONDS) > 0 for f in finals)  # a wall time: the one final metric that differs
    assert finals[0] == finals[1]
    assert (tmp_path / "a" / PREDICTIONS).read_bytes() == (tmp_path / "b" / PREDICTIONS).read_bytes()


def test_a_run_prints_no_lightning_noise(normalized, tmp_path, recwarn, caplog):
    """Neither torch's LeafSpec FutureWarning (raised inside Lightning) nor Lightning's LitLogger
    advertisement reaches the user; Lightning's own information (devices, why fit stopped) does."""
    caplog.set_level("INFO")
    train(normalized, tmp_path / "out")
    assert not [w for w in recwarn if "LeafSpec" in str(w.message)]
    assert "litlogger" not in caplog.text and "GPU available" in caplog.text


def test_a_missing_input_stops_with_its_path_and_the_command_that_makes_it(cfg, tmp_path):
    from pipeline.config.errors import InputError

    with pytest.raises(
        InputError, match=rf"{tmp_path}/data/normalized/stats.json: missing; remake it with `dvc repro`"
    ):
        train(cfg, tmp_path / "models")
    assert not (tmp_path / "mlflow.db").exists()  # stopped before any run was recorded


def test_the_run_file_names_the_run_for_dvc(normalized, tmp_path):
    from dataclasses import replace

    cfg = replace(
        normalized, tracking=replace(normalized.tracking, run_file=str(tmp_path / "mlflow_run.json"), log_model=False)
    )
    result = train(cfg, tmp_path / "models")
    ids = json.loads((tmp_path / "mlflow_run.json").read_text())
    assert ids["mlflow_run_id"] == result["run_id"]
    assert MlflowClient(cfg.tracking.uri).get_run(result["run_id"]).info.experiment_id == ids["mlflow_experiment_id"]
    assert not (tmp_path / "models/mlflow_run.json").exists()
