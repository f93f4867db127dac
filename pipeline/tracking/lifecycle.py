"""How a run starts and ends: FINISHED, FAILED (an error) or KILLED (SIGINT/SIGTERM, or its
process died), never left RUNNING, with the reason in the `end_reason` tag.

`recorded_run` is MLflow's `with mlflow.start_run(...)` plus two things it cannot know: a signal
ends the run KILLED (exit 128 + signal number, the shell's convention), and the run carries its
process (`process.*` tags: host, pid and the pid's start time, `process_tags`), so a run left
RUNNING by `kill -9` is found (`writer_is_gone`: a reused pid has another start time) and marked
KILLED later (`mark_orphans`: before each training, and `python -m pipeline.tracking mark-orphans`).
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import mlflow
import psutil
from mlflow import MlflowClient
from mlflow.entities import Run
from pytorch_lightning.callbacks import Callback

from pipeline.config.errors import Interrupted, StoreLost, TrialPruned
from pipeline.config.schema import Config
from pipeline.config.secrets import redact
from pipeline.tracking import store

END_REASON_TAG = "end_reason"  # why a run ended FAILED or KILLED
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
HOST_TAG, PID_TAG, STARTED_TAG = "process.host", "process.pid", "process.started"  # the process writing a run


def process_tags() -> dict[str, str]:
    me = psutil.Process()
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(me.pid), STARTED_TAG: repr(me.create_time())}


def writer_is_gone(tags: dict) -> bool:
    """True when the run's writing process (on this host) no longer exists; False when it is
    alive, or unknown (another host, or a run without process tags)."""
    if tags.get(HOST_TAG) != socket.gethostname() or PID_TAG not in tags:
        return False
    try:
        started = psutil.Process(int(tags[PID_TAG])).create_time()
    except psutil.NoSuchProcess:
        return True
    return abs(started - float(tags.get(STARTED_TAG, started))) > 1.0  # the pid was reused


def end(client: MlflowClient, run_id: str, status: str, reason: str | None = None) -> None:
    if reason:
        client.set_tag(run_id, END_REASON_TAG, reason[:5000])
    client.set_terminated(run_id, status)


def mark_orphans(client: MlflowClient, experiment_ids: list[str]) -> list[str]:
    """Mark KILLED each RUNNING run whose process on this host is gone (`kill -9`, power loss)."""
    orphans = []
    for run in client.search_runs(experiment_ids, "attributes.status = 'RUNNING'", max_results=10_000):
        tags = run.data.tags
        if writer_is_gone(tags):
            end(
                client,
                run.info.run_id,
                "KILLED",
                f"orphaned: process {tags[PID_TAG]} on {tags[HOST_TAG]} ended without closing the run",
            )
            orphans.append(run.info.run_id)
    return orphans


def received_signal() -> str | None:
    """The name of the signal that interrupted the last run of this process, if one did."""
    return signal.Signals(_received[0]).name if _received else None


# Signals received during `recorded_run`, and whether a fit is running. An exception raised by
# the signal handler in the middle of an MLflow write can leave the process's own sqlite
# transaction open and the store locked; during a fit the handler only takes note and
# StopOnSignal raises at the next batch boundary, where no write is in progress.
_received: list[int] = []
_fitting = False


class StopOnSignal(Callback):
    def on_train_start(self, trainer, pl_module) -> None:
        global _fitting
        _fitting = True

    def on_train_end(self, trainer, pl_module) -> None:
        global _fitting
        _fitting = False

    def on_train_batch_end(self, *args) -> None:
        if _received:
            raise Interrupted(signal.Signals(_received[0]).name)

    on_validation_batch_end = on_train_batch_end


def leave_for_record(reason: str) -> None:
    """Leave the active run, whose store is away, to `python -m pipeline.tracking record`: one
    quick try each, without retries, to say why and to end it FAILED (the record resumes it).
    MLflow's end_run forgets the run before it calls the store, so the run is no longer active
    in this process whatever the store answers (the next job of a sequential sweep starts clean)."""
    quick = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}
    saved = {key: os.environ.get(key) for key in quick}
    os.environ.update(quick)
    try:
        with suppress(Exception):
            mlflow.set_tag(END_REASON_TAG, reason[:5000])
        with suppress(Exception):
            mlflow.end_run("FAILED")
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def signals_end_the_run(run_id: str) -> Iterator[None]:
    """Within an active run: SIGINT/SIGTERM end it KILLED and exit 128 + signal; a sweep's pruner
    ends it KILLED too (TrialPruned, re-raised for the sweeper); an error tags `end_reason` (and
    `mlflow.start_run`'s own exit ends the run FAILED)."""
    global _fitting
    _received.clear()
    _fitting = False

    def interrupt(signum, _frame):
        _received.append(signum)
        if not _fitting:
            raise Interrupted(signal.Signals(signum).name)

    # Python lets only the main thread set handlers; elsewhere the defaults stay.
    in_main = threading.current_thread() is threading.main_thread()
    previous = {signum: signal.signal(signum, interrupt) for signum in STOP_SIGNALS} if in_main else {}
    try:
        yield
    except BaseException as err:
        for signum in previous:  # a second Ctrl+C must not cut the bookkeeping short
            signal.signal(signum, signal.SIG_IGN)
        # Lightning answers a KeyboardInterrupt inside fit with sys.exit(1): `_received` says why.
        if _received or isinstance(err, KeyboardInterrupt):
            name = signal.Signals(_received[0]).name if _received else "KeyboardInterrupt"
            mlflow.set_tag(END_REASON_TAG, f"interrupted by {name}")
            mlflow.end_run("KILLED")
            print(f"train: interrupted by {name}; MLflow run {run_id} marked KILLED", file=sys.stderr)
            raise SystemExit(128 + (_received[0] if _received else signal.SIGINT)) from None
        if isinstance(err, StoreLost):  # the store is away: do not wait for it again
            leave_for_record(str(err))
            raise
        mlflow.set_tag(END_REASON_TAG, redact(f"{type(err).__name__}: {err}")[:5000])
        if isinstance(err, TrialPruned):
            mlflow.end_run("KILLED")
        raise
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextmanager
def recorded_run(cfg: Config, run_name: str | None = None, parent_run_id: str | None = None) -> Iterator[Run]:
    """`with mlflow.start_run(...)` in the configured store and experiment, as a child of
    `parent_run_id` if given; runs of the experiment left RUNNING by a dead process are marked
    KILLED first. Yields the active run; ends it FINISHED, FAILED or KILLED."""
    uri = store.tracking_uri(cfg)
    client = store.open_client(uri)
    with store.store_lock(uri):  # parallel jobs of a sweep create the experiment once
        experiment_id = store.experiment_id(client, cfg.tracking.experiment)
    mark_orphans(client, [experiment_id])
    mlflow.set_tracking_uri(uri)
    tags = {**store.source_tags(), **process_tags()}
    with (
        mlflow.start_run(
            experiment_id=experiment_id, run_name=redact(run_name), parent_run_id=parent_run_id, tags=tags
        ) as run,
        signals_end_the_run(run.info.run_id),
    ):
        yield run
