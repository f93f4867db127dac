"""Stage `train`: a Hydra app that trains the configured model with Lightning and records
the run in MLflow.

    python -m pipeline.train                           # conf/ as it is
    python -m pipeline.train optim.lr=0.5 model=mlp    # Hydra overrides
    python -m pipeline.train -m optim.lr=0.1,0.5,1.0   # a Hydra multirun sweep

Writes model.ckpt, history.csv, and for the linear model weights.npy and weights.png to the
Hydra run directory (`models/` when DVC runs it).
"""

from __future__ import annotations

import csv
import logging
import os
import warnings
from pathlib import Path

import hydra
import mlflow
import mlflow.pytorch
import numpy as np
import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from pipeline import distributed
from pipeline.cli import run_hydra_app
from pipeline.config import Config, as_dict, validate
from pipeline.datamodule import NormalizedMNIST
from pipeline.metrics import score
from pipeline.model import CHECKPOINT, DigitClassifier, StopOnNonFiniteLoss
from pipeline.report.explain import write_explainers
from pipeline.report.figures import weights_heatmap
from pipeline.tracking import lineage, run_names, store, sweep
from pipeline.tracking.epoch_logger import ActiveRunLogger
from pipeline.tracking.lifecycle import StopOnSignal, recorded_run


def quiet_lightning() -> None:
    """Silence two lines Lightning 2.6 prints on every run that a user can do nothing about: torch
    2.14's FutureWarning for the LeafSpec its CombinedLoader builds, and its LitLogger advertisement.
    Called where the Trainer is made: a joblib worker trains without importing this module's caller."""
    warnings.filterwarnings("ignore", r"`isinstance\(treespec, LeafSpec\)` is deprecated", FutureWarning)
    logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(
        lambda record: not record.getMessage().startswith("💡 Tip: For seamless cloud logging"))


def make_trainer(cfg: Config, logger) -> pl.Trainer:
    quiet_lightning()
    return pl.Trainer(
        max_epochs=cfg.optim.epochs,
        accelerator=cfg.trainer.accelerator,
        devices=cfg.trainer.devices,
        strategy=cfg.trainer.strategy,
        num_nodes=cfg.trainer.num_nodes,
        precision=cfg.trainer.precision,
        deterministic=cfg.trainer.deterministic,
        enable_progress_bar=cfg.trainer.progress_bar,
        enable_model_summary=False,
        enable_checkpointing=False,  # the final model is saved once, below
        num_sanity_val_steps=0,
        log_every_n_steps=0,  # metrics are logged per epoch: no per-step bookkeeping
        logger=logger,
        callbacks=[StopOnNonFiniteLoss(), StopOnSignal()],
    )


def save(trainer: pl.Trainer, module: DigitClassifier, digits: list[int], out_dir: Path) -> list[Path]:
    """The stage's outputs: the checkpoint, the per-epoch history, and the linear model's weights
    (as data and as a picture). Returns the files a run records as artifacts."""
    out_dir.mkdir(parents=True, exist_ok=True)
    trainer.save_checkpoint(out_dir / CHECKPOINT, weights_only=True)
    with open(out_dir / "history.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, list(dict.fromkeys(key for row in module.history for key in row)))
        writer.writeheader()
        writer.writerows(module.history)
    saved = [out_dir / "history.csv"]
    weights = module.pixel_weights()
    if weights is not None:
        np.save(out_dir / "weights.npy", weights)
        saved += [out_dir / "weights.npy", weights_heatmap(weights, out_dir / "weights.png", digits, module.bias())]
    return saved


def train(cfg: Config, out_dir: Path, run_name: str | None = None, parent_run_id: str | None = None) -> dict:
    """Train, save the model to out_dir, record everything in one MLflow run; return validation metrics."""
    pl.seed_everything(cfg.seed, workers=True)
    if torch.cuda.is_available():
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS
    data = NormalizedMNIST(cfg.paths.normalized, cfg.optim.batch_size, cfg.optim.shuffle, cfg.seed)
    module = DigitClassifier(model=as_dict(cfg.model), optim=as_dict(cfg.optim))
    if not distributed.is_main_process():  # another DDP process: rank 0 records the run
        distributed.train_shard(make_trainer(cfg, logger=False), module, data, out_dir / CHECKPOINT)
        return {}

    with recorded_run(cfg, run_name or cfg.tracking.run_name, parent_run_id) as run:
        lineage.log_data_lineage(cfg)
        mlflow.log_params(store.logged_params(cfg))
        trainer = make_trainer(cfg, ActiveRunLogger())
        trainer.fit(module, datamodule=data)
        trainer.callbacks[0].raise_if_stopped()  # StopOnNonFiniteLoss: a NaN loss saves no model
        valid, _ = score(module, data.valid_x, data.valid_y, data.digits)

        saved = save(trainer, module, data.digits, out_dir)
        saved += write_explainers(module, data.valid_x, data.valid_y, data.digits, out_dir)
        mlflow.log_metrics({f"final_val_{k}": v for k, v in valid.items() if isinstance(v, float)})
        for path in saved:
            mlflow.log_artifact(str(path))
        if cfg.tracking.log_model:
            mlflow.pytorch.log_model(
                module.net.cpu(),
                name="model",
                input_example=data.valid_x[:4].cpu().numpy(),
                pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"],  # skip slow inference of requirements
            )
    return {"run_id": run.info.run_id, **valid}


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    config = validate(cfg)
    distributed.check_launch(config.trainer.strategy, HydraConfig.get().mode == RunMode.MULTIRUN)
    config, parent_run_id = sweep.join(config)  # a multirun job: the sweep's store and parent run
    run_name = run_names.run_name(config, list(HydraConfig.get().overrides.task))
    results = train(config, Path(HydraConfig.get().runtime.output_dir), run_name, parent_run_id)
    if not results:  # a DDP process other than rank 0
        return None
    print(f"train: run {results['run_id']}: validation accuracy {results['acc']:.4f}")
    return results["acc"]  # what an Optuna sweeper maximises


if __name__ == "__main__":
    run_hydra_app(main)
