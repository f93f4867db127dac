"""Speed tricks switched on (or, for the one the project keeps, off) around the unchanged
`python -m pipeline.train`, so that bench/whole_process.py times each with and without it.

    python -m bench.tricks no_gc_freeze [overrides]   # without pipeline/startup.py's import-time GC pause
    python -m bench.tricks async_logging [overrides]  # MLflow's asynchronous metric logging
"""

from __future__ import annotations

import runpy
import sys
import warnings


def no_gc_freeze() -> None:
    """pipeline/startup.py's long_lived_imports replaced by a no-op before pipeline.train imports it."""
    import contextlib

    import pipeline.startup

    pipeline.startup.long_lived_imports = contextlib.nullcontext


def async_logging() -> None:
    """Every mlflow.log_metrics call asynchronous (MLflow's own switch), flushed when the run ends."""
    import os

    os.environ["MLFLOW_ENABLE_ASYNC_LOGGING"] = "true"


if __name__ == "__main__":
    trick, sys.argv = sys.argv[1], [sys.argv[0], *sys.argv[2:]]  # the rest: pipeline.train's overrides
    {"no_gc_freeze": no_gc_freeze, "async_logging": async_logging}[trick]()
    # As `python -m pipeline.train` (Hydra finds conf/ from the running file); its imports are cached.
    warnings.filterwarnings("ignore", "'pipeline.train' found in sys.modules", RuntimeWarning)
    runpy.run_module("pipeline.train", run_name="__main__", alter_sys=True)
