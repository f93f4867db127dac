"""Refuse a bad configuration before Hydra writes anything.

`ValidateFirst` is a Hydra callback (registered first under hydra.callbacks in conf/config.yaml).
Hydra creates a run's directory (`.hydra/`, the job log) before the task function runs, and a
sweep's parent MLflow run and directory before its first job: a value the schema refuses would
leave those behind, and in a grid sweep the jobs before the bad one would already have run.
So a run's configuration is checked at `on_run_start`, and every job of a grid sweep at
`on_multirun_start`, composed as Hydra's launcher will compose it. Hydra turns a callback's
exception into a warning and carries on, so a refusal prints one line and exits with status 1.
(Other sweepers, such as Optuna, choose their values as they go: their base configuration is
checked here, each trial's by the training itself.)
"""

from __future__ import annotations

from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import CompactHydraException
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from pipeline.cli import one_line, refuse_config
from pipeline.config import ConfigError, validate
from pipeline.distributed import check_launch
from pipeline.tracking.sweep import swept_keys

GRID_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"


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
    return OverridesParser.create().parse_overrides(arguments)


def swept_part(job: list[str], config: DictConfig) -> str:
    """What sets this job apart: its values of the swept keys (`optim.lr=0 model.bias=True`)."""
    swept = set(swept_keys(config))
    return " ".join(override for override in job if override.split("=", 1)[0].lstrip("+~") in swept)


def refuse(message: str) -> None:
    refuse_config(message)  # SystemExit, not an Exception: Hydra's callback runner would only warn


def validate_or_refuse(config: DictConfig) -> None:
    try:
        validate(task_config(config))
    except ConfigError as err:
        refuse(str(err))


class ValidateFirst(Callback):
    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        validate_or_refuse(config)

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        validate_or_refuse(config)  # the base: for sweepers that choose values as they go, all we can check
        try:  # a local multirun of DDP jobs: refused as a whole, before any directory or run
            check_launch(config.trainer.strategy, multirun=True)
        except ConfigError as err:
            refuse(str(err))
        if config.hydra.sweeper._target_ != GRID_SWEEPER:
            return
        loader = GlobalHydra.instance().config_loader()
        for number, overrides in enumerate(grid_jobs(config)):
            try:  # a job's config group may not exist (`model=linear,resnet`), or its values not pass
                job = validate(task_config(loader.load_sweep_config(config, list(overrides))))
                check_launch(job.trainer.strategy, multirun=True)
            except (ConfigError, CompactHydraException) as err:
                refuse(f"{one_line(err)} (job #{number}: {swept_part(overrides, config)}); no job was started")
