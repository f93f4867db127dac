"""Sweeps on a cluster: Hydra's submitit launcher. SLURM is not here; submitit's local executor
runs the same launcher path (pickled jobs, one process each, results collected)."""

import os
import subprocess
import sys

import mlflow
import pytest
from hydra import compose, initialize_config_dir
from mlflow import MlflowClient
from omegaconf import OmegaConf
from submitit.slurm.slurm import SlurmExecutor, _convert_mem, _make_sbatch_string

from pipeline.config.compose import CONF_DIR
from pipeline.tracking.store import experiment_id
from tests.conftest import REPO


def test_slurm_launcher_config_renders_an_sbatch_script(tmp_path):
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            "config", overrides=["hydra/launcher=slurm", "hydra.launcher.partition=gpu"], return_hydra_config=True
        )
    launcher = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    assert launcher.pop("_target_").endswith("submitit_launcher.SlurmLauncher")
    # What submitit does with them on a cluster (no srun here, so without its executor): rename the
    # generic keys, then write the sbatch script, which refuses any key sbatch does not take.
    for key in ("submitit_folder", "max_num_timeout"):  # executor settings, not sbatch's
        launcher.pop(key)
    renamed = {SlurmExecutor._equivalence_dict().get(k, k): v for k, v in launcher.items()}
    renamed["mem"] = _convert_mem(renamed["mem"])
    assert set(renamed) <= SlurmExecutor._valid_parameters()
    script = _make_sbatch_string(command="python -m pipeline.train", folder=tmp_path, map_count=40, **renamed)
    for line in (
        "--partition=gpu",
        "--time=30",
        "--gpus-per-node=1",
        "--ntasks-per-node=1",
        "--mem=16GB",
        "--cpus-per-task=4",
        "--array=0-39%16",
    ):  # a sweep of 40 jobs, 16 at once
        assert line in script, line


@pytest.mark.slow
def test_sweep_through_submitit_local_executor_records_every_job(normalized, tmp_path):
    cfg = normalized
    # Created once before the jobs start: parallel first writers of one sqlite file race.
    experiment_id(MlflowClient(cfg.tracking.uri), cfg.tracking.experiment)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline.train",
            "-m",
            "hydra/launcher=submitit_local",
            "optim.lr=0.5,1.0",
            "fit.epochs=2",
            "trainer.accelerator=cpu",
            f"paths.normalized={cfg.paths.normalized}",
            f"tracking.uri={cfg.tracking.uri}",
            "tracking.log_model=false",
            f"hydra.sweep.dir={tmp_path}/sweep",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Submitit 'local' sweep output dir" in done.stdout + done.stderr
    # submitit's own record of each job: its pickled result and log
    assert len(list((tmp_path / "sweep/.submitit").glob("*/*_result.pkl"))) == 2

    mlflow.set_tracking_uri(cfg.tracking.uri)
    runs = mlflow.search_runs(experiment_names=[cfg.tracking.experiment], output_format="list")
    parents = {run.data.tags.get("mlflow.parentRunId") for run in runs}
    jobs = [run for run in runs if run.info.run_id not in parents]
    assert sorted(run.data.params["optim.lr"] for run in jobs) == ["0.5", "1.0"]
    assert all(run.info.status == "FINISHED" and "final_val_acc" in run.data.metrics for run in jobs)
