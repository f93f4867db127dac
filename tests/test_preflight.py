"""ValidateFirst: a bad configuration is refused before Hydra writes a run directory, and a grid
sweep with one bad job is refused before any job runs."""

from contextlib import contextmanager

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf, open_dict

from pipeline.config import CONF_DIR
from pipeline.preflight import GRID_SWEEPER, ValidateFirst, grid_jobs


@contextmanager
def hydra_config(task_overrides: list[str], search_space: dict | None = None, sweeper: str = GRID_SWEEPER):
    """conf/ with its hydra node, as a callback receives it, with the sweep's overrides set;
    Hydra stays initialised inside (a callback composes jobs with Hydra's own config loader)."""
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        config = compose("config", return_hydra_config=True)
        with open_dict(config):
            config.hydra.overrides.task = task_overrides
            config.hydra.sweeper = {"_target_": sweeper, "params": search_space}
        yield config


def refusal(call, capsys) -> str:
    with pytest.raises(SystemExit) as exited:
        call()
    assert exited.value.code == 1
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_grid_jobs_are_hydras_jobs_in_launch_order():
    with hydra_config(["optim.lr=0.5,1", "model.bias=true,false", "seed=3"], {"optim.epochs": "2,4"}) as config:
        jobs = grid_jobs(config)
    assert [" ".join(job) for job in jobs] == [
        f"optim.epochs={epochs} optim.lr={lr} model.bias={bias} seed=3"
        for epochs in (2, 4) for lr in (0.5, 1) for bias in (True, False)
    ]


def test_a_grid_with_one_bad_job_is_refused_naming_the_key_and_the_job(capsys):
    with hydra_config(["optim.lr=0.5,0", "model=linear,mlp"]) as config:
        line = refusal(lambda: ValidateFirst().on_multirun_start(config), capsys)
    assert line == ("error: optim.lr=0.0: expected a number > 0 (job #2: optim.lr=0 model=linear); "
                    "no job was started")


def test_a_grid_naming_a_config_group_option_that_does_not_exist_is_refused(capsys):
    with hydra_config(["model=linear,resnet"]) as config:
        line = refusal(lambda: ValidateFirst().on_multirun_start(config), capsys)
    assert line == ("error: In 'config': Could not find 'model/resnet'; available: linear, mlp, pixel_similarity "
                    "(job #1: model=resnet); no job was started")


def test_each_job_is_composed_with_its_own_config_group(capsys):
    """mlp.yaml sets model.hidden, linear.yaml does not: `+model.hidden` can only be added to the linear job."""
    with hydra_config(["model=linear,mlp", "+model.hidden=4"]) as config:
        line = refusal(lambda: ValidateFirst().on_multirun_start(config), capsys)
    assert "model.hidden" in line and line.endswith("(job #1: model=mlp); no job was started")


def test_a_valid_grid_and_a_valid_run_pass(capsys):
    with hydra_config(["optim.lr=0.5,1", "model=linear,mlp,pixel_similarity"]) as config:
        ValidateFirst().on_multirun_start(config)
        ValidateFirst().on_run_start(config)
    assert capsys.readouterr().err == ""


def test_a_bad_base_value_is_refused_for_a_run_and_for_any_sweeper(capsys):
    with hydra_config([]) as config:
        config.optim.epochs = 0
        assert refusal(lambda: ValidateFirst().on_run_start(config), capsys) == \
            "error: optim.epochs=0: expected an integer >= 1"
        with open_dict(config):
            config.hydra.sweeper._target_ = "hydra_plugins.threes_sevens_optuna.optuna_sweeper.OptunaSweeper"
        assert refusal(lambda: ValidateFirst().on_multirun_start(config), capsys) == \
            "error: optim.epochs=0: expected an integer >= 1"


def test_validate_first_runs_before_the_mlflow_sweep_callback():
    callbacks = list(OmegaConf.load(CONF_DIR / "config.yaml").hydra.callbacks)
    assert callbacks.index("validate_first") < callbacks.index("mlflow_sweep")


def test_a_local_multirun_of_ddp_jobs_is_refused_as_a_whole(capsys, monkeypatch):
    for variable in ("SLURM_NTASKS", "SLURM_JOB_NAME", "TORCHELASTIC_RUN_ID"):
        monkeypatch.delenv(variable, raising=False)
    with hydra_config(["optim.lr=0.5,1", "trainer=ddp"]) as config:
        assert "trainer.strategy=ddp in a local multirun" in refusal(
            lambda: ValidateFirst().on_multirun_start(config), capsys)
    with hydra_config(["trainer=default,ddp"]) as config:  # one swept job is DDP: the whole sweep is refused
        assert refusal(lambda: ValidateFirst().on_multirun_start(config), capsys).endswith(
            "(job #1: trainer=ddp); no job was started")


def test_a_refused_sweep_leaves_no_directory_and_no_run(tmp_path):
    import subprocess
    import sys

    from tests.conftest import REPO

    done = subprocess.run([sys.executable, "-m", "pipeline.train", "-m", "optim.lr=0.5,1", "trainer=ddp",
                           f"hydra.sweep.dir={tmp_path}/sweep", f"tracking.uri=sqlite:///{tmp_path}/mlflow.db"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    assert [line for line in done.stderr.splitlines() if line.strip()] == [
        line for line in done.stderr.splitlines() if line.startswith("error: trainer.strategy=ddp in a local multirun")]
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no sweep directory, no store, no run
