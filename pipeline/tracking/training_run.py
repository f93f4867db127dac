"""A training's MLflow run, as the training sees it: what the run receives, not how MLflow is driven.

    with training_run(cfg, data, run_name, parent_run_id) as run:  # params and the data's lineage
        trainer = make_trainer(cfg, run.logger, *run.callbacks)      # per-epoch metrics; signals
        ...
        pending = run.results(trained)        # what the run has yet to receive, saved beside the model
        decision = run.record(pending, out_dir, net)   # sent, and through the registry's gate

The run is MLflow's `with mlflow.start_run()` (lifecycle.recorded_run: ended FINISHED, FAILED or
KILLED); a tracking server away for up to tracking.outage_s is waited for, and one away for longer
ends the training with StoreLost, its model saved and its run waiting on disk (results.py).

One channel to MLflow: its fluent API, inside the run. Lightning's own MLFlowLogger would write the
same run through a second client, log the module's hyperparameters a second time under
slash-separated names, and add an `epoch` metric that only repeats the step. `ActiveRunLogger`
hands Lightning's epoch-level metrics to the active run with the epoch as the step, and logs
nothing else.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import mlflow
from pytorch_lightning.loggers import Logger
from pytorch_lightning.utilities import rank_zero_only

from pipeline.config.compose import as_dict
from pipeline.config.errors import StoreLost
from pipeline.config.schema import Config
from pipeline.data.normalized import NormalizedData
from pipeline.model.metric_names import COLLAPSED_TAG, FIT_SECONDS, N_PARAMETERS
from pipeline.tracking import registry, results, store
from pipeline.tracking.lifecycle import StopOnSignal, recorded_run
from pipeline.tracking.lineage import log_data_lineage


class ActiveRunLogger(Logger):
    @property
    def name(self) -> str:
        return "mlflow"

    @property
    def version(self) -> str | None:
        run = mlflow.active_run()
        return run.info.run_id if run else None

    @rank_zero_only
    def log_hyperparams(self, params, *args, **kwargs) -> None:
        """Nothing: the run's params are the flattened config, logged once when the run starts."""

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        epoch = metrics.pop("epoch", step)  # Lightning adds the epoch to every call
        mlflow.log_metrics({key: float(value) for key, value in metrics.items()}, step=int(epoch))


@dataclass(frozen=True, kw_only=True)
class Trained:
    """What a training has to record once its outputs are written."""

    valid: dict  # the final model's scores on the validation split: what every choice reads
    test: dict  # on the test split, scored once after every choice: the record
    fit_seconds: float  # what the report's ladder shows each model cost
    n_parameters: int
    artifacts: list[Path]  # the files written (model/outputs.py)
    collapsed: str | None = None  # how the model answers one digit for (nearly) every image
    warning: str | None = None  # the line said about it


class TrainingRun:
    """The active run of one training (made by `training_run`)."""

    def __init__(self, cfg: Config, data: NormalizedData, run, parent_run_id: str | None):
        self.cfg, self.data, self.run, self.parent_run_id = cfg, data, run, parent_run_id
        self.logger = ActiveRunLogger()
        self.callbacks = [StopOnSignal()]  # SIGINT/SIGTERM stop the fit at a batch boundary: the run ends KILLED

    @property
    def run_id(self) -> str:
        return self.run.info.run_id

    def results(self, trained: Trained) -> results.Results:
        """What the run has yet to receive (results.py): validation metrics, test metrics, the model,
        the registry gate's inputs (a sweep registers its best job instead, at its end)."""
        cfg, data, model, gate = self.cfg, self.data, None, None
        if cfg.tracking.log_model:
            example = data.arrays["valid"][0][:4].tolist()
            model = {"config": as_dict(cfg.model), "digits": list(data.digits), "input_example": example}
        if model and self.parent_run_id is None and cfg.tracking.register:
            valid = trained.valid
            gate = {"name": registry.model_name(cfg), "digest": data.digest("valid"), "acc": valid["acc"]}
            gate |= {"loss": valid["loss"], "collapsed": trained.collapsed}
            gate["test_acc"] = trained.test["acc"]  # a tag of the version, for the record: the gate reads validation
        tags = {}
        if trained.collapsed:
            tags = {COLLAPSED_TAG: trained.collapsed, "mlflow.note.content": f"Warning: {trained.warning}"}
        return results.Results(
            run_id=self.run_id,
            tracking_uri=store.tracking_uri(cfg),
            metrics={
                **{f"final_val_{k}": v for k, v in trained.valid.items() if isinstance(v, float)},
                **{f"test_{k}": v for k, v in trained.test.items() if isinstance(v, float)},
                FIT_SECONDS: trained.fit_seconds,
                N_PARAMETERS: trained.n_parameters,
            },
            tags=tags,
            artifacts=[path.name for path in trained.artifacts],
            model=model,
            model_uri_tag=model is not None and self.parent_run_id is not None,
            registry=gate,
            run_file=cfg.tracking.run_file,
        )

    def record(self, pending: results.Results, out_dir: Path, net) -> dict | None:
        """Send `pending` (saved in out_dir) to the run; the registry gate's decision, when it registers.
        StoreLost when the store stays away: one line says how to complete the run later."""
        try:
            return results.record(pending, out_dir, net)
        except Exception as err:
            if results.is_outage(err):
                uri, outage_s = store.tracking_uri(self.cfg), self.cfg.tracking.outage_s
                raise StoreLost(results.waiting(uri, outage_s, self.run_id, out_dir)) from None
            raise


@contextmanager
def training_run(
    cfg: Config, data: NormalizedData, run_name: str | None, parent_run_id: str | None = None
) -> Iterator[TrainingRun]:
    """The training's run, started with its params (the flattened config and the data used) and its
    data's lineage; ended FINISHED when the block succeeds, and then named in tracking.run_file."""
    results.tolerate_outages(cfg.tracking.outage_s)  # a tracking server restart does not fail the run
    with recorded_run(cfg, run_name, parent_run_id) as run:
        log_data_lineage(cfg, data)
        mlflow.log_params({**store.logged_params(cfg), **data.as_params()})  # the data used, and asked for
        yield TrainingRun(cfg, data, run, parent_run_id)
    if cfg.tracking.run_file:
        results.write_run_file(cfg.tracking.run_file, run.info.run_id, run.info.experiment_id)
