"""Refuse a model that cannot be built, and a world a training cannot run in, before any run or output exists.

`check_before_run` is the one check of a training (train.main calls it once, for a direct run, a
DVC stage or a sweep's job): what lies outside the configuration, cheapest first: the hardware
asked for, the normalized data (read once, whole, and the digits asked for; the run trains on
what was read), the output directory, the tracking store (reachable within
tracking.connect_timeout_s, and, on a server with accounts, the account's EDIT on the experiment
and on the registered model). Each failure is one line and exit 1. A sweep runs the same checks
for all its jobs before the first starts: pipeline/launch/validate_first.py.
"""

from __future__ import annotations

import os
import sys

from pipeline.config.atomic import check_writable
from pipeline.config.compose import as_dict
from pipeline.config.errors import PipelineError
from pipeline.config.schema import Config, TrainerConfig
from pipeline.config.secrets import redact
from pipeline.data import normalized
from pipeline.launch import nvidia
from pipeline.tracking import registry, store, store_check


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
