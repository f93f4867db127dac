"""A shared MLflow tracking server on PostgreSQL, as a team would run it: a 4-job parallel sweep
(Hydra's joblib launcher) records into it, and every run arrives complete."""

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psycopg2
import pytest
from mlflow import MlflowClient

from pipeline.tracking.server import free_port
from tests.conftest import REPO
from tests.postgres import postgres_cluster

pytestmark = [pytest.mark.slow, pytest.mark.needs_postgres]
LEARNING_RATES = ["0.25", "0.5", "1.0", "2.0"]


@pytest.fixture
def postgres():
    """A throwaway PostgreSQL cluster on 127.0.0.1 (tests/postgres.py); yields its port."""
    with postgres_cluster() as port:
        yield port


@pytest.fixture
def mlflow_server(postgres, tmp_path):
    """`mlflow server` on 127.0.0.1 with PostgreSQL behind it and artifacts served from a directory."""
    port = free_port()
    log = open(tmp_path / "mlflow-server.log", "w")  # noqa: SIM115 - the server writes it until the test ends
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "2",
            "--backend-store-uri",
            f"postgresql+psycopg2://postgres@127.0.0.1:{postgres}/mlflow",
            "--artifacts-destination",
            str(tmp_path / "artifacts"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its workers in one process group
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"},
    )
    try:
        deadline = time.monotonic() + 180  # it creates its tables in PostgreSQL first
        while True:
            assert server.poll() is None, (tmp_path / "mlflow-server.log").read_text()[-3000:]
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except OSError:
                assert time.monotonic() < deadline, "mlflow server did not come up"
                time.sleep(0.5)
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=5)
        except subprocess.TimeoutExpired:  # a graceful stop waits for idle connections: not needed here
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


def test_parallel_sweep_records_every_run_on_a_postgresql_tracking_server(
    normalized, mlflow_server, postgres, tmp_path
):
    cfg = normalized
    epochs = 2
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline.train",
            "-m",
            "hydra/launcher=joblib",
            "hydra.launcher.n_jobs=4",
            f"optim.lr={','.join(LEARNING_RATES)}",
            f"fit.epochs={epochs}",
            "trainer.accelerator=cpu",
            f"paths.normalized={cfg.paths.normalized}",
            f"tracking.uri={mlflow_server}",
            "tracking.log_model=false",
            f"hydra.sweep.dir={tmp_path}/sweep",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    client = MlflowClient(mlflow_server)
    experiment = client.get_experiment_by_name(cfg.tracking.experiment)
    runs = client.search_runs([experiment.experiment_id])
    parents = {run.data.tags.get("mlflow.parentRunId") for run in runs}
    jobs = [run for run in runs if run.info.run_id not in parents]  # a sweep may add a parent run
    assert sorted(run.data.params["optim.lr"] for run in jobs) == LEARNING_RATES
    for run in jobs:
        assert run.info.status == "FINISHED"
        assert run.info.artifact_uri.startswith("mlflow-artifacts:")  # through the server's artifact proxy
        for metric in ("train_loss", "val_loss", "val_acc", "bias"):
            assert len(client.get_metric_history(run.info.run_id, metric)) == epochs, metric
        assert {"final_val_acc", "final_val_acc_first", "final_val_acc_second"} <= set(run.data.metrics)
        assert {"weights.npy", "weights.png", "history.csv"} <= {a.path for a in client.list_artifacts(run.info.run_id)}
        assert Path(client.download_artifacts(run.info.run_id, "weights.npy", str(tmp_path))).stat().st_size > 784 * 4

    # The records really sit in PostgreSQL, and the files in the artifact store.
    with (
        psycopg2.connect(host="127.0.0.1", port=postgres, user="postgres", dbname="mlflow") as db,
        db.cursor() as cursor,
    ):
        cursor.execute("SELECT run_uuid FROM runs WHERE status = 'FINISHED'")
        assert {run.info.run_id for run in jobs} <= {row[0] for row in cursor.fetchall()}
    assert len(list((tmp_path / "artifacts").rglob("weights.npy"))) == len(LEARNING_RATES)
