"""Resuming a sweep (pipeline/launch/resume.py and the grid sweeper): which sweep a resume names,
what makes its command another one, and a real grid sweep interrupted by SIGINT then resumed."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from mlflow import MlflowClient

from hydra_plugins.threes_sevens_grid import grid_sweeper
from pipeline.launch import resume
from pipeline.tracking.sweep_runs import PARENT_TAG, SWEEP_FILE, job_name
from tests.conftest import REPO
from tests.test_sweep import synthetic_normalized


def test_find_names_a_sweep_by_latest_its_name_or_its_parent_run_id(tmp_path):
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    experiment = client.create_experiment("e")
    first, second = (
        client.create_run(experiment, run_name=name, tags={resume.DIR_TAG: f"/sweeps/{name}"})
        for name in ("2026-01-01_10-00-00", "2026-01-02_10-00-00")
    )
    child = client.create_run(experiment, run_name="optim.lr=1", tags={PARENT_TAG: second.info.run_id})
    assert resume.find(client, experiment, "latest").info.run_id == second.info.run_id
    assert resume.find(client, experiment, "2026-01-01_10-00-00").info.run_id == first.info.run_id
    assert resume.find(client, experiment, first.info.run_id).info.run_id == first.info.run_id
    assert resume.find(client, experiment, child.info.run_id) is None  # a child is not a sweep
    assert resume.find(client, experiment, "2026-01-03_10-00-00") is None
    assert resume.find(client, client.create_experiment("other"), "latest") is None


def test_a_command_differs_by_its_overrides_search_space_or_pruner_not_by_its_parallelism():
    sweep = {
        "overrides": ["optim.lr=0.1,0.5", "fit.epochs=3"],
        "sweeper": {"_target_": "Optuna", "n_trials": 12, "n_jobs": 1, "resume": None, "params": {"seed": "0,1"}},
    }
    same = {
        "overrides": ["optim.lr=0.1,0.5", "fit.epochs=3"],
        "sweeper": {**sweep["sweeper"], "n_trials": 20, "n_jobs": 4, "resume": "latest"},
    }
    assert resume.differences(resume.comparable(sweep), resume.comparable(same)) == []
    other = {
        "overrides": ["optim.lr=0.1,0.7"],
        "sweeper": {**sweep["sweeper"], "pruner": {"_target_": "MedianPruner"}},
    }
    assert resume.differences(resume.comparable(sweep), resume.comparable(other)) == [
        "optim.lr=0.1,0.7 here, 0.1,0.5 in the sweep",
        "fit.epochs=(not given) here, 3 in the sweep",
        "hydra.sweeper.pruner._target_=MedianPruner here, (not given) in the sweep",
    ]


def test_the_grid_sweeper_has_its_own_name_and_leaves_hydras_basic_sweeper_alone():
    """The project's conf/ sweeps with the grid sweeper; `hydra/sweeper=basic` is still Hydra's own,
    for this app and for any other Hydra app of the environment (the plugin registers `grid` only)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.config_store import ConfigStore

    from pipeline.config.compose import CONF_DIR

    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        grid = compose("config", return_hydra_config=True).hydra
        basic = compose("config", overrides=["hydra/sweeper=basic"], return_hydra_config=True).hydra
        search = compose("config", overrides=["hparams_search=linear_optuna"], return_hydra_config=True).hydra
    assert grid.runtime.choices["hydra/sweeper"] == "grid" and "resume" in grid.sweeper
    assert grid.sweeper._target_ == "hydra_plugins.threes_sevens_grid.grid_sweeper.GridSweeper"
    assert basic.sweeper._target_ == "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
    assert "resume" not in basic.sweeper
    assert search.sweeper._target_ == "hydra_plugins.threes_sevens_optuna.optuna_sweeper.OptunaSweeper"
    stored = ConfigStore.instance().load("hydra/sweeper/basic.yaml")
    assert stored.node._target_ == "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"


def test_the_grid_sweeper_batches_only_the_jobs_that_did_not_finish():
    from hydra.core.override_parser.overrides_parser import OverridesParser

    # Looked up now: Hydra's plugin scan (run by any earlier composition in this process) executes the plugin
    # modules again, Hydra's BasicSweeper included, so a GridSweeper bound at import would be a stale class.
    sweeper = grid_sweeper.GridSweeper(max_batch_size=2, resume="latest")
    sweeper.swept = ["optim.lr", "seed"]
    sweeper.finished = {"optim.lr=0.1,seed=1", "optim.lr=0.5,seed=2"}
    overrides = OverridesParser.create().parse_overrides(["optim.lr=0.1,0.5", "seed=1,2", "fit.epochs=3"])
    batches = sweeper.split_arguments(overrides, 2)
    assert [[job_name(job, sweeper.swept) for job in batch] for batch in batches] == [
        ["optim.lr=0.1,seed=2", "optim.lr=0.5,seed=1"]
    ]
    sweeper.finished |= {"optim.lr=0.1,seed=2", "optim.lr=0.5,seed=1"}
    assert sweeper.split_arguments(overrides, 2) == []  # nothing left: no job is launched


def multirun(cwd, *overrides: str, wait: bool = True):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["PYTHONPATH"] = str(REPO)
    cmd = [sys.executable, "-m", "pipeline.train", "-m", *overrides]
    if not wait:
        with open(cwd / "first.txt", "w") as out:  # the child keeps its own copy of the handle
            return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


def finished_children(client, parent_id: str) -> list:
    runs = client.search_runs(["1"], f"tags.`{PARENT_TAG}` = '{parent_id}'")
    return [run for run in runs if run.info.status == "FINISHED"]


@pytest.mark.slow
def test_a_grid_sweep_interrupted_then_resumed_runs_only_the_rest_and_names_the_best(tmp_path):
    data = synthetic_normalized(tmp_path)
    grid = ["optim.lr=0.001,0.01,0.1,1.0", "fit.epochs=30"]  # 4 jobs of a few seconds each
    common = [f"paths.normalized={data}", f"tracking.uri=sqlite:///{tmp_path}/mlflow.db", "trainer.accelerator=cpu"]
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")

    first = multirun(tmp_path, *grid, *common, f"hydra.sweep.dir={tmp_path}/first", wait=False)
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and first.poll() is None:
            time.sleep(0.5)
            if (tmp_path / "first" / SWEEP_FILE).is_file():
                parent_id = json.loads((tmp_path / "first" / SWEEP_FILE).read_text())["parent_run_id"]
                if len(finished_children(client, parent_id)) >= 2:
                    first.send_signal(signal.SIGINT)
                    break
        assert first.wait(120) == 128 + signal.SIGINT, (tmp_path / "first.txt").read_text()[-3000:]
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    before = {run.info.run_name for run in finished_children(client, parent_id)}
    assert 2 <= len(before) < 4 and client.get_run(parent_id).info.status == "KILLED"

    # A resume whose grid is another one is refused in one line, and changes nothing.
    refused = multirun(tmp_path, "optim.lr=0.001,0.01,0.1,2.0", "fit.epochs=30", *common, "hydra.sweeper.resume=latest")
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines()[-1] == (
        f"error: hydra.sweeper.resume=latest: this command differs from sweep first (parent run {parent_id}): "
        "optim.lr=0.001,0.01,0.1,2.0 here, 0.001,0.01,0.1,1.0 in the sweep; resume it with its own command, "
        "or leave out hydra.sweeper.resume to start a new sweep"
    )
    assert client.get_run(parent_id).info.status == "KILLED"

    # The same command resumed, its jobs run by another launcher: only the jobs that did not finish.
    done = multirun(
        tmp_path,
        *grid,
        *common,
        f"hydra.sweep.dir={tmp_path}/second",
        "hydra.sweeper.resume=first",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"Resuming: {len(before)} of 4 jobs finished before; {4 - len(before)} to run" in done.stdout + done.stderr
    parent = client.get_run(parent_id)
    children = client.search_runs(["1"], f"tags.`{PARENT_TAG}` = '{parent_id}'")
    finished = [run for run in children if run.info.status == "FINISHED"]
    assert sorted(run.info.run_name for run in finished) == sorted(f"optim.lr={lr}" for lr in grid[0][9:].split(","))
    assert len(children) - len(finished) <= 1  # the job the signal cut short, KILLED, stays recorded
    assert {run.info.status for run in children if run not in finished} <= {"KILLED"}
    best = max(finished, key=lambda run: (run.data.metrics["final_val_acc"], -run.info.start_time))
    assert parent.info.status == "FINISHED" and "end_reason" not in parent.data.tags
    assert parent.data.tags["best_run_id"] == best.info.run_id
    assert parent.data.tags["sweep.children_finished"] == "4"
    assert parent.data.tags[resume.RESUMES_TAG] == str(tmp_path / "second")


def sweep_config(tmp_path, *overrides: str):
    """A sweep's Hydra config (as the MlflowSweep callback gets it) and its validated task config."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from pipeline.config.compose import CONF_DIR, validate

    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        config = compose(
            "config", [f"tracking.uri=sqlite:///{tmp_path}/mlflow.db", *overrides], return_hydra_config=True
        )
    return config, validate(OmegaConf.masked_copy(config, [key for key in config if key != "hydra"]))


def recorded_sweep(client, config, cfg, process: dict[str, str], home):
    """A sweep's parent run with one RUNNING child, as the callback records them, written by `process`;
    its first directory `home`."""
    from mlflow.entities import Param

    from pipeline.tracking import store

    experiment = store.experiment_id(client, cfg.tracking.experiment)
    parent = client.create_run(experiment, run_name="first", tags={resume.DIR_TAG: str(home), **process})
    client.log_batch(parent.info.run_id, params=[Param(k, str(v)) for k, v in store.logged_params(cfg).items()])
    client.log_dict(parent.info.run_id, resume.sweep_spec(config), resume.SPEC_FILE)
    child = client.create_run(experiment, run_name="optim.lr=0.1", tags={PARENT_TAG: parent.info.run_id, **process})
    return parent, child


def test_a_sweep_whose_process_died_is_resumed_after_its_runs_are_ended(tmp_path):
    from pipeline.tracking import lifecycle

    config, cfg = sweep_config(tmp_path, "fit.epochs=3", "hydra.sweeper.resume=latest")
    client = MlflowClient(cfg.tracking.uri)
    dead = {**lifecycle.process_tags(), lifecycle.PID_TAG: "999999999"}  # no such process
    parent, child = recorded_sweep(client, config, cfg, dead, tmp_path / "first")
    found, lock = resume.sweep_to_resume(config, cfg)
    assert found.info.run_id == parent.info.run_id
    assert (tmp_path / "first" / "sweep.lock").read_text() == f"{os.getpid()}\n"  # held by this process
    lock.close()
    assert client.get_run(child.info.run_id).info.status == "KILLED"  # ended as an orphan first
    resume.reopen(client, found, tmp_path / "second")
    reopened = client.get_run(parent.info.run_id)
    assert reopened.info.status == "RUNNING" and "end_reason" not in reopened.data.tags
    assert reopened.data.tags[lifecycle.PID_TAG] == str(os.getpid())
    assert reopened.data.tags[resume.RESUMES_TAG] == str(tmp_path / "second")


def test_a_sweep_still_running_or_a_changed_conf_is_refused(tmp_path, capsys):
    from pipeline.tracking import lifecycle

    config, cfg = sweep_config(tmp_path, "fit.epochs=3", "hydra.sweeper.resume=first")
    client = MlflowClient(cfg.tracking.uri)
    parent, _ = recorded_sweep(client, config, cfg, lifecycle.process_tags(), tmp_path / "first")  # alive
    with pytest.raises(SystemExit):
        resume.sweep_to_resume(config, cfg)
    assert f"sweep first (parent run {parent.info.run_id}) is still running (process {os.getpid()})" in (
        capsys.readouterr().err
    )
    client.set_terminated(parent.info.run_id, "KILLED")
    other, other_cfg = sweep_config(tmp_path, "fit.epochs=3", "optim.momentum=0.5", "hydra.sweeper.resume=first")
    with pytest.raises(SystemExit):
        resume.sweep_to_resume(other, other_cfg)
    assert "optim.momentum=0.5 here, (not given) in the sweep" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # the same command, but conf/ gives another value now
        resume.sweep_to_resume(config, sweep_config(tmp_path, "fit.epochs=3", "optim.lr=0.7")[1])
    assert "optim.lr=0.7 here, 1.0 in the sweep" in capsys.readouterr().err
