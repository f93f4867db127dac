"""Every job of a sweep checked before the first starts.

`ValidateFirst` is a Hydra callback (registered first under hydra.callbacks in conf/config.yaml)
for what needs the whole sweep: every job of a grid sweep is checked at `on_multirun_start`,
composed as Hydra's launcher will compose it, before the sweep's directory, its parent MLflow run
or its first job exist (otherwise the jobs before a bad one would already have run). Hydra turns
a callback's exception into a warning and carries on, so a refusal prints one line and exits with
status 1. (Other sweepers, such as Optuna, choose their values as they go: their base
configuration is checked here, each trial's by the training itself.) The checks of each job are
pipeline/launch/preflight.py's, the training's own.
"""

from __future__ import annotations

from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import CompactHydraException
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from pipeline.config.atomic import check_writable
from pipeline.config.cli import one_line, refuse_config
from pipeline.config.compose import validate
from pipeline.config.errors import ConfigError, PipelineError
from pipeline.config.schema import Config
from pipeline.config.secrets import refuse_in_tracking_uri
from pipeline.launch.preflight import check_before_run, check_model
from pipeline.model.trainer import check_launch
from pipeline.tracking import registry, store
from pipeline.tracking.sweep_runs import swept_keys

GRID_SWEEPERS = (  # Hydra's own, and the project's (the default: hydra_plugins/threes_sevens_grid/)
    "hydra._internal.core_plugins.basic_sweeper.BasicSweeper",
    "hydra_plugins.threes_sevens_grid.grid_sweeper.GridSweeper",
)
RUN_DIR_ELSEWHERE = "set hydra.run.dir to another directory"


def task_config(config: DictConfig) -> DictConfig:
    return OmegaConf.masked_copy(config, [key for key in config if key != "hydra"])


def grid_jobs(config: DictConfig) -> list[list[str]]:
    """The override lists of a basic (grid) sweep's jobs, in the order Hydra launches them."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    return BasicSweeper.split_arguments(sweep_arguments(config), None)[0]


def sweep_arguments(config: DictConfig) -> list:
    """The sweep's overrides, parsed: its search space in the config, then the command line's."""
    search_space = OmegaConf.select(config, "hydra.sweeper.params") or {}
    arguments = [f"{key}={value}" for key, value in search_space.items()] + list(config.hydra.overrides.task)
    hydra = GlobalHydra.instance()  # its config loader expands a glob over a group (`model: glob(*)`), as the sweep's
    return OverridesParser.create(
        config_loader=hydra.config_loader() if hydra.is_initialized() else None
    ).parse_overrides(arguments)


def swept_part(job: list[str], config: DictConfig) -> str:
    """What sets this job apart: its values of the swept keys (`optim.lr=0 model.bias=True`)."""
    swept = set(swept_keys(config))
    return " ".join(override for override in job if override.split("=", 1)[0].lstrip("+~") in swept)


def validate_or_refuse(config: DictConfig) -> Config:
    try:
        return validate(task_config(config))
    except ConfigError as err:
        refuse_config(str(err))


class ValidateFirst(Callback):
    # refuse_config raises SystemExit, not an Exception: Hydra's callback runner would only warn
    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        """Only what Hydra would write before the task function runs: no credentials in tracking.uri
        (Hydra saves the overrides in `.hydra/`), and a run directory it can make. The rest of a
        single run's check is the task function's own (validate and check_before_run, once)."""
        try:
            refuse_in_tracking_uri(OmegaConf.select(config, "tracking.uri"))
            check_writable(config.hydra.run.dir, f"hydra.run.dir={config.hydra.run.dir}", RUN_DIR_ELSEWHERE)
        except PipelineError as err:
            refuse_config(str(err))

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        cfg = validate_or_refuse(config)  # the base: for sweepers that choose values as they go, all we can check
        try:  # a local multirun of DDP jobs: refused as a whole, before any directory or run
            check_launch(cfg.trainer.strategy, multirun=True)
            check_model(cfg)
        except ConfigError as err:
            refuse_config(str(err))
        jobs = {"": cfg}  # what sets a job apart -> its config
        if config.hydra.sweeper._target_ in GRID_SWEEPERS:
            loader = GlobalHydra.instance().config_loader()
            jobs = {}
            for number, overrides in enumerate(grid_jobs(config)):
                job = f"job #{number}: {swept_part(overrides, config)}"
                try:  # a job's config group may not exist (`model=linear,resnet`), or its values not pass
                    jobs[job] = validate(task_config(loader.load_sweep_config(config, list(overrides))))
                    check_launch(jobs[job].trainer.strategy, multirun=True)
                    check_model(jobs[job])
                except (ConfigError, CompactHydraException) as err:
                    refuse_config(f"{one_line(err)} ({job}); no job was started")
        checked = set()
        for job, job_cfg in jobs.items():  # the world once per distinct need: usually once for the whole sweep
            need = (
                job_cfg.trainer.accelerator,
                str(job_cfg.trainer.devices),
                job_cfg.paths.normalized,
                tuple(job_cfg.data.digits),
                store.tracking_uri(job_cfg),
                job_cfg.tracking.connect_timeout_s,
                job_cfg.tracking.experiment,
                registry.model_name(job_cfg),
            )
            if need in checked:
                continue
            checked.add(need)
            try:
                check_before_run(job_cfg, config.hydra.sweep.dir, "hydra.sweep.dir")
            except PipelineError as err:
                refuse_config(f"{err} ({job}); no job was started" if len(jobs) > 1 else str(err))
