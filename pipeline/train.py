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

import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.config.cli import long_lived_imports

with long_lived_imports():  # what it saves: pipeline/config/cli.py
    import hydra
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
    from pipeline.model.classifier import CHECKPOINT, DigitClassifier
    from pipeline.model.metrics import collapse, collapse_warning, score, trainable_parameters
    from pipeline.model.outputs import replaced_outputs, write_outputs
    from pipeline.model.trainer import check_launch, fit, is_main_process, make_trainer, seed, train_shard
    from pipeline.tracking import run_names, sweep_runs
    from pipeline.tracking.training_run import Trained, training_run


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
    seed(cfg.seed)
    datamodule = NormalizedMNIST(data, cfg.fit.batch_size, cfg.fit.shuffle, cfg.seed)
    module = DigitClassifier(model=as_dict(cfg.model), optim=as_dict(cfg.optim), loss=cfg.fit.loss.value)
    if not is_main_process():  # another DDP process: rank 0 records the run
        train_shard(cfg, module, datamodule, out_dir / CHECKPOINT)
        return {}

    with training_run(cfg, data, run_name or cfg.tracking.run_name, parent_run_id) as run:
        trial = pruning.sweep_trial()  # a job of an Optuna search reports to its trial
        trainer = make_trainer(cfg, run.logger, *run.callbacks, *([trial] if trial else []))
        fit_seconds = fit(trainer, module, datamodule)  # a NaN loss: Diverged, no model
        if trial:
            trial.raise_if_pruned(cfg.fit.epochs)  # stopped by the search's pruner: no model either
        valid, valid_logits = score(module, datamodule.valid_x, datamodule.valid_y)
        collapsed, warning = collapse_check(cfg, valid_logits, data)
        test, test_logits = score(module, *datamodule.test_tensors())  # once, after every choice: choosing nothing
        with replaced_outputs(out_dir) as scratch:  # the model, and what its run has yet to receive, on disk first
            valid_scored, test_scored = (*data.arrays["valid"], valid_logits), (*data.arrays["test"], test_logits)
            written = write_outputs(trainer, module, scratch, digits=data.digits, valid=valid_scored, test=test_scored)
            pending = run.results(
                Trained(
                    valid=valid,
                    test=test,
                    fit_seconds=fit_seconds,
                    n_parameters=trainable_parameters(module.net),
                    artifacts=written,
                    collapsed=collapsed,
                    warning=warning,
                )
            )
            pending.save(scratch)
        decision = run.record(pending, out_dir, module.net)
    if decision is not None:
        valid["registry"] = decision
    return {"run_id": run.run_id, **valid, "test_acc": test["acc"]}


def collapse_check(cfg: Config, logits, data: normalized.NormalizedData) -> tuple[str | None, str | None]:
    """How the model answers one digit for (nearly) every validation image, and the warning printed
    about it; (None, None) for a model that tells the digits apart."""
    collapsed = collapse(logits, data.arrays["valid"][1], data.digits)
    if not collapsed:
        return None, None
    warning = collapse_warning(cfg.model["name"], trained_with(cfg), collapsed)
    print(f"train: warning: {warning}", file=sys.stderr)
    return collapsed, warning


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
        check_launch(config.trainer.strategy, hydra_cfg.mode == RunMode.MULTIRUN)
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
