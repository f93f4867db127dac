"""Training one model on several processes (Lightning DDP): which process records the run.

With `trainer=ddp` Lightning re-runs this command once per extra device (on SLURM or under
torchrun the cluster starts every process instead), so every process runs `train`. Only the
main process (global rank 0) creates the MLflow run and writes the outputs; the others train
their shard of each batch (pipeline/data/datamodule.py) and join the collective calls.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytorch_lightning as pl
from lightning_fabric.plugins.environments import SLURMEnvironment, TorchElasticEnvironment
from lightning_fabric.utilities.rank_zero import rank_zero_only

from pipeline.config.errors import ConfigError


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


def train_shard(trainer: pl.Trainer, module: pl.LightningModule, datamodule, checkpoint: Path) -> None:
    """A process other than the main one: train on its shards; record nothing."""
    trainer.fit(module, datamodule=datamodule)
    trainer.save_checkpoint(checkpoint, weights_only=True)  # collective (a barrier): rank 0 writes the file
