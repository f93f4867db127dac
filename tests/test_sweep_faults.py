"""Sweeps that end cleanly whatever ends them: SIGTERM / SIGINT to a real sweep (in-process and
joblib launchers) and `kill -9` of a joblib sweep's main process, checked on the processes
(psutil) and on the runs in the store."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest
from mlflow import MlflowClient

from pipeline.tracking import lifecycle
from pipeline.tracking.sweep_runs import PARENT_TAG, SWEEP_FILE
from tests.conftest import REPO
from tests.test_sweep import synthetic_normalized

pytestmark = pytest.mark.slow
ENDLESS = "fit.epochs=1000000"  # jobs that run until something stops them
JOBLIB = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return synthetic_normalized(tmp_path_factory.mktemp("data"))


def start_sweep(root: Path, data: Path, *launcher: str) -> subprocess.Popen:
    """`python -m pipeline.train -m seed=1,2,3,4 ...` of endless jobs into root/mlflow.db."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["PYTHONPATH"] = str(REPO)
    cmd = [
        sys.executable,
        "-m",
        "pipeline.train",
        "-m",
        "seed=1,2,3,4",
        *launcher,
        ENDLESS,
        f"paths.normalized={data}",
        "trainer.accelerator=cpu",
        f"tracking.uri=sqlite:///{root}/mlflow.db",
        f"hydra.sweep.dir={root}/sweep",
    ]
    with open(root / "out.txt", "w") as out:
        # its own session: a test that fails still finds (and ends) whatever the sweep started
        return subprocess.Popen(cmd, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def wait_for_training_children(root: Path, count: int, timeout_s: float = 900) -> list:
    """Wait until `count` child runs have logged an epoch; returns the parent's children."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        time.sleep(1)
        if not (root / "sweep" / SWEEP_FILE).is_file():
            continue
        published = json.loads((root / "sweep" / SWEEP_FILE).read_text())
        client = MlflowClient(f"sqlite:///{root}/mlflow.db")
        runs = client.search_runs([published["experiment_id"]], f"tags.`{PARENT_TAG}` = '{published['parent_run_id']}'")
        training = [r for r in runs if client.get_metric_history(r.info.run_id, "train_loss")]
        if len(training) >= count:
            return runs
    raise TimeoutError(f"no {count} training job(s) in {root}: {(root / 'out.txt').read_text()[-3000:]}")


def runs_of(root: Path) -> tuple:
    """(parent, children) of the sweep in root."""
    published = json.loads((root / "sweep" / SWEEP_FILE).read_text())
    client = MlflowClient(f"sqlite:///{root}/mlflow.db")
    runs = client.search_runs([published["experiment_id"]])
    [parent] = [run for run in runs if run.info.run_id == published["parent_run_id"]]
    return parent, [run for run in runs if run.data.tags.get(PARENT_TAG) == parent.info.run_id]


def assert_no_process_survives(processes: list[psutil.Process], timeout_s: float = 10) -> None:
    _, alive = psutil.wait_procs(processes, timeout=timeout_s)
    for process in alive:
        process.kill()
    assert not alive, [" ".join(p.cmdline()[:6]) for p in alive if p.is_running()]


def server_is_down(root: Path) -> bool:
    url = json.loads((root / "sweep" / SWEEP_FILE).read_text())["tracking_uri"]
    if not url.startswith("http"):
        return True
    try:
        urllib.request.urlopen(url + "/health", timeout=5)
    except OSError:
        return True
    return False


@pytest.mark.parametrize("name, signum", [("SIGTERM", signal.SIGTERM), ("SIGINT", signal.SIGINT)])
@pytest.mark.parametrize(
    "launcher", [[], [*JOBLIB, "hydra.callbacks.mlflow_sweep.server=true"]], ids=["basic", "joblib-server"]
)
def test_a_signal_ends_the_sweep_its_running_jobs_and_its_server(tmp_path, data, launcher, name, signum):
    proc = start_sweep(tmp_path, data, *launcher)
    try:
        wait_for_training_children(tmp_path, 2 if launcher else 1)
        processes = psutil.Process(proc.pid).children(recursive=True)
        proc.send_signal(signum)  # to the sweep's main process only, as `kill -TERM <pid>` does
        assert proc.wait(120) == 128 + signum, (tmp_path / "out.txt").read_text()[-3000:]
        assert_no_process_survives(processes)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert server_is_down(tmp_path)
    parent, children = runs_of(tmp_path)
    assert parent.info.status == "KILLED" and parent.data.tags[lifecycle.END_REASON_TAG] == f"interrupted by {name}"
    assert children and all(child.info.status == "KILLED" for child in children)
    for child in children:  # each running job ended its own run, or the sweep ended it for the job
        assert child.data.tags[lifecycle.END_REASON_TAG] in (f"interrupted by {name}", f"sweep interrupted by {name}")


def test_kill_9_of_a_joblib_sweep_leaves_no_process_and_mark_orphans_ends_its_runs_killed(tmp_path, data):
    proc = start_sweep(tmp_path, data, *JOBLIB, "hydra.callbacks.mlflow_sweep.server=true")
    try:
        running = wait_for_training_children(tmp_path, 2)
        processes = psutil.Process(proc.pid).children(recursive=True)  # the server and the joblib workers
        assert len(processes) >= 3
        proc.kill()
        assert proc.wait(30) == -signal.SIGKILL
        assert_no_process_survives(processes)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert server_is_down(tmp_path)
    parent, children = runs_of(tmp_path)
    assert parent.info.status == "RUNNING"  # nothing runs on SIGKILL: the runs wait for mark-orphans

    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.tracking", "mark-orphans", f"sqlite:///{tmp_path}/mlflow.db"],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    parent, children = runs_of(tmp_path)
    assert f"mark-orphans: {1 + len(children)} run(s) marked KILLED" in done.stdout
    assert {child.info.run_id for child in children} >= {run.info.run_id for run in running}
    for run in [parent, *children]:
        assert run.info.status == "KILLED"
        assert run.data.tags[lifecycle.END_REASON_TAG].startswith("orphaned: process")


def test_the_sweep_server_tracks_only_and_ends_when_the_process_that_started_it_is_killed(tmp_path):
    """Two processes (`mlflow server` and uvicorn, one worker), no job-execution workers (huey),
    gone within seconds of `kill -9` of the process that started them."""
    starter = (
        "import sys, time; from pipeline.tracking.server import TrackingServer; "
        "server = TrackingServer(sys.argv[1], sys.argv[2], sys.argv[3], serve_artifacts=False); "
        "print(server.start(), flush=True); time.sleep(600)"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    proc = subprocess.Popen(
        [sys.executable, "-c", starter, f"sqlite:///{tmp_path}/m.db", tmp_path / "mlruns", tmp_path / "server.log"],
        env={**env, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), (tmp_path / "server.log").read_text()[-2000:]
        processes = psutil.Process(proc.pid).children(recursive=True)
        commands = [" ".join(p.cmdline()) for p in processes]
        assert len(processes) == 2 and "mlflow server" in commands[0] and "uvicorn" in commands[1], commands
        assert "--workers 1" in commands[1] and not any("huey" in c for c in commands)
        proc.kill()
        proc.wait(30)
        assert_no_process_survives(processes, timeout_s=15)
    finally:
        proc.kill()
    with pytest.raises(OSError):
        urllib.request.urlopen(url + "/health", timeout=5)


# `python -m pipeline.train` with the registry refusing every model: the sweep's end meets a registry failure.
REGISTRY_REFUSES = (
    "import runpy; from mlflow.exceptions import MlflowException; from pipeline.tracking import registry\n"
    "def refuse(*args, **kwargs): raise MlflowException('injected: the registry is read-only')\n"
    "registry.register_and_gate = refuse\n"
    "runpy.run_module('pipeline.train', run_name='__main__')"
)


def test_a_registry_failure_at_the_sweeps_end_fails_the_parent_and_the_command_in_one_line(tmp_path, data):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            REGISTRY_REFUSES,
            "-m",
            "seed=1",
            "fit.epochs=1",
            f"paths.normalized={data}",
            "trainer.accelerator=cpu",
            f"tracking.uri=sqlite:///{tmp_path}/mlflow.db",
            f"hydra.sweep.dir={tmp_path}/sweep",
        ],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-3000:]
    assert "Traceback" not in done.stderr and "UserWarning" not in done.stderr, done.stderr[-3000:]
    [line] = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    parent, [child] = runs_of(tmp_path)
    assert child.info.status == "FINISHED" and parent.data.tags["best_run_id"] == child.info.run_id
    why = (
        f"the best run's model ({child.info.run_name}) was not registered as threes-sevens-3-7: "
        "MlflowException: injected: the registry is read-only"
    )
    assert parent.info.status == "FAILED" and parent.data.tags[lifecycle.END_REASON_TAG] == why
    store_and_parent = f"sqlite:///{tmp_path}/mlflow.db (parent run {parent.info.run_id})"
    assert line == f"error: sweep: its runs are recorded in {store_and_parent}, but {why}"
