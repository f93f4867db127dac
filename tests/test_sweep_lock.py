"""One process at a time runs a sweep (pipeline/launch/sweep_lock.py): the lock itself, a resume
refused while another process holds it, and two real resumes of one sweep started together (issue 30)."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path

import pytest
from mlflow import MlflowClient

from pipeline.config.errors import SweepLocked
from pipeline.launch import resume, sweep_lock
from pipeline.tracking.sweep_runs import PARENT_TAG, SWEEP_FILE
from tests.conftest import REPO
from tests.test_resume import recorded_sweep, sweep_config
from tests.test_sweep import synthetic_normalized

HOLD = (
    "import sys, time; from pathlib import Path; from pipeline.launch import sweep_lock; "
    "lock = sweep_lock.hold(Path(sys.argv[1])); print('held', flush=True); time.sleep(600)"
)


def holding(directory) -> subprocess.Popen:
    """Another process, holding the sweep's lock in `directory` until it is killed."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(directory)], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout.readline() == "held\n"
    return process


def test_the_lock_is_held_by_one_process_until_it_ends_even_by_kill_9(tmp_path):
    other = holding(tmp_path / "sweep")
    try:
        with pytest.raises(SweepLocked) as held:
            sweep_lock.hold(tmp_path / "sweep")
        assert held.value.pid == other.pid
    finally:
        other.kill()
        other.wait()
    lock = sweep_lock.hold(tmp_path / "sweep")  # the OS released it with its process
    assert (tmp_path / "sweep" / sweep_lock.LOCK_FILE).read_text() == f"{os.getpid()}\n"
    with pytest.raises(SweepLocked) as held:  # a second holder in this process is refused too
        sweep_lock.hold(tmp_path / "sweep")
    assert held.value.pid == os.getpid()
    lock.close()
    sweep_lock.hold(tmp_path / "sweep").close()


def test_a_resume_of_a_sweep_whose_lock_another_process_holds_is_refused_and_changes_nothing(tmp_path, capsys):
    from pipeline.tracking import lifecycle

    config, cfg = sweep_config(tmp_path, "fit.epochs=3", "hydra.sweeper.resume=latest")
    client = MlflowClient(cfg.tracking.uri)
    dead = {**lifecycle.process_tags(), lifecycle.PID_TAG: "999999999"}  # its tags say the sweep's process died
    parent, child = recorded_sweep(client, config, cfg, dead, tmp_path / "first")
    other = holding(tmp_path / "first")  # but a process runs it: the sweep itself, or a resume reopening it
    capsys.readouterr()  # MLflow's lines as it made the store
    try:
        with pytest.raises(SystemExit) as refused:
            resume.sweep_to_resume(config, cfg)
    finally:
        other.kill()
        other.wait()
    assert refused.value.code == 1
    assert capsys.readouterr().err == (
        f"error: hydra.sweeper.resume=latest: sweep first (parent run {parent.info.run_id}) is still running "
        f"(process {other.pid}); let it end or stop it first\n"
    )
    assert client.get_run(parent.info.run_id).info.status == "RUNNING"  # nothing ended, nothing reopened
    assert client.get_run(child.info.run_id).info.status == "RUNNING"
    assert client.get_run(parent.info.run_id).data.tags == parent.data.tags


def started(cwd, name: str, *overrides: str) -> subprocess.Popen:
    """`python -m pipeline.train -m ...` in its own session; its output in name.out and name.err."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["PYTHONPATH"] = str(REPO)
    with open(cwd / f"{name}.out", "w") as out, open(cwd / f"{name}.err", "w") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "pipeline.train", "-m", *overrides],
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )


def killed_after_it_started(process: subprocess.Popen, sweep_dir) -> str:
    """`kill -9` of a sweep once its parent run exists; returns the parent run's id."""
    deadline = time.monotonic() + 300
    while not (sweep_dir / SWEEP_FILE).is_file():
        assert process.poll() is None and time.monotonic() < deadline, (sweep_dir.parent / "first.err").read_text()
        time.sleep(0.2)
    assert (sweep_dir / sweep_lock.LOCK_FILE).read_text() == f"{process.pid}\n"  # the sweep holds its lock
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    return json.loads((sweep_dir / SWEEP_FILE).read_text())["parent_run_id"]


def has_open(pid: int, path) -> bool:
    """Whether process pid has the file `path` open (Linux: /proc/<pid>/fd)."""
    for fd in Path(f"/proc/{pid}/fd").glob("*"):
        with suppress(OSError):  # closed meanwhile
            if os.readlink(fd) == str(path):
                return True
    return False


def two_resumes_at_once(tmp_path, *command: str) -> tuple[subprocess.Popen, subprocess.Popen]:
    """Two resumes of the sweep `command` started together, each with its own directory. So that both
    certainly overlap, this test holds the MLflow store's write lock (readers go on) until one of them
    has exited, or for 12 s after one opened the store (MLflow gives up a write after 20 s): the one
    that goes on waits there to reopen the parent run while the other reads whether the sweep runs."""
    db = tmp_path / "mlflow.db"
    store = sqlite3.connect(db, isolation_level=None)
    store.execute("BEGIN IMMEDIATE")
    resumes = [started(tmp_path, name, *command, f"hydra.sweep.dir={tmp_path}/{name}") for name in ("r1", "r2")]
    try:
        opened, deadline = None, time.monotonic() + 300
        while all(process.poll() is None for process in resumes) and time.monotonic() < deadline:
            if opened is None and any(has_open(process.pid, db) for process in resumes):
                opened = time.monotonic()
            if opened is not None and time.monotonic() > opened + 12:
                break
            time.sleep(0.1)
        store.execute("ROLLBACK")
        store.close()
        for process in resumes:
            process.wait(600)
    finally:
        for process in resumes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
    return resumes


def check_one_resumed_and_one_was_refused(tmp_path, resumes, parent_id: str, n: int) -> list:
    """Exactly one resume ran; the other was refused in one line naming it, left no directory and
    counted nothing: the parent FINISHED with n FINISHED children. Returns them."""
    codes = sorted(process.returncode for process in resumes)
    errors = {process.pid: (tmp_path / f"r{i}.err").read_text() for i, process in enumerate(resumes, 1)}
    assert codes == [0, 1], errors
    ran, refused = sorted(resumes, key=lambda process: process.returncode)
    name = f"r{resumes.index(refused) + 1}"
    assert errors[refused.pid].splitlines() == [
        f"error: hydra.sweeper.resume=latest: sweep first (parent run {parent_id}) is still running "
        f"(process {ran.pid}); let it end or stop it first"
    ]
    assert not (tmp_path / name).exists()
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    parent = client.get_run(parent_id)
    children = client.search_runs(["1"], f"tags.`{PARENT_TAG}` = '{parent_id}'")
    finished = [run for run in children if run.info.status == "FINISHED"]
    assert parent.info.status == "FINISHED" and len(finished) == n
    assert parent.data.tags["sweep.children_finished"] == str(n)
    assert parent.data.tags[resume.RESUMES_TAG] == str(tmp_path / f"r{resumes.index(ran) + 1}")  # one resume
    assert f"of {n} finished runs" in (tmp_path / f"r{resumes.index(ran) + 1}.out").read_text()
    assert {run.info.status for run in children} <= {"FINISHED", "KILLED"}  # the killed sweep's job, if any
    return finished


def common(tmp_path) -> list[str]:
    data = synthetic_normalized(tmp_path)
    return [f"paths.normalized={data}", f"tracking.uri=sqlite:///{tmp_path}/mlflow.db", "trainer.accelerator=cpu"]


@pytest.mark.slow
def test_two_resumes_of_a_grid_sweep_started_together_one_runs_the_rest_the_other_is_refused(tmp_path):
    grid = ["optim.lr=0.25,0.5,1.0", "fit.epochs=1", *common(tmp_path)]
    parent_id = killed_after_it_started(
        started(tmp_path, "first", *grid, f"hydra.sweep.dir={tmp_path}/first"), tmp_path / "first"
    )
    resumes = two_resumes_at_once(tmp_path, *grid, "hydra.sweeper.resume=latest")
    finished = check_one_resumed_and_one_was_refused(tmp_path, resumes, parent_id, 3)
    assert sorted(run.info.run_name for run in finished) == ["optim.lr=0.25", "optim.lr=0.5", "optim.lr=1.0"]


@pytest.mark.slow
def test_two_resumes_of_an_optuna_search_started_together_one_runs_the_rest_the_other_is_refused(tmp_path):
    search = ["hparams_search=linear_optuna", "fit.epochs=1", *common(tmp_path)]
    first = started(tmp_path, "first", *search, "hydra.sweeper.n_trials=2", f"hydra.sweep.dir={tmp_path}/first")
    parent_id = killed_after_it_started(first, tmp_path / "first")
    resumes = two_resumes_at_once(tmp_path, *search, "hydra.sweeper.n_trials=3", "hydra.sweeper.resume=latest")
    check_one_resumed_and_one_was_refused(tmp_path, resumes, parent_id, 3)
