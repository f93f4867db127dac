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
    """`python -m pipeline.server` as a user starts it, in its own process group (mlflow runs uvicorn
    as a child); a tracking-only server: no job-execution workers."""
    command = [
        sys.executable,
        "-m",
        "pipeline.server",
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
        f"optim.epochs={EPOCHS}",
        "optim.batch_size=1",
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
