"""Lightning's per-epoch metrics into the active MLflow run.

A training run has one channel to MLflow: its fluent API, inside `mlflow.start_run` (see
lifecycle.recorded_run). Lightning's own MLFlowLogger would write the same run through a second
client, log the module's hyperparameters a second time under slash-separated names, and add an
`epoch` metric that only repeats the step. This logger hands Lightning's epoch-level metrics to
the active run with the epoch as the step, and logs nothing else.
"""

from __future__ import annotations

import mlflow
from pytorch_lightning.loggers import Logger
from pytorch_lightning.utilities import rank_zero_only


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
