"""The Lightning Trainer of a training: made from the configuration, seeded, fitted, on one process
or several (Lightning DDP).

With `trainer=ddp` Lightning re-runs this command once per extra device (on SLURM or under
torchrun the cluster starts every process instead), so every process runs `train`. Only the
main process (global rank 0) creates the MLflow run and writes the outputs; the others train
their shard of each batch (pipeline/data/datamodule.py) and join the collective calls.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from pathlib import Path

import pytorch_lightning as pl
import torch
from lightning_fabric.plugins.environments import SLURMEnvironment, TorchElasticEnvironment
from lightning_fabric.utilities.rank_zero import rank_zero_only

from pipeline.config.errors import ConfigError
from pipeline.config.schema import Config
from pipeline.model.classifier import StopOnNonFiniteLoss


def quiet_lightning() -> None:
    """Silence two lines Lightning 2.6 prints on every run that a user can do nothing about: torch
    2.14's FutureWarning for the LeafSpec its CombinedLoader builds, and its LitLogger advertisement.
    Called where the Trainer is made: a joblib worker trains without importing this module's caller."""
    warnings.filterwarnings("ignore", r"`isinstance\(treespec, LeafSpec\)` is deprecated", FutureWarning)
    logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(
        lambda record: not record.getMessage().startswith("💡 Tip: For seamless cloud logging")
    )


def seed(value: int) -> None:
    """The same weights and batches every run: Lightning's seeds, and deterministic cuBLAS on a GPU."""
    pl.seed_everything(value, workers=True)
    if torch.cuda.is_available():
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def make_trainer(cfg: Config, logger, *callbacks: pl.Callback) -> pl.Trainer:
    """The Trainer `cfg.trainer` and `cfg.fit.epochs` ask for; it stops at a NaN loss (see `fit`)."""
    quiet_lightning()
    return pl.Trainer(
        max_epochs=cfg.fit.epochs,
        accelerator=cfg.trainer.accelerator,
        devices=cfg.trainer.devices,
        strategy=cfg.trainer.strategy,
        num_nodes=cfg.trainer.num_nodes,
        precision=cfg.trainer.precision,
        deterministic=cfg.trainer.deterministic,
        enable_progress_bar=cfg.trainer.progress_bar,
        enable_model_summary=False,
        enable_checkpointing=False,  # the final model is saved once, by model/outputs.py
        num_sanity_val_steps=0,
        log_every_n_steps=0,  # metrics are logged per epoch: no per-step bookkeeping
        logger=logger,
        callbacks=[StopOnNonFiniteLoss(), *callbacks],
    )


def fit(trainer: pl.Trainer, module: pl.LightningModule, datamodule: pl.LightningDataModule) -> float:
    """Trainer.fit; the seconds it took. Diverged (no model is saved) when the loss became NaN."""
    started = time.perf_counter()
    trainer.fit(module, datamodule=datamodule)
    seconds = time.perf_counter() - started
    for callback in trainer.callbacks:
        if isinstance(callback, StopOnNonFiniteLoss):
            callback.raise_if_stopped()
    return seconds


def is_main_process() -> bool:
    """Global rank 0. Known before any Trainer exists, from what the launcher set: Lightning reads
    RANK / LOCAL_RANK / SLURM_PROCID at import; NODE_RANK marks Lightning's own multi-node launch."""
    return (rank_zero_only.rank or 0) == 0 and os.environ.get("NODE_RANK", "0") == "0"


def check_launch(strategy: str, multirun: bool) -> None:
    """Lightning's `ddp` starts the other processes by re-running the command line, which in a
    local Hydra multirun would re-run the whole sweep; a cluster that starts them itself is fine."""
    cluster_starts_processes = SLURMEnvironment.detect() or TorchElasticEnvironment.detect()
    if multirun and strategy.startswith("ddp") and strategy != "ddp_spawn" and not cluster_starts_processes:
        raise ConfigError(
            f"trainer.strategy={strategy} in a local multirun: Lightning would re-run the whole sweep in each "
            "process; run DDP jobs one at a time, or sweep on SLURM (hydra/launcher=slurm)"
        )


def train_shard(cfg: Config, module: pl.LightningModule, datamodule, checkpoint: Path) -> None:
    """A process other than the main one: train on its shards; record nothing."""
    trainer = make_trainer(cfg, logger=False)
    trainer.fit(module, datamodule=datamodule)
    trainer.save_checkpoint(checkpoint, weights_only=True)  # collective (a barrier): rank 0 writes the file
