"""Stage `train`: a Hydra app that trains the configured model with Lightning and records
the run in MLflow.

    python -m pipeline.train                           # conf/ as it is
    python -m pipeline.train optim.lr=0.5 model=mlp    # Hydra overrides
    python -m pipeline.train -m optim.lr=0.1,0.5,1.0   # a Hydra multirun sweep

Writes model.ckpt, history.csv and weights.npy to the Hydra run directory (`models/`
when DVC runs it).
"""

from __future__ import annotations

import csv
import logging
import os
import sys
import warnings
from pathlib import Path

from pipeline.startup import long_lived_imports

with long_lived_imports():  # ~2 s less start-up and exit per process (pipeline/startup.py)
    import hydra
    import mlflow
    import mlflow.pytorch
    import numpy as np
    import pytorch_lightning as pl
    import torch
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import DictConfig, OmegaConf
    from pytorch_lightning.loggers import MLFlowLogger

    from pipeline import distributed, inputs, preflight, safety, store_check, sweep, tracking
    from pipeline.config import Config, run_hydra_app, validate
    from pipeline.datamodule import NormalizedMNIST
    from pipeline.errors import PipelineError
    from pipeline.evaluate import CHECKPOINT, score
    from pipeline.explain import write_explainers
    from pipeline.figures import weights_heatmap
    from pipeline.model import DigitClassifier


def plain(section) -> dict:
    """A config section as a dict of plain values (enums by name)."""
    return OmegaConf.to_container(OmegaConf.structured(section), enum_to_str=True)


def not_litlogger_tip(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith("💡 Tip: For seamless cloud logging")


def quiet_lightning() -> None:
    """Silence two lines Lightning 2.6 prints on every run that a user can do nothing about: torch
    2.14's FutureWarning for the LeafSpec its CombinedLoader builds, and its LitLogger advertisement.
    Called where the Trainer is made: a joblib worker trains without importing this module."""
    warnings.filterwarnings("ignore", r"`isinstance\(treespec, LeafSpec\)` is deprecated", FutureWarning)
    logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(not_litlogger_tip)


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
        log_every_n_steps=0,  # metrics are logged per epoch; no per-step bookkeeping
        logger=logger,
        callbacks=[safety.StopOnNonFiniteLoss(), safety.StopOnSignal()],
    )


def write_history(history: list[dict], path: Path) -> None:
    columns = list(dict.fromkeys(key for row in history for key in row))
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        writer.writerows(history)


def train(cfg: Config, out_dir: Path, run_name: str | None = None, tags: dict | None = None,
          data: inputs.DataIdentity | None = None) -> dict:
    """Train, save the model to out_dir, record everything in one MLflow run; return validation metrics."""
    data = data or inputs.check_identity(cfg)
    store_check.tolerate_outages(cfg.tracking.outage_s)  # a tracking server restart does not fail the run
    pl.seed_everything(cfg.seed, workers=True)
    if torch.cuda.is_available():
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS
    out_dir.mkdir(parents=True, exist_ok=True)
    datamodule = NormalizedMNIST(cfg.paths.normalized, cfg.optim.batch_size, cfg.optim.shuffle, cfg.seed,
                                 cfg.trainer.batches_per_step)
    module = DigitClassifier(model=plain(cfg.model), optim=plain(cfg.optim))
    uri = tracking.tracking_uri(cfg)
    if not distributed.is_main_process():  # another DDP process: rank 0 records the run
        distributed.train_shard(make_trainer(cfg, logger=False), module, datamodule, out_dir / CHECKPOINT)
        return {}
    client, run_id = tracking.start_run(cfg, run_name, tags)
    with safety.recorded(client, run_id):  # ends the run FINISHED, FAILED or KILLED
        tracking.log_data_lineage(client, run_id, cfg)
        # synchronous=False: an epoch does not wait for the database (a sqlite commit can take
        # longer than the epoch); wait_for_logged checks that everything arrived.
        logger = MLFlowLogger(experiment_name=cfg.tracking.experiment, tracking_uri=uri, run_id=run_id,
                              synchronous=False)
        params = {**tracking.logged_params(cfg), **data.as_params()}  # the data used, beside the data asked for
        logger.log_hyperparams(params)
        trainer = make_trainer(cfg, logger)
        trainer.fit(module, datamodule=datamodule)
        tracking.wait_for_logged(client, run_id, params, len(module.history))
        safety.raise_if_diverged(trainer)
        digits = datamodule.digits
        valid, _ = score(module, datamodule.valid_x, datamodule.valid_y, digits)

        trainer.save_checkpoint(out_dir / CHECKPOINT, weights_only=True)
        write_history(module.history, out_dir / "history.csv")
        artifacts = [out_dir / "history.csv"]
        weights = module.pixel_weights()
        if weights is not None:
            np.save(out_dir / "weights.npy", weights)
            heatmap = weights_heatmap(weights, out_dir / "weights.png", digits, module.bias())
            artifacts += [out_dir / "weights.npy", heatmap]
        artifacts += write_explainers(module, datamodule.valid_x, datamodule.valid_y, digits, out_dir)

        mlflow.set_tracking_uri(uri)
        with mlflow.start_run(run_id=run_id):
            mlflow.log_metrics({f"final_val_{k}": v for k, v in valid.items() if isinstance(v, float)})
            for path in artifacts:
                mlflow.log_artifact(str(path))
            if cfg.tracking.log_model:
                mlflow.pytorch.log_model(
                    module.net.cpu(),
                    name="model",
                    input_example=datamodule.valid_x[:4].cpu().numpy(),
                    pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"],  # skip slow inference of requirements
                )
    return {"run_id": run_id, **valid}


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float:
    try:
        config = validate(cfg)
        distributed.check_launch(config.trainer.strategy, HydraConfig.get().mode == RunMode.MULTIRUN)
        config, tags = sweep.join(config)  # a multirun job: the sweep's tracking URI and parent run
        data = preflight.check_before_run(config)  # hardware, data, tracking store (also where no callback ran: DVC)
    except PipelineError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(1) from None
    hydra_cfg = HydraConfig.get()
    run_name = config.tracking.run_name or hydra_cfg.job.override_dirname or None
    results = train(config, Path(hydra_cfg.runtime.output_dir), run_name=run_name, tags=tags, data=data)
    if not results:  # a DDP process other than rank 0
        return None
    print(f"train: run {results['run_id']}: validation accuracy {results['acc']:.4f}")
    return results["acc"]  # what an Optuna sweeper maximises


if __name__ == "__main__":
    run_hydra_app(main)
