"""A sweep's runs as its jobs and readers see them.

`join` points a multirun job at the sweep's tracking URI and parent run (published by the
MlflowSweep callback, pipeline/launch/sweep.py, in `<sweep dir>/mlflow_sweep.json`, read by
`published`) and names its run after its swept values (`job_name`); a job in another process exits
when the sweep's process is gone (`exit_when_gone`); `swept_keys` says which keys a
sweep varies; `children` is the one query for a parent's child runs (the callback's best run,
`compare`), `finished` those that count (a resumed sweep runs the other jobs again).
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from dataclasses import replace
from pathlib import Path

import psutil
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.types import RunMode
from mlflow import MlflowClient
from omegaconf import DictConfig, OmegaConf

from pipeline.config.errors import PipelineError
from pipeline.config.schema import Config
from pipeline.model.metric_names import FINAL_VAL_ACC

TARGET = "pipeline.launch.sweep.MlflowSweep"  # the callback, as registered under hydra.callbacks
SWEEP_FILE = "mlflow_sweep.json"
PARENT_TAG = "mlflow.parentRunId"  # what MLflow's parent_run_id sets on a child


_watched: set[int] = set()  # the sweep processes this process watches (a joblib worker runs many jobs)


def join(cfg: Config) -> tuple[Config, str | None]:
    """In a multirun job: cfg pointed at the sweep's tracking URI and named after its swept
    values, and the parent run's id. Outside a sweep (or without the callback): (cfg, None)."""
    hydra_cfg = HydraConfig.get()
    registered = any(cb.get("_target_") == TARGET for cb in (hydra_cfg.callbacks or {}).values())
    if hydra_cfg.mode != RunMode.MULTIRUN or not registered:
        return cfg, None
    sweep = published(hydra_cfg.sweep.dir)
    if sweep is None:  # Hydra turns a callback's exception into a warning: stop here instead
        raise PipelineError(
            f"{Path(hydra_cfg.sweep.dir) / SWEEP_FILE}: not found; the MlflowSweep callback failed to start "
            "the sweep (see its warning above)"
        )
    if sweep["pid"] != os.getpid() and sweep["pid"] not in _watched:  # a job in another process
        _watched.add(sweep["pid"])
        exit_when_gone(sweep["pid"], sweep["started"])
    run_name = cfg.tracking.run_name or job_name(hydra_cfg.overrides.task, sweep["swept_keys"]) or None
    tracking_cfg = replace(cfg.tracking, uri=sweep["tracking_uri"], run_name=run_name)
    return replace(cfg, tracking=tracking_cfg), sweep["parent_run_id"]


def live_process(pid: int, started: float) -> psutil.Process | None:
    """Process `pid` if it is alive and is the one started at `started` (not a reused pid)."""
    try:
        process = psutil.Process(pid)
        same = abs(process.create_time() - started) <= 1.0
        return process if same and process.status() != psutil.STATUS_ZOMBIE else None
    except psutil.NoSuchProcess:
        return None


def exit_when_gone(pid: int, started: float, poll_s: float = 1.0) -> None:
    """Watch process `pid` (a sweep's main process) from a daemon thread and SIGKILL this process
    once it is gone: a job does not outlive its sweep (its run is then an orphan that the next
    training or `mark-orphans` marks KILLED)."""

    def watch() -> None:
        while live_process(pid, started):
            time.sleep(poll_s)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name=f"exit-when-{pid}-is-gone", daemon=True).start()


def published(sweep_dir: str | Path) -> dict | None:
    """What the MlflowSweep callback published for the sweep in `sweep_dir` (None: nothing)."""
    sweep_file = Path(sweep_dir) / SWEEP_FILE
    return json.loads(sweep_file.read_text()) if sweep_file.is_file() else None


def parse(overrides) -> list:
    return OverridesParser.create().parse_overrides(list(overrides))


def job_name(overrides, swept: list[str]) -> str:
    """A job's name: its values of the swept keys as its overrides give them (`optim.lr=0.5,seed=1`)."""
    return ",".join(o.input_line for o in parse(overrides) if o.key_or_group in swept)


def swept_keys(config: DictConfig) -> list[str]:
    """The keys a sweep varies: sweep overrides (`optim.lr=0.1,1`) and a sweeper's search space."""
    keys = [o.key_or_group for o in parse(config.hydra.overrides.task) if o.is_sweep_override()]
    search_space = OmegaConf.select(config, "hydra.sweeper.params") or {}
    return keys + [key for key in search_space if key not in keys]


def children(client: MlflowClient, parent) -> list:
    """The parent's child runs, best first; on a tie the one that started first (a sweep's one rule,
    the Optuna sweeper's too: the first trial in trial order wins)."""
    return client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.`{PARENT_TAG}` = '{parent.info.run_id}'",
        order_by=[f"metrics.{FINAL_VAL_ACC} DESC", "attributes.start_time ASC"],
        max_results=10_000,
    )


def counts(run) -> bool:
    """A child that counts: FINISHED with a final validation accuracy."""
    return run.info.status == "FINISHED" and FINAL_VAL_ACC in run.data.metrics


def finished(client: MlflowClient, parent) -> list:
    """The parent's children that count, best first."""
    return [run for run in children(client, parent) if counts(run)]
