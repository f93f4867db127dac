"""A tracking server stopped in the middle of a training and started again on the same port and
store: the training does not fail, and the run holds every metric point and artifact."""

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from mlflow import MlflowClient

from pipeline.tracking.server import free_port
from tests.conftest import REPO, make_config, write_idx_dir

pytestmark = pytest.mark.slow
EPOCHS = 300  # batches of one image: a training of ~30 s or more here, long enough to be cut in two
OUTAGE_S = 10


def env() -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}, "PYTHONPATH": str(REPO)}


def start_server(port: int, store: Path, log: Path) -> subprocess.Popen:
    """`python -m pipeline.server --no-auth` as one user starts it, in its own process group (mlflow
    runs uvicorn as a child); a tracking-only server: no job-execution workers."""
    command = [
        sys.executable,
        "-m",
        "pipeline.server",
        "--no-auth",
        "--port",
        str(port),
        "--backend-store-uri",
        f"sqlite:///{store}",
        "--artifacts-destination",
        str(store.parent / "artifacts"),
    ]
    with open(log, "ab") as out:
        server = subprocess.Popen(
            command,
            cwd=store.parent,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**env(), "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert server.poll() is None, log.read_text()[-2000:]
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                return server
        except OSError:
            time.sleep(0.5)
    stop(server)
    raise TimeoutError(f"mlflow server on port {port} not answering; see {log}")


def stop(server: subprocess.Popen) -> None:
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


def first_epochs(client: MlflowClient, training: subprocess.Popen, log: Path) -> tuple[str, int]:
    """The training's run id and how many epochs of train_loss the server holds, once it holds some."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        assert training.poll() is None, log.read_text()[-3000:]
        experiment = client.get_experiment_by_name("threes-sevens")
        runs = client.search_runs([experiment.experiment_id]) if experiment else []
        if runs:
            logged = len(client.get_metric_history(runs[0].info.run_id, "train_loss"))
            if logged:
                return runs[0].info.run_id, logged
        time.sleep(0.2)
    raise TimeoutError("no epoch logged")


@pytest.fixture
def data(tmp_path) -> Path:
    from pipeline.fetch import fetch
    from pipeline.filter import filter_digits
    from pipeline.normalize import normalize

    write_idx_dir(tmp_path / "idx")
    cfg = make_config(tmp_path)
    fetch(cfg), filter_digits(cfg), normalize(cfg)
    return Path(cfg.paths.normalized)


def test_a_server_restarted_during_training_loses_no_metric_point_or_artifact(tmp_path, data):
    port, store, log = free_port(), tmp_path / "server" / "mlflow.db", tmp_path / "server.log"
    store.parent.mkdir()
    server = start_server(port, store, log)
    uri = f"http://127.0.0.1:{port}"
    err = tmp_path / "train-err.txt"
    command = [
        sys.executable,
        "-m",
        "pipeline.train",
        f"paths.normalized={data}",
        f"tracking.uri={uri}",
        f"fit.epochs={EPOCHS}",
        "fit.batch_size=1",
        "trainer.accelerator=cpu",
        # the server's start-up on a loaded test machine can take most of a minute: retry for longer
        "tracking.outage_s=300",
        f"hydra.run.dir={tmp_path}/out",
    ]
    with open(err, "w") as stderr:
        training = subprocess.Popen(command, cwd=tmp_path, env=env(), stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        client = MlflowClient(uri)
        run_id, logged_before = first_epochs(client, training, err)
        stop(server)
        time.sleep(OUTAGE_S)
        training_outlived_the_outage = training.poll() is None
        server = start_server(port, store, log)
        assert training.wait(600) == 0, err.read_text()[-3000:]
    finally:
        training.kill()
        stop(server)

    assert logged_before < EPOCHS and training_outlived_the_outage  # the server went away mid-training
    server = start_server(port, store, log)  # read the store as it was left
    try:
        client = MlflowClient(uri)
        run = client.get_run(run_id)
        assert run.info.status == "FINISHED"
        for metric in ("train_loss", "val_loss", "val_acc", "bias"):
            history = client.get_metric_history(run_id, metric)
            assert len(history) == len({m.step for m in history}) == EPOCHS, metric  # each epoch, once
        assert "final_val_acc" in run.data.metrics
        artifacts = {a.path for a in client.list_artifacts(run_id)}
        assert {"history.csv", "weights.npy", "weights.png"} <= artifacts
        [model] = client.search_logged_models([run.info.experiment_id], f"source_run_id = '{run_id}'")
        assert model.name == "model" and model.status.name == "READY"
    finally:
        stop(server)


# The training's own process stops the server once the model is written (model/outputs.py), before
# any record of the run's end: the store goes away between the fit and the records.
STOP_AFTER_OUTPUTS = """
import os, runpy, signal, socket, time
import pipeline.model.outputs as outputs

write_outputs = outputs.write_outputs

def write_then_stop_the_server(*args, **kwargs):
    written = write_outputs(*args, **kwargs)
    os.killpg(int(os.environ["SERVER_PGID"]), signal.SIGTERM)
    while True:  # until nothing answers on the server's port
        try:
            socket.create_connection(("127.0.0.1", int(os.environ["SERVER_PORT"])), timeout=1).close()
            time.sleep(0.2)
        except OSError:
            return written

outputs.write_outputs = write_then_stop_the_server
runpy.run_module("pipeline.train", run_name="__main__", alter_sys=True)  # python -m pipeline.train ARGS
"""


def test_a_model_whose_store_stays_away_is_kept_and_recorded_by_one_command_later(tmp_path, data):
    port, store, log = free_port(), tmp_path / "server" / "mlflow.db", tmp_path / "server.log"
    store.parent.mkdir()
    server = start_server(port, store, log)
    out = tmp_path / "out"
    epochs = 3
    try:
        training = subprocess.run(
            [
                sys.executable,
                "-c",
                STOP_AFTER_OUTPUTS,
                f"paths.normalized={data}",
                f"tracking.uri=http://127.0.0.1:{port}",
                f"fit.epochs={epochs}",
                "trainer.accelerator=cpu",
                "tracking.outage_s=1",  # MLflow's retries give up after 2 s
                f"hydra.run.dir={out}",
            ],
            cwd=tmp_path,
            env={**env(), "SERVER_PGID": str(server.pid), "SERVER_PORT": str(port)},
            capture_output=True,
            text=True,
            timeout=600,
        )
    finally:
        stop(server)  # stopped already by the training, unless it failed first
    assert training.returncode == 1, training.stderr[-3000:]
    line = training.stderr.strip().splitlines()[-1]  # the last line, and no traceback or Hydra report before it
    assert "Traceback" not in training.stderr and "Error executing job" not in training.stderr
    assert line.startswith(f"error: the tracking server http://127.0.0.1:{port} was away for longer than ")
    assert f"tracking.outage_s=1 s after the training: the model is saved in {out}" in line
    command = line.split("once the server is back: ")[1]
    assert command == f"python -m pipeline.tracking record {out}"
    assert {"model.ckpt", "history.csv", "weights.npy", "unrecorded.json"} <= {p.name for p in out.iterdir()}

    server = start_server(port, store, log)
    try:
        recorded = subprocess.run(
            [sys.executable, *command.split()[1:]], cwd=tmp_path, env=env(), capture_output=True, text=True, timeout=600
        )
        assert recorded.returncode == 0, recorded.stderr[-3000:]
        client = MlflowClient(f"http://127.0.0.1:{port}")
        [run] = client.search_runs([client.get_experiment_by_name("threes-sevens").experiment_id])
        assert run.info.status == "FINISHED" and "end_reason" not in run.data.tags
        assert run.data.tags["recorded_later"] == f"by `python -m pipeline.tracking record` from {out}"
        for metric in ("train_loss", "val_loss", "val_acc", "bias"):  # logged during the fit, each epoch once
            assert len(client.get_metric_history(run.info.run_id, metric)) == epochs, metric
        assert {"final_val_acc", "fit_seconds", "n_parameters"} <= set(run.data.metrics)
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"history.csv", "weights.npy", "predictions.csv"} <= artifacts
        [model] = client.search_logged_models([run.info.experiment_id], f"source_run_id = '{run.info.run_id}'")
        assert model.status.name == "READY"
        assert client.get_model_version_by_alias("threes-sevens-3-7", "champion").run_id == run.info.run_id
        assert not (out / "unrecorded.json").exists()
    finally:
        stop(server)
