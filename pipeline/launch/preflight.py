"""Refuse a bad configuration, and a world it cannot run in, before any run or output exists.

`check_before_run` is the one check of a training (train.main calls it once, for a direct run, a
DVC stage or a sweep's job): what lies outside the configuration, cheapest first: the hardware
asked for, the normalized data (read once, whole, and the digits asked for; the run trains on
what was read), the output directory, the tracking store (reachable within
tracking.connect_timeout_s, and, on a server with accounts, the account's EDIT on the experiment
and on the registered model). Each failure is one line and exit 1.

`ValidateFirst` is a Hydra callback (registered first under hydra.callbacks in conf/config.yaml)
for what needs the whole sweep: every job of a grid sweep is checked at `on_multirun_start`,
composed as Hydra's launcher will compose it, before the sweep's directory, its parent MLflow run
or its first job exist (otherwise the jobs before a bad one would already have run). Hydra turns
a callback's exception into a warning and carries on, so a refusal prints one line and exits with
status 1. (Other sweepers, such as Optuna, choose their values as they go: their base
configuration is checked here, each trial's by the training itself.)
"""

from __future__ import annotations

import os
import sys

from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import CompactHydraException
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from pipeline.config.atomic import check_writable
from pipeline.config.cli import one_line, refuse_config
from pipeline.config.compose import as_dict, validate
from pipeline.config.errors import ConfigError, PipelineError
from pipeline.config.schema import Config, TrainerConfig
from pipeline.config.secrets import redact, refuse_in_tracking_uri
from pipeline.data import normalized
from pipeline.launch import nvidia
from pipeline.model.trainer import check_launch
from pipeline.tracking import registry, store, store_check
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


def requested_devices(devices) -> tuple[int | None, list[int]]:
    """How many devices `trainer.devices` asks for and which indices it names: (None, []) for
    all there are (`auto`, -1), (n, []) for a count, (len, ids) for a list (`[0, 2]`, "0,2")."""
    if isinstance(devices, (list, tuple)):
        return len(devices), [int(d) for d in devices]
    text = str(devices).strip()
    if text in ("auto", "-1"):
        return None, []
    if "," in text:
        ids = [int(part) for part in text.split(",") if part.strip()]
        return len(ids), ids
    return int(text), []


def check_hardware(trainer: TrainerConfig) -> None:
    """The accelerator and devices asked for exist on this machine (Lightning would fail later,
    after the run is created). cpu, auto without a GPU, and Lightning's other accelerators pass;
    auto where an NVIDIA GPU is present but unusable (a driver too old) passes with one warning line."""
    from pytorch_lightning.accelerators import CUDAAccelerator, MPSAccelerator

    accelerator = trainer.accelerator.lower()
    cuda = CUDAAccelerator.auto_device_count() if CUDAAccelerator.is_available() else 0
    unusable = None if cuda else nvidia.unusable_gpus(cuda_available=False)
    if accelerator in ("gpu", "cuda") and not cuda and not (accelerator == "gpu" and MPSAccelerator.is_available()):
        raise PipelineError(
            f"trainer.accelerator={trainer.accelerator}: {unusable or 'no CUDA device on this machine'}; "
            "use trainer.accelerator=auto or cpu"
        )
    if accelerator == "auto" and unusable:
        print(
            f"warning: {unusable}; trainer.accelerator=auto trains on the CPU "
            "(trainer.accelerator=cpu says so on purpose, without this line)",
            file=sys.stderr,
        )
    if accelerator == "mps" and not MPSAccelerator.is_available():
        raise PipelineError(
            "trainer.accelerator=mps: no Apple MPS device on this machine; use trainer.accelerator=auto or cpu"
        )
    if accelerator not in ("gpu", "cuda", "auto") or not cuda:
        return  # CPU processes, MPS (one device), or left to Lightning
    try:
        count, ids = requested_devices(trainer.devices)
    except ValueError:
        return  # a form Lightning parses itself
    if (count or 0) > cuda or any(i >= cuda for i in ids):
        raise PipelineError(
            f"trainer.devices={trainer.devices}: this machine has {cuda} CUDA device(s) "
            f"(0..{cuda - 1}); ask for {cuda} or fewer"
        )


def check_model(cfg: Config) -> None:
    """The network and the optimizer, each made from its section (ConfigError naming the key)."""
    from pipeline.model.classifier import check_optimizer
    from pipeline.model.nets import build

    build(as_dict(cfg.model))
    check_optimizer(as_dict(cfg.optim))


def tracking_store(cfg: Config) -> tuple[str, str]:
    """The tracking URI a run would use, and how to name it in a message (credentials cut out)."""
    uri = store.tracking_uri(cfg)
    if cfg.tracking.uri:
        return uri, f"tracking.uri={redact(uri)}"
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return uri, f"MLFLOW_TRACKING_URI={redact(uri)}"
    return uri, f"the default tracking store {uri}"


def check_before_run(
    cfg: Config, output_dir: str | None = None, output_key: str = "hydra.run.dir"
) -> normalized.NormalizedData:
    """What a training needs outside its configuration; PipelineError (one line) for the first
    thing missing. Returns the normalized data, read (the run trains on it)."""
    check_hardware(cfg.trainer)
    data = normalized.read_for(cfg)
    if output_dir is not None:
        check_writable(output_dir, f"{output_key}={output_dir}", f"set {output_key} to another directory")
    uri, shown_as = tracking_store(cfg)
    registers = cfg.tracking.log_model and cfg.tracking.register
    model = registry.model_name(cfg) if registers else None
    store_check.check_store(uri, shown_as, cfg.tracking.connect_timeout_s, cfg.tracking.experiment, model)
    return data


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
