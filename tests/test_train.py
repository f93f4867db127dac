import json
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient
from omegaconf import OmegaConf

from pipeline.model.metric_names import FIT_SECONDS
from pipeline.model.predictions import FILE as PREDICTIONS
from pipeline.model.predictions import TEST_FILE as TEST_PREDICTIONS
from pipeline.model.predictions import correct, read_predictions
from pipeline.tracking.store import logged_params
from pipeline.train import train
from tests.conftest import REPO, make_config


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
        assert len(client.get_metric_history(run.info.run_id, metric)) == cfg.fit.epochs, metric
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
    assert history[0].split(",")[:1] == ["epoch"] and len(history) == 1 + cfg.fit.epochs


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
        assert histories[0] == histories[1] and len(histories[0]) == normalized.fit.epochs, metric
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


def test_a_collapsed_model_warns_once_is_tagged_and_never_becomes_champion(normalized, tmp_path, capsys):
    """An MLP of 2 units at SGD lr 100 answers one digit for every image after two epochs (its ReLUs die),
    as the CNN does on MNIST with the linear model's recipe."""
    cfg = make_config(tmp_path, ["model=mlp", "model.hidden=2", "optim=sgd", "optim.lr=100", "fit.epochs=2"])
    results = train(cfg, tmp_path / "collapsed")
    warnings = [line for line in capsys.readouterr().err.splitlines() if "collapsed" in line]
    assert warnings == [
        "train: warning: the model collapsed: it answers 3 for 23 of 23 validation images; likely cause: a "
        "learning rate too high for this model (optim._target_=torch.optim.SGD optim.lr=100), or too little "
        "training; mlp trains well with its own recipe: optim=adam optim.lr=0.001 fit.epochs=20 (conf/model/mlp.yaml)"
    ]
    run = MlflowClient(cfg.tracking.uri).get_run(results["run_id"])
    assert run.info.status == "FINISHED" and run.data.tags["collapsed"] == "answers 3 for 23 of 23 validation images"
    assert run.data.tags["mlflow.note.content"].startswith("Warning: the model collapsed")  # the run's description
    assert results["registry"]["alias"] == "challenger" and not results["registry"]["promoted"]
    assert results["registry"]["reason"].startswith("collapsed (answers 3 for 23 of 23")


def counted_train(tmp_path, normalized, *args: str, env: dict | None = None) -> dict:
    """Counts of tests/counted_train.py for `python -m pipeline.train ARGS` on the synthetic data."""
    counts = tmp_path / "counts.json"
    data = normalized.paths.normalized
    done = subprocess.run(
        [sys.executable, str(REPO / "tests/counted_train.py"), str(counts), data, *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", **(env or {})},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(counts.read_text())


ONE_CHECK = {
    "task validate": 1,
    "task check_store": 1,
    **{
        f"task open {name}": 1
        for name in ("stats.json", *(f"{split}_{a}.npy" for split in ("train", "valid", "test") for a in "xy"))
    },
}


def test_one_check_per_run_a_direct_run_and_a_dvc_stage(normalized, tmp_path):
    """A run validates its configuration, reads each input file and probes the store exactly once."""
    world = [f"paths.normalized={normalized.paths.normalized}", f"tracking.uri={normalized.tracking.uri}"]
    direct = counted_train(tmp_path, normalized, *world, f"hydra.run.dir={tmp_path}/run", "trainer.accelerator=cpu")
    assert direct == ONE_CHECK
    params = OmegaConf.to_container(OmegaConf.structured(normalized), enum_to_str=True)
    (tmp_path / "params.yaml").write_text(OmegaConf.to_yaml(params))
    stage = ["--config-dir", str(tmp_path), "--config-name", "params", f"hydra.run.dir={tmp_path}/models"]
    stage += ["hydra.output_subdir=null", "hydra/job_logging=stdout"]  # as dvc.yaml's train stage runs it
    assert counted_train(tmp_path, normalized, *stage, env={"DVC_STAGE": "train"}) == ONE_CHECK


def test_one_check_per_job_of_a_sweep_and_one_look_at_the_world_for_the_whole_sweep(normalized, tmp_path):
    world = [f"paths.normalized={normalized.paths.normalized}", f"tracking.uri={normalized.tracking.uri}"]
    counts = counted_train(
        tmp_path, normalized, "-m", "optim.lr=0.5,1.0", *world, f"hydra.sweep.dir={tmp_path}/sweep", "fit.epochs=1"
    )
    in_jobs = {key: n for key, n in counts.items() if key.startswith("task")}
    assert in_jobs == {key: 2 * n for key, n in ONE_CHECK.items()}  # two jobs, each checked once
    # Before the first job: the data and the store once for the whole sweep (each job's configuration is
    # validated by the callbacks, so that a bad job stops the sweep before any job runs).
    assert counts["sweep check_store"] == 1 and counts["sweep open train_x.npy"] == 1


def test_a_run_logs_its_test_predictions_once_scored(normalized, tmp_path):
    """test_predictions.csv holds one row per test image, in the test split's order, and its accuracy is the
    run's test_acc: what the report pairs runs on (McNemar) is what the run recorded."""
    outcome = train(normalized, tmp_path / "out")
    labels, logits = read_predictions(tmp_path / "out" / TEST_PREDICTIONS)
    test_y = np.load(Path(normalized.paths.normalized) / "test_y.npy")
    assert np.array_equal(labels, test_y.astype(np.int64))
    assert correct(labels, logits).mean() == pytest.approx(outcome["test_acc"], abs=1e-6)
    client = MlflowClient(normalized.tracking.uri)
    assert TEST_PREDICTIONS in {a.path for a in client.list_artifacts(outcome["run_id"])}
