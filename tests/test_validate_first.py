"""A sweep refused before any job runs: a grid with one bad job (its configuration, its network's
arguments, its world) is refused by ValidateFirst in one line naming the job, with the words of the
run's own check, and leaves no directory and no run."""

from contextlib import contextmanager

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf, open_dict

from pipeline.config.compose import CONF_DIR, validate
from pipeline.config.errors import PipelineError
from pipeline.config.models import model_names
from pipeline.launch import preflight
from pipeline.launch.validate_first import GRID_SWEEPERS, ValidateFirst, grid_jobs, task_config


@pytest.fixture
def world(normalized) -> list[str]:
    """Overrides pointing a run at generated data and a sqlite store in the test's directory."""
    return [f"paths.normalized={normalized.paths.normalized}", f"tracking.uri={normalized.tracking.uri}"]


@contextmanager
def hydra_config(
    task_overrides: list[str], search_space: dict | None = None, sweeper: str = GRID_SWEEPERS[1], base: list[str] = ()
):
    """conf/ composed with `base`, with its hydra node, as a callback receives it, with the sweep's
    overrides set; Hydra stays initialised inside (a callback composes jobs with Hydra's own config loader)."""
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        config = compose("config", overrides=list(base), return_hydra_config=True)
        with open_dict(config):
            config.hydra.overrides.task = [*base, *task_overrides]
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
    with hydra_config(["optim.lr=0.5,1", "model.bias=true,false", "seed=3"], {"fit.epochs": "2,4"}) as config:
        jobs = grid_jobs(config)
    assert [" ".join(job) for job in jobs] == [
        f"fit.epochs={epochs} optim.lr={lr} model.bias={bias} seed=3"
        for epochs in (2, 4)
        for lr in (0.5, 1)
        for bias in (True, False)
    ]


def test_a_grid_over_a_glob_of_a_group_checks_each_job(capsys):
    """The learner sweep's `model: glob(*)` expands to conf/model/'s options, as Hydra's sweep does,
    so its jobs are checked too: one bad value is refused before any job starts."""
    with hydra_config(["optim.lr=0"], {"model": "glob(lin*)"}) as config:
        assert [job[0] for job in grid_jobs(config)] == ["model=linear", "model=linear_no_bias"]
        line = refusal(lambda: ValidateFirst().on_multirun_start(config), capsys)
    assert line.startswith("error: optim.lr=0.0: expected a number > 0 (job #0: model=linear")


def test_a_grid_with_one_bad_job_is_refused_naming_the_key_and_the_job(capsys):
    with hydra_config(["optim.lr=0.5,0", "model=linear,mlp"]) as config:
        line = refusal(lambda: ValidateFirst().on_multirun_start(config), capsys)
    assert line == ("error: optim.lr=0.0: expected a number > 0 (job #2: optim.lr=0 model=linear); no job was started")


def test_a_grid_naming_a_config_group_option_that_does_not_exist_is_refused(capsys):
    with hydra_config(["model=linear,resnet"]) as config:
        line = refusal(lambda: ValidateFirst().on_multirun_start(config), capsys)
    assert line == (
        f"error: In 'config': Could not find 'model/resnet'; available: {', '.join(model_names())} "
        "(job #1: model=resnet); no job was started"
    )


def test_each_job_is_composed_with_its_own_config_group(capsys):
    """mlp.yaml sets model.hidden, linear.yaml does not (its network takes none): the linear job is refused."""
    with hydra_config(["model=mlp,linear", "++model.hidden=4"]) as config:
        line = refusal(lambda: ValidateFirst().on_multirun_start(config), capsys)
    assert "model.hidden" in line and line.endswith("(job #1: model=linear); no job was started")


def test_a_grid_job_whose_network_refuses_its_argument_is_refused_before_any_starts(capsys):
    with hydra_config(["model=mlp", "model.hidden=16,0"]) as config:
        line = refusal(lambda: ValidateFirst().on_multirun_start(config), capsys)
    assert line == "error: model.hidden=0: expected an integer >= 1 (job #1: model.hidden=0); no job was started"


def test_a_grid_job_whose_network_class_is_not_there_is_refused_in_one_line(capsys):
    with hydra_config(["model._target_=pipeline.model.nets.Linear,nosuchmodule.Net"]) as config:
        line = refusal(lambda: ValidateFirst().on_multirun_start(config), capsys)
    assert line == (
        "error: model._target_=nosuchmodule.Net: no module named nosuchmodule "
        "(job #1: model._target_=nosuchmodule.Net); no job was started"
    )


def test_a_valid_grid_and_a_valid_run_pass(capsys, world):
    with hydra_config(["optim.lr=0.5,1", "model=linear,mlp,pixel_similarity"], base=world) as config:
        ValidateFirst().on_multirun_start(config)
        ValidateFirst().on_run_start(config)  # a single run: only its directory (the task function checks the rest)
    assert capsys.readouterr().err == ""


def test_a_bad_base_value_is_refused_for_any_sweeper(capsys):
    with hydra_config([]) as config:
        config.fit.epochs = 0
        with open_dict(config):
            config.hydra.sweeper._target_ = "hydra_plugins.threes_sevens_optuna.optuna_sweeper.OptunaSweeper"
        assert (
            refusal(lambda: ValidateFirst().on_multirun_start(config), capsys)
            == "error: fit.epochs=0: expected an integer >= 1"
        )


def test_validate_first_runs_before_the_mlflow_sweep_callback():
    callbacks = list(OmegaConf.load(CONF_DIR / "config.yaml").hydra.callbacks)
    assert callbacks.index("validate_first") < callbacks.index("mlflow_sweep")


def test_a_local_multirun_of_ddp_jobs_is_refused_as_a_whole(capsys, monkeypatch):
    for variable in ("SLURM_NTASKS", "SLURM_JOB_NAME", "TORCHELASTIC_RUN_ID"):
        monkeypatch.delenv(variable, raising=False)
    with hydra_config(["optim.lr=0.5,1", "trainer=ddp"]) as config:
        assert "trainer.strategy=ddp in a local multirun" in refusal(
            lambda: ValidateFirst().on_multirun_start(config), capsys
        )
    with hydra_config(["trainer=default,ddp"]) as config:  # one swept job is DDP: the whole sweep is refused
        assert refusal(lambda: ValidateFirst().on_multirun_start(config), capsys).endswith(
            "(job #1: trainer=ddp); no job was started"
        )


def test_a_refused_sweep_leaves_no_directory_and_no_run(tmp_path):
    import subprocess
    import sys

    from tests.conftest import REPO

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline.train",
            "-m",
            "optim.lr=0.5,1",
            "trainer=ddp",
            f"hydra.sweep.dir={tmp_path}/sweep",
            f"tracking.uri=sqlite:///{tmp_path}/mlflow.db",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1
    assert [line for line in done.stderr.splitlines() if line.strip()] == [
        line for line in done.stderr.splitlines() if line.startswith("error: trainer.strategy=ddp in a local multirun")
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no sweep directory, no store, no run


def run_refusal(config) -> str:
    """What a single run's one check (train.main's) says of this configuration."""
    with pytest.raises(PipelineError) as refused:
        preflight.check_before_run(validate(task_config(config)))
    return f"error: {refused.value}"


def test_data_of_other_digits_is_refused_before_a_run_or_a_sweep(capsys, world):
    with hydra_config([], base=[*world, "data.digits=[4,9]"]) as config:
        line = run_refusal(config)
        assert line.endswith(
            "holds digits [3, 7]; the configuration asks for [4, 9]: run dvc repro (or dvc exp apply / dvc checkout), "
            "or pass data.digits=[3,7]"
        )
        assert refusal(lambda: ValidateFirst().on_multirun_start(config), capsys) == line


def test_a_grid_over_digits_names_the_job_whose_data_is_not_there(capsys, world):
    with hydra_config(["data.digits=[3,7],[4,9]"], base=world) as config:
        line = refusal(lambda: ValidateFirst().on_multirun_start(config), capsys)
    assert line.endswith("or pass data.digits=[3,7] (job #1: data.digits=[4,9]); no job was started")


def test_a_run_directory_under_a_file_is_refused(capsys, world, tmp_path):
    (tmp_path / "outputs").write_text("")
    with hydra_config([], base=[*world, f"hydra.run.dir={tmp_path}/outputs/run"]) as config:
        assert refusal(lambda: ValidateFirst().on_run_start(config), capsys) == (
            f"error: hydra.run.dir={tmp_path}/outputs/run: {tmp_path}/outputs is a file, not a directory; "
            "move it away, or set hydra.run.dir to another directory"
        )
