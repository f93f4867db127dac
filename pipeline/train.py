"""Stage `train`: a Hydra app that trains the configured model with Lightning and records
the run in MLflow.

    python -m pipeline.train                           # conf/ as it is
    python -m pipeline.train optim.lr=0.5 model=mlp    # Hydra overrides
    python -m pipeline.train -m optim.lr=0.1,0.5,1.0   # a Hydra multirun sweep

Writes model.ckpt, history.csv, predictions.csv (each validation image's logit), and for the
linear model weights.npy and weights.png to the Hydra run directory (`models/` when DVC runs it).
"""

from __future__ import annotations

import csv
import json
import logging
import os
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.startup import long_lived_imports

with long_lived_imports():  # what it saves: pipeline/startup.py
    import hydra
    import mlflow
    import numpy as np
    import pytorch_lightning as pl
    import torch
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import DictConfig

    from pipeline import distributed, inputs, preflight, store_check
    from pipeline.atomic import atomic_directory, atomic_file
    from pipeline.cli import fail, refuse_config, run_hydra_app
    from pipeline.config import Config, ConfigError, as_dict, validate
    from pipeline.datamodule import NormalizedMNIST
    from pipeline.errors import PipelineError
    from pipeline.metrics import FIT_SECONDS, N_PARAMETERS, score
    from pipeline.model import CHECKPOINT, DigitClassifier, StopOnNonFiniteLoss
    from pipeline.predict import served_model
    from pipeline.report.explain import write_explainers
    from pipeline.report.figures import weights_heatmap
    from pipeline.report.predictions import FILE as PREDICTIONS
    from pipeline.report.predictions import write_predictions
    from pipeline.tracking import lineage, registry, run_names, store, sweep_runs
    from pipeline.tracking.epoch_logger import ActiveRunLogger
    from pipeline.tracking.lifecycle import StopOnSignal, recorded_run


def quiet_lightning() -> None:
    """Silence two lines Lightning 2.6 prints on every run that a user can do nothing about: torch
    2.14's FutureWarning for the LeafSpec its CombinedLoader builds, and its LitLogger advertisement.
    Called where the Trainer is made: a joblib worker trains without importing this module's caller."""
    warnings.filterwarnings("ignore", r"`isinstance\(treespec, LeafSpec\)` is deprecated", FutureWarning)
    logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(
        lambda record: not record.getMessage().startswith("💡 Tip: For seamless cloud logging")
    )


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


@contextmanager
def replaced_outputs(out_dir: Path) -> Iterator[Path]:
    """A scratch directory that replaces out_dir, and so the previous training's outputs, all at once
    when the block succeeds. DVC keeps `models/` while the train stage runs (`persist: true` in
    dvc.yaml): a refused value or a failed training leaves the previous model whole, and a model
    without weights.npy (mlp) leaves none behind. Hydra's own files of this run (`.hydra/`, the job
    log, open for writing: a rename keeps the handle) move into the new directory."""
    with atomic_directory(out_dir) as scratch:
        yield scratch
        for entry in [*out_dir.glob(".hydra"), *out_dir.glob("*.log")]:
            entry.rename(scratch / entry.name)


def write_run_file(path: str, run) -> None:
    """The run's id in a small JSON file that dvc.yaml declares a metrics file (mlflow_run.json), so
    `dvc exp show` and `dvc metrics diff` name each experiment's run. Not in models/ nor in
    metrics.json: stage outputs, whose hashes dvc.lock records, and a run id differs every run,
    so `dvc repro --force` would no longer reproduce dvc.lock byte for byte. Only the ids: the
    registry's decision is on the model version's tags, and `dvc exp show` stays within 120 columns."""
    with atomic_file(path) as scratch:
        record = {"mlflow_run_id": run.info.run_id, "mlflow_experiment_id": run.info.experiment_id}
        scratch.write_text(json.dumps(record, indent=2) + "\n")


def train(
    cfg: Config,
    out_dir: Path,
    run_name: str | None = None,
    parent_run_id: str | None = None,
    identity: inputs.DataIdentity | None = None,
) -> dict:
    """Train, save the model to out_dir, record everything in one MLflow run; return validation metrics."""
    identity = identity or inputs.check_identity(cfg)  # unreadable or other data: one line, before any run
    store_check.tolerate_outages(cfg.tracking.outage_s)  # a tracking server restart does not fail the run
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
        mlflow.log_params({**store.logged_params(cfg), **identity.as_params()})  # the data used, and asked for
        trainer = make_trainer(cfg, ActiveRunLogger())
        started = time.perf_counter()
        trainer.fit(module, datamodule=data)
        fit_seconds = time.perf_counter() - started
        trainer.callbacks[0].raise_if_stopped()  # StopOnNonFiniteLoss: a NaN loss saves no model
        valid, logits = score(module, data.valid_x, data.valid_y, data.digits)

        n_parameters = sum(p.numel() for p in module.net.parameters() if p.requires_grad)
        mlflow.log_metrics(
            {
                **{f"final_val_{k}": v for k, v in valid.items() if isinstance(v, float)},
                FIT_SECONDS: fit_seconds,  # what the report's ladder shows each model cost
                N_PARAMETERS: n_parameters,
            }
        )
        with replaced_outputs(out_dir) as scratch:
            saved = save(trainer, module, data.digits, scratch)
            saved.append(write_predictions(scratch / PREDICTIONS, logits, data.valid_y.cpu().numpy()))
            saved += write_explainers(module, data.valid_x, data.valid_y, data.digits, scratch)
            for path in saved:
                mlflow.log_artifact(str(path))
        if cfg.tracking.log_model:
            model_uri = served_model.log(
                module.net.cpu(), as_dict(cfg.model), data.digits, data.valid_x[:4].cpu().numpy(), name="model"
            )
            if parent_run_id is not None:  # a sweep registers its best child, at the end
                mlflow.set_tag(registry.MODEL_URI_TAG, model_uri)
            elif cfg.tracking.register:
                valid["registry"] = registry.gate_run(cfg, run.info.run_id, model_uri, valid)
    if cfg.tracking.run_file:
        write_run_file(cfg.tracking.run_file, run)
    return {"run_id": run.info.run_id, **valid}


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    try:
        config = validate(cfg)
        distributed.check_launch(config.trainer.strategy, HydraConfig.get().mode == RunMode.MULTIRUN)
        config, parent_run_id = sweep_runs.join(config)  # a multirun job: the sweep's store and parent run
        identity = preflight.check_before_run(config)  # hardware, data, store (also where no callback ran: DVC)
    except ConfigError as err:  # here, not through Hydra (which would print its own line first)
        refuse_config(err)
    except PipelineError as err:
        fail(err)
    run_name = run_names.run_name(config, list(HydraConfig.get().overrides.task))
    results = train(config, Path(HydraConfig.get().runtime.output_dir), run_name, parent_run_id, identity)
    if not results:  # a DDP process other than rank 0
        return None
    print(f"train: run {results['run_id']}: validation accuracy {results['acc']:.4f}")
    return results["acc"]  # what an Optuna sweeper maximises


if __name__ == "__main__":
    run_hydra_app(main)
