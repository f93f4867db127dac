"""Stage `train`: a Hydra app that trains the configured model with Lightning and records the run
in MLflow.

    python -m pipeline.train                           # conf/ as it is: the linear model
    python -m pipeline.train model=cnn                 # another model, with its own recipe
    python -m pipeline.train optim.lr=0.5 model=mlp    # Hydra overrides
    python -m pipeline.train -m optim.lr=0.1,0.5,1.0   # a Hydra multirun sweep

Writes model.ckpt, history.csv, predictions.csv (validation), test_predictions.csv and the model's
pictures (pipeline/model/outputs.py) to the Hydra run directory (`models/` when DVC runs it), then
records them in one MLflow run.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.config.startup import long_lived_imports

with long_lived_imports():  # what it saves: pipeline/config/startup.py
    import hydra
    import mlflow
    import pytorch_lightning as pl
    import torch
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import DictConfig

    from pipeline.config.cli import fail, refuse_config, run_hydra_app
    from pipeline.config.compose import as_dict, validate
    from pipeline.config.errors import ConfigError, PipelineError, StoreLost
    from pipeline.config.models import trained_with
    from pipeline.config.schema import Config
    from pipeline.data import normalized
    from pipeline.data.datamodule import NormalizedMNIST
    from pipeline.launch import preflight, pruning
    from pipeline.model import distributed
    from pipeline.model.classifier import CHECKPOINT, DigitClassifier, StopOnNonFiniteLoss
    from pipeline.model.metric_names import COLLAPSED_TAG, FIT_SECONDS, N_PARAMETERS
    from pipeline.model.metrics import collapse, collapse_warning, score
    from pipeline.model.outputs import replaced_outputs, write_outputs
    from pipeline.tracking import lineage, outages, registry, results, run_names, store, sweep_runs
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


def make_trainer(cfg: Config, logger, *callbacks) -> pl.Trainer:
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
        callbacks=[StopOnNonFiniteLoss(), StopOnSignal(), *callbacks],
    )


def to_record(cfg: Config, run, valid, test, fit_seconds, module, data, written, collapsed, tags, parent_run_id):
    """What the run has yet to receive once the outputs are written (pipeline/tracking/results.py):
    validation metrics (what every choice reads), test metrics (the record), the model, the gate's inputs."""
    n_parameters = sum(p.numel() for p in module.net.parameters() if p.requires_grad)
    model, gate = None, None
    if cfg.tracking.log_model:
        example = data.arrays["valid"][0][:4].tolist()
        model = {"config": as_dict(cfg.model), "digits": list(data.digits), "input_example": example}
    if model and parent_run_id is None and cfg.tracking.register:  # a sweep registers its best job, at the end
        name, digest = registry.model_name(cfg), data.digest("valid")
        gate = {"name": name, "digest": digest, "acc": valid["acc"], "loss": valid["loss"], "collapsed": collapsed}
        gate["test_acc"] = test["acc"]  # a tag of the version, for the record: the gate compares validation only
    return results.Results(
        run_id=run.info.run_id,
        tracking_uri=store.tracking_uri(cfg),
        metrics={
            **{f"final_val_{k}": v for k, v in valid.items() if isinstance(v, float)},
            **{f"test_{k}": v for k, v in test.items() if isinstance(v, float)},
            FIT_SECONDS: fit_seconds,  # what the report's ladder shows each model cost
            N_PARAMETERS: n_parameters,
        },
        tags=tags,
        artifacts=[path.name for path in written],
        model=model,
        model_uri_tag=model is not None and parent_run_id is not None,
        registry=gate,
        run_file=cfg.tracking.run_file,
    )


def train(
    cfg: Config,
    out_dir: Path,
    run_name: str | None = None,
    parent_run_id: str | None = None,
    data: normalized.NormalizedData | None = None,
) -> dict:
    """Train, save the model to out_dir, record everything in one MLflow run; return validation metrics
    (and test_acc, for the record)."""
    data = data or normalized.read_for(cfg)  # unreadable or other data: one line, before any run
    outages.tolerate_outages(cfg.tracking.outage_s)  # a tracking server restart does not fail the run
    pl.seed_everything(cfg.seed, workers=True)
    if torch.cuda.is_available():
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS
    datamodule = NormalizedMNIST(data, cfg.fit.batch_size, cfg.fit.shuffle, cfg.seed)
    module = DigitClassifier(model=as_dict(cfg.model), optim=as_dict(cfg.optim), loss=cfg.fit.loss.value)
    if not distributed.is_main_process():  # another DDP process: rank 0 records the run
        distributed.train_shard(make_trainer(cfg, logger=False), module, datamodule, out_dir / CHECKPOINT)
        return {}

    with recorded_run(cfg, run_name or cfg.tracking.run_name, parent_run_id) as run:
        lineage.log_data_lineage(cfg, data)
        mlflow.log_params({**store.logged_params(cfg), **data.as_params()})  # the data used, and asked for
        trial = pruning.sweep_trial()  # a job of an Optuna search reports to its trial
        trainer = make_trainer(cfg, ActiveRunLogger(), *([trial] if trial else []))
        started = time.perf_counter()
        trainer.fit(module, datamodule=datamodule)
        fit_seconds = time.perf_counter() - started
        trainer.callbacks[0].raise_if_stopped()  # StopOnNonFiniteLoss: a NaN loss saves no model
        if trial:
            trial.raise_if_pruned(cfg.fit.epochs)  # stopped by the search's pruner: no model either
        valid, logits = score(module, datamodule.valid_x, datamodule.valid_y)
        collapsed, tags = collapse(logits, data.arrays["valid"][1], data.digits), {}
        if collapsed:
            warning = collapse_warning(cfg.model["name"], trained_with(cfg), collapsed)
            print(f"train: warning: {warning}", file=sys.stderr)
            tags = {COLLAPSED_TAG: collapsed, "mlflow.note.content": f"Warning: {warning}"}
        test_x, test_y = datamodule.test_tensors()
        test, test_logits = score(module, test_x, test_y)  # once, after every choice: the record, choosing nothing
        with replaced_outputs(out_dir) as scratch:  # the model, and what its run has yet to receive, on disk first
            scored_test = (test_logits, data.arrays["test"][1])
            written = write_outputs(trainer, module, logits, data.arrays["valid"], scored_test, data.digits, scratch)
            pending = to_record(
                cfg, run, valid, test, fit_seconds, module, data, written, collapsed, tags, parent_run_id
            )
            pending.save(scratch)
        try:
            decision = results.record(pending, out_dir, module.net)
        except Exception as err:
            if outages.is_outage(err):  # the run waits on disk: one line says how to complete it
                raise StoreLost(
                    results.waiting(store.tracking_uri(cfg), cfg.tracking.outage_s, run.info.run_id, out_dir)
                ) from None
            raise
        if decision is not None:
            valid["registry"] = decision
    if cfg.tracking.run_file:
        results.write_run_file(cfg.tracking.run_file, run.info.run_id, run.info.experiment_id)
    return {"run_id": run.info.run_id, **valid, "test_acc": test["acc"]}


@contextmanager
def refusals_leave_no_run_dir(run_dir: Path) -> Iterator[None]:
    """A refusal before the run leaves nothing behind: Hydra's own files of this run (`.hydra/`,
    `train.log`, written before the task function runs) are removed, then the run directory if
    that leaves it empty (a DVC stage's models/ keeps what it holds). A single run's refusal ends
    the process here, as one line (an exception would have Hydra print the job's overrides first);
    a sweep's job raises it to the sweep."""
    try:
        yield
    except (PipelineError, SystemExit) as err:
        shutil.rmtree(run_dir / ".hydra", ignore_errors=True)
        (run_dir / f"{HydraConfig.get().job.name}.log").unlink(missing_ok=True)
        if run_dir.is_dir() and not any(run_dir.iterdir()):
            run_dir.rmdir()
        if isinstance(err, PipelineError) and HydraConfig.get().mode == RunMode.RUN:
            refuse_config(err) if isinstance(err, ConfigError) else fail(err)
        raise


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    with refusals_leave_no_run_dir(run_dir):  # the one check of this run: configuration, data, store
        config = validate(cfg)
        distributed.check_launch(config.trainer.strategy, hydra_cfg.mode == RunMode.MULTIRUN)
        config, parent_run_id = sweep_runs.join(config)  # a multirun job: the sweep's store and parent run
        preflight.check_model(config)
        data = preflight.check_before_run(config)
    run_name = run_names.run_name(config, list(hydra_cfg.overrides.task))
    try:
        outcome = train(config, run_dir, run_name, parent_run_id, data)
    except StoreLost as err:  # the model is saved: one line says how to record it (Hydra would print more first)
        if hydra_cfg.mode == RunMode.RUN:
            fail(err)
        raise
    if not outcome:  # a DDP process other than rank 0
        return None
    print(
        f"train: run {outcome['run_id']}: validation accuracy {outcome['acc']:.4f}, "
        f"test accuracy {outcome['test_acc']:.4f}"
    )
    return outcome["acc"]  # what an Optuna sweeper maximises: validation, never test


if __name__ == "__main__":
    run_hydra_app(main)
