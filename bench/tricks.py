"""Speed tricks switched on (or, for the one the project keeps, off) around the unchanged
`python -m pipeline.train`, so that bench/whole_process.py times each with and without it.

    python -m bench.tricks no_gc_freeze [overrides]   # without pipeline/config/cli.py's import-time GC pause
    python -m bench.tricks async_logging [overrides]  # MLflow's asynchronous metric logging
    python -m bench.tricks one_write_per_epoch [overrides]  # an epoch's metrics in one MLflow write
    python -m bench.tricks flush_every_second [overrides]   # the epochs' metrics written once a second at most
    python -m bench.tricks cpu_pins [overrides]       # the CPU kernels pinned, as dvc.yaml's train stage runs
"""

from __future__ import annotations

import runpy
import sys
import warnings


def no_gc_freeze() -> None:
    """pipeline/config/cli.py's long_lived_imports replaced by a no-op before pipeline.train imports it."""
    import contextlib

    import pipeline.config.cli

    pipeline.config.cli.long_lived_imports = contextlib.nullcontext


def async_logging() -> None:
    """Every mlflow.log_metrics call asynchronous (MLflow's own switch), flushed when the run ends."""
    import os

    os.environ["MLFLOW_ENABLE_ASYNC_LOGGING"] = "true"


def one_write_per_epoch() -> None:
    """pipeline/tracking/training_run.py's ActiveRunLogger holding an epoch's validation metrics until
    its training metrics arrive, so that each epoch is one MLflow write instead of two (Lightning
    logs the two at the end of every epoch, each with the epoch number); what is held is written
    when the next epoch's metrics arrive and when Lightning finalizes the logger."""
    from pipeline.config.cli import long_lived_imports

    with long_lived_imports():  # as pipeline.train imports them: timed alike
        import mlflow

        from pipeline.tracking.training_run import ActiveRunLogger
    held: dict[str, float] = {}
    held_epoch: int | None = None

    def write() -> None:
        if held:
            mlflow.log_metrics(dict(held), step=held_epoch)
            held.clear()

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        nonlocal held_epoch
        epoch = int(metrics.pop("epoch", step))
        if epoch != held_epoch:
            write()
        held_epoch = epoch
        held.update({key: float(value) for key, value in metrics.items()})

    ActiveRunLogger.log_metrics = log_metrics
    ActiveRunLogger.finalize = lambda self, status: write()


def flush_every_second() -> None:
    """pipeline/tracking/training_run.py's ActiveRunLogger holding the epochs' metrics and writing them
    in one MLflow write when a second has passed since its last write, and when Lightning finalizes
    the logger: a run's curves still grow live in the UI, but a short run makes a few writes, not two
    per epoch."""
    import time

    from pipeline.config.cli import long_lived_imports

    with long_lived_imports():  # as pipeline.train imports them: timed alike
        import mlflow
        from mlflow.entities import Metric

        from pipeline.tracking.training_run import ActiveRunLogger
    held: list = []
    last = [time.monotonic()]

    def write() -> None:
        if held:
            mlflow.MlflowClient().log_batch(mlflow.active_run().info.run_id, metrics=list(held))
            held.clear()
        last[0] = time.monotonic()

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        epoch = int(metrics.pop("epoch", step))
        now = int(time.time() * 1000)
        held.extend(Metric(key, float(value), now, epoch) for key, value in metrics.items())
        if time.monotonic() - last[0] >= 1.0:
            write()

    ActiveRunLogger.log_metrics = log_metrics
    ActiveRunLogger.finalize = lambda self, status: write()


def cpu_pins() -> None:
    """Not a speed trick: what reproducibility across processors costs. dvc.yaml's train and evaluate
    stages pin torch's CPU kernels and MKL's (ATEN_CPU_CAPABILITY, MKL_CBWR) before torch loads."""
    import os

    os.environ.update(ATEN_CPU_CAPABILITY="avx2", MKL_CBWR="AVX2")


TRICKS = {
    "no_gc_freeze": no_gc_freeze,
    "async_logging": async_logging,
    "one_write_per_epoch": one_write_per_epoch,
    "flush_every_second": flush_every_second,
    "cpu_pins": cpu_pins,
}


if __name__ == "__main__":
    trick, sys.argv = sys.argv[1], [sys.argv[0], *sys.argv[2:]]  # the rest: pipeline.train's overrides
    TRICKS[trick]()
    # As `python -m pipeline.train` (Hydra finds conf/ from the running file); its imports are cached.
    warnings.filterwarnings("ignore", "'pipeline.train' found in sys.modules", RuntimeWarning)
    runpy.run_module("pipeline.train", run_name="__main__", alter_sys=True)
