"""Faults met by the real command line, in real processes: bad configuration, a diverging loss,
SIGINT / SIGTERM / SIGKILL during training, eight trainings writing to one sqlite store at once,
and the MLflow server the project starts."""

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest
from mlflow import MlflowClient

from pipeline.tracking import lifecycle, store
from pipeline.tracking.server import running_server
from pipeline.train import train
from tests.conftest import REPO, make_config, write_idx_dir

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """Normalized synthetic digits, shared by the tests of this module (read only)."""
    from pipeline.fetch import fetch
    from pipeline.filter import filter_digits
    from pipeline.normalize import normalize

    tmp = tmp_path_factory.mktemp("data")
    write_idx_dir(tmp / "idx")
    cfg = make_config(tmp)
    fetch(cfg), filter_digits(cfg), normalize(cfg)
    return Path(cfg.paths.normalized)


def start_train(cwd: Path, data: Path, *overrides: str) -> subprocess.Popen:
    """`python -m pipeline.train` in cwd (so its default store is cwd/mlflow.db); output in cwd/log.txt."""
    cwd.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["PYTHONPATH"] = str(REPO)  # this checkout's pipeline/, whatever is installed
    cmd = [
        sys.executable,
        "-m",
        "pipeline.train",
        f"paths.normalized={data}",
        "trainer.accelerator=cpu",
        "fit.epochs=3",
        f"hydra.run.dir={cwd}/out",
        *overrides,
    ]
    with open(cwd / "log.txt", "w") as out, open(cwd / "err.txt", "w") as err:
        return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=err)


def finish(proc: subprocess.Popen, timeout: float = 300) -> int:
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise


BAD_OVERRIDES = {
    "+optim.lrr=1": "error: optim.lrr=1: optimizer torch.optim.SGD takes no 'lrr'",
    "+optim.momentun=0.9": "error: optim.momentun=0.9: optimizer torch.optim.SGD takes no 'momentun'",
    "+optim.betas=[0.9,0.99]": "error: optim.betas=[0.9, 0.99]: optimizer torch.optim.SGD takes no 'betas'",
    "optim.lr=fast": "error: optim.lr=fast: expected a number > 0",
    "optim.lr=0": "error: optim.lr=0.0: expected a number > 0",
    "fit.batch_size=0": "error: fit.batch_size=0: expected an integer >= 1",
    "fit.epochs=0": "error: fit.epochs=0: expected an integer >= 1",
    "model=resnet": "error: In 'config': Could not find 'model/resnet'; available: "
    "cnn, fastbook, linear, linear_no_bias, mlp, pixel_similarity",
    "optim=adagrad": "error: In 'config': Could not find 'optim/adagrad'; available: adam, rmsprop, sgd",
}


def test_bad_config_is_one_line_and_no_run(tmp_path, data):
    procs = {o: start_train(tmp_path / str(i), data, o) for i, o in enumerate(BAD_OVERRIDES)}  # all at once
    for i, (override, proc) in enumerate(procs.items()):
        cwd = tmp_path / str(i)
        assert finish(proc) == 1, override
        assert (cwd / "err.txt").read_text().splitlines() == [BAD_OVERRIDES[override]]
        assert not (cwd / "mlflow.db").exists() and not (cwd / "mlruns").exists(), override
        assert not (cwd / "out").exists(), override  # Hydra's run directory: refused before it is made


def test_a_grid_sweep_with_one_bad_job_runs_no_job_and_writes_nothing(tmp_path, data):
    cmd = [
        sys.executable,
        "-m",
        "pipeline.train",
        "-m",
        f"paths.normalized={data}",
        "trainer.accelerator=cpu",
        "fit.epochs=1",
        "optim.lr=0.5,0",
        "model.bias=true,false",
        "hydra/launcher=joblib",
    ]
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}, "PYTHONPATH": str(REPO)}
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "error: optim.lr=0.0: expected a number > 0 (job #2: optim.lr=0 model.bias=True); no job was started"
    ]
    assert sorted(path.name for path in tmp_path.iterdir()) == []  # no outputs/, mlflow.db or mlruns/


def test_diverging_training_exits_nonzero_with_a_failed_run_and_no_model(tmp_path, data):
    assert finish(start_train(tmp_path, data, "optim.lr=1e38")) == 1
    assert "error: diverged at epoch" in (tmp_path / "err.txt").read_text()
    [run] = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").search_runs(["1"])
    assert run.info.status == "FAILED" and run.data.tags[lifecycle.END_REASON_TAG].startswith("Diverged")
    assert not {"model.ckpt", "weights.npy", "history.csv"} & {p.name for p in (tmp_path / "out").iterdir()}


def wait_for_training(db: Path, timeout: float = 240) -> str:
    """The run id, once the run in db has logged an epoch's loss."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if db.exists():  # opened under the store lock: the trainer may be creating the tables
            client = store.open_client(f"sqlite:///{db}")
            runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
            if runs and client.get_metric_history(runs[0].info.run_id, "train_loss"):
                return runs[0].info.run_id
        time.sleep(0.5)
    raise TimeoutError(f"no training in {db}")


def test_signals_end_the_run_killed_and_kill_9_leaves_an_orphan_that_the_next_run_marks(tmp_path, data):
    signals = {"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM, "SIGKILL": signal.SIGKILL}
    procs = {name: start_train(tmp_path / name, data, "fit.epochs=1000000") for name in signals}
    for name, proc in procs.items():
        run_id = wait_for_training(tmp_path / name / "mlflow.db")
        proc.send_signal(signals[name])
        assert finish(proc, 120) == (-9 if name == "SIGKILL" else 128 + signals[name]), name
        run = MlflowClient(f"sqlite:///{tmp_path / name}/mlflow.db").get_run(run_id)
        if name == "SIGKILL":  # nothing can run on SIGKILL: the run stays RUNNING until the next start
            assert run.info.status == "RUNNING"
            orphan = run_id
        else:
            assert run.info.status == "KILLED" and run.data.tags[lifecycle.END_REASON_TAG] == f"interrupted by {name}"
            assert (
                f"interrupted by {name}; MLflow run {run_id} marked KILLED" in (tmp_path / name / "err.txt").read_text()
            )
        assert not (tmp_path / name / "out/model.ckpt").exists()

    uri = f"sqlite:///{tmp_path}/SIGKILL/mlflow.db"
    results = train(make_config(tmp_path, [f"paths.normalized={data}", f"tracking.uri={uri}"]), tmp_path / "next")
    client = MlflowClient(uri)
    assert client.get_run(results["run_id"]).info.status == "FINISHED"
    orphaned = client.get_run(orphan)
    assert orphaned.info.status == "KILLED"
    assert orphaned.data.tags[lifecycle.END_REASON_TAG].startswith("orphaned: process")


def test_eight_concurrent_trainings_on_the_default_sqlite_store_all_complete(tmp_path, data):
    procs = [start_train(tmp_path, data, f"seed={seed}", f"hydra.run.dir={tmp_path}/out{seed}") for seed in range(8)]
    codes = [finish(proc, 600) for proc in procs]
    assert codes == [0] * 8, (tmp_path / "err.txt").read_text()[-3000:]
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")  # sqlite:///mlflow.db, relative to where they ran
    runs = client.search_runs([client.get_experiment_by_name("threes-sevens").experiment_id])
    assert len(runs) == 8 and {r.info.status for r in runs} == {"FINISHED"}
    assert sorted(r.data.params["seed"] for r in runs) == [str(s) for s in range(8)]
    for run in runs:
        for metric in ("train_loss", "val_loss", "val_acc", "bias"):
            assert len(client.get_metric_history(run.info.run_id, metric)) == 3, metric
        assert "final_val_acc" in run.data.metrics
        assert {"weights.npy", "history.csv"} <= {a.path for a in client.list_artifacts(run.info.run_id)}


def listening_addresses(pid: int) -> set[str]:
    processes = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    return {c.laddr.ip for p in processes for c in p.net_connections("tcp") if c.status == psutil.CONN_LISTEN}


def get_status(url: str, host: str) -> int:
    request = urllib.request.Request(f"{url}/api/2.0/mlflow/experiments/search?max_results=1", headers={"Host": host})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


def test_server_binds_loopback_checks_host_and_credentials_stay_out_of_runs(tmp_path, data, monkeypatch):
    secret = "s3cr3t-pw"
    with running_server(f"sqlite:///{tmp_path}/server.db", tmp_path / "artifacts") as url:
        port = int(url.rsplit(":", 1)[1])
        server = next(
            p
            for p in psutil.process_iter(["cmdline"])
            if p.info["cmdline"]
            and "--port" in p.info["cmdline"]
            and str(port) in p.info["cmdline"]
            and "server" in p.info["cmdline"]
        )
        assert listening_addresses(server.pid) == {"127.0.0.1"}
        assert get_status(url, f"127.0.0.1:{port}") == 200
        assert get_status(url, f"attacker.example:{port}") == 403  # a DNS-rebinding page's Host header

        # A tracking URI with credentials and a secret in the environment: neither reaches the run.
        monkeypatch.setenv("MLFLOW_TRACKING_URI", url.replace("://", f"://alice:{secret}@"))
        monkeypatch.setenv("SECRET_API_KEY", secret)
        results = train(make_config(tmp_path, [f"paths.normalized={data}", "tracking.uri=null"]), tmp_path / "out")
        run = MlflowClient(url).get_run(results["run_id"])
        assert run.info.status == "FINISHED"
        recorded = {**run.data.params, **run.data.tags, "run_name": run.info.run_name}
        assert [k for k, v in recorded.items() if secret in v] == []
