"""A Hydra multirun as one MLflow parent run with one child run per job.

`MlflowSweep`, a Hydra callback (conf/config.yaml), creates the sweep's parent run before any job
starts (or reopens it: `hydra.sweeper.resume`, pipeline/launch/resume.py), holding the sweep's lock
while it runs (pipeline/launch/sweep_lock.py: no resume of it meanwhile), and publishes the store and
the parent in `<sweep dir>/mlflow_sweep.json`, which every job reads through `sweep_runs.join`
whatever launcher runs it; each job's run is started with MLflow's own `parent_run_id`. At the end it
records the best child, registers its model through the gate in the same store (a failure ends the
parent FAILED with the reason, and the command exits 1), and ends the parent. However the sweep ends
(SIGINT/SIGTERM, an error, `kill -9` of its process), its runs end: docs/faults.md, "Sweeps and run names".
This module says when each of these happens; what is written on the parent is pipeline/launch/parent_run.py.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
from pathlib import Path
from typing import TextIO

from hydra.experimental.callback import Callback
from mlflow import MlflowClient
from mlflow.environment_variables import MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT
from omegaconf import DictConfig, OmegaConf

from pipeline.config.cli import fail
from pipeline.config.compose import validate
from pipeline.config.errors import SweepLocked
from pipeline.config.schema import Config
from pipeline.launch import parent_run, resume, sweep_lock
from pipeline.tracking import lifecycle, processes, registry, store
from pipeline.tracking.server import TrackingServer
from pipeline.tracking.sweep_runs import children

IN_PROCESS_LAUNCHER = "hydra._internal.core_plugins.basic_launcher.BasicLauncher"


class MlflowSweep(Callback):
    """server=false (conf/config.yaml): jobs in other processes write a sqlite store directly
    (store.py's lock and busy timeout serialise them); `hydra.callbacks.mlflow_sweep.server=true`:
    through a tracking server started for the sweep (bench/parallel_sweep.py compares them)."""

    def __init__(self, server: bool) -> None:
        self.use_server = server
        self.server: TrackingServer | None = None
        self.client: MlflowClient | None = None
        self.parent_id: str | None = None
        self.cfg: Config | None = None
        self.url_printing: str | None = None  # MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT before the sweep
        self.signal: str | None = None  # the signal that interrupted the sweep
        self.previous_handlers: dict = {}
        self.lock: TextIO | None = None  # the sweep's lock, held until the parent ends

    # The joblib launcher pickles Hydra's context, this callback included, for each job: jobs get
    # a fresh one (the server and the parent run belong to the sweep's own process).
    def __getstate__(self) -> dict:
        return {"server": self.use_server}

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        base = OmegaConf.masked_copy(config, [key for key in config if key != "hydra"])
        cfg = self.cfg = validate(base)  # the sweep's base configuration, without the sweep's own overrides
        resumed = resume.sweep_to_resume(config, cfg)  # hydra.sweeper.resume: the sweep it continues, or None
        sweep_dir = Path(config.hydra.sweep.dir)
        if resumed:
            resumed, self.lock = resumed
        else:
            try:
                self.lock = sweep_lock.hold(sweep_dir)
            except SweepLocked as held:  # another sweep started in the same second, or given this directory
                fail(f"hydra.sweep.dir={sweep_dir}: {held} runs a sweep there; set another directory")
        sweep_dir.mkdir(parents=True, exist_ok=True)
        uri = store.tracking_uri(cfg)
        # Hydra's basic launcher runs the jobs one after the other in this process: they can write the
        # SQLite file directly. Every other launcher runs them in other processes, possibly at once.
        in_process = config.hydra.launcher._target_ == IN_PROCESS_LAUNCHER
        if uri.startswith("sqlite:") and not in_process and self.use_server:
            self.server = TrackingServer(
                uri, store.artifact_root(uri), sweep_dir / "mlflow-server.log", serve_artifacts=False
            )
            uri = self.server.start()
            # MLflow prints "🏃 View run … at: <URL>" as each run ends on a tracking server; this one stops
            # with the sweep, so the links would be dead: MLflow's own switch turns the line off, here
            # and in the jobs' processes, which inherit the environment (restored in _end).
            self.url_printing = os.environ.get(MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT.name)
            os.environ[MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT.name] = "true"
        atexit.register(self._abort)  # a sweep that crashes still ends its runs and server
        if threading.current_thread() is threading.main_thread():  # only it may set handlers
            self.previous_handlers = {
                signum: signal.signal(signum, self._interrupt) for signum in lifecycle.STOP_SIGNALS
            }
        self.client = store.open_client(uri)  # a new sqlite store is created under its lock
        experiment_id, self.parent_id = parent_run.open_parent(self.client, config, cfg, base, resumed)
        home = resumed.data.tags[resume.DIR_TAG] if resumed else str(sweep_dir)  # the sweep's first directory
        parent_run.publish(config, uri, experiment_id, self.parent_id, home)

    # Python runs a signal handler between any two bytecodes, also inside a weakref callback or a
    # __del__ during garbage collection, where the SystemExit it raises is printed ("Exception
    # ignored in") and dropped: the interrupt is kept, and the sweep leaves at the next boundary.
    def on_job_start(self, config: DictConfig, **kwargs) -> None:
        self._leave_if_interrupted()

    def on_job_end(self, config: DictConfig, job_return, **kwargs) -> None:
        self._leave_if_interrupted()

    def _leave_if_interrupted(self) -> None:
        if self.signal is not None:
            raise SystemExit(128 + signal.Signals[self.signal])

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        self._leave_if_interrupted()
        if self.parent_id is None:  # on_multirun_start failed (Hydra reported it as a warning)
            return
        best = parent_run.record_best(self.client, self.parent_id)
        if best and self.cfg.tracking.register and registry.MODEL_URI_TAG in best.data.tags:  # only the best, once
            self._register(best)
        self._end("FINISHED" if best else "FAILED")

    def _register(self, best) -> None:
        """The best child's model through the gate. If that fails, the runs stay recorded: the parent
        ends FAILED with the reason, and the command says so in one line and exits 1 (SystemExit:
        Hydra would turn an exception into a warning)."""
        name = registry.model_name(self.cfg)
        try:
            parent_run.register_best(self.client, name, best)
        except Exception as err:  # whatever the registry raised: the sweep's runs are kept either way
            why = " ".join(f"{type(err).__name__}: {err}".split())[:500]
            parent = self.parent_id
            self._end("FAILED", f"the best run's model ({best.info.run_name}) was not registered as {name}: {why}")
            fail(
                f"sweep: its runs are recorded in {store.redact(store.tracking_uri(self.cfg))} (parent run "
                f"{parent}), but the best run's model ({best.info.run_name}) was not registered as {name}: {why}"
            )

    def _interrupt(self, signum: int, _frame) -> None:
        """SIGINT/SIGTERM between jobs or while other processes run them (a job running in this
        process has its own handler, lifecycle.signals_end_the_run): stop the running jobs, then
        leave; `_abort` ends the runs (the launcher kills its workers on the way out)."""
        for stop_signal in lifecycle.STOP_SIGNALS:  # a second Ctrl+C must not cut the bookkeeping short
            signal.signal(stop_signal, signal.SIG_IGN)
        self.signal = signal.Signals(signum).name
        print(f"sweep: interrupted by {self.signal}; stopping its jobs", file=sys.stderr)
        if self.parent_id is not None:
            processes.stop_writers(self.client, self._running_children(), signum)
        raise SystemExit(128 + signum)

    def _running_children(self) -> list:
        return [
            run for run in children(self.client, self.client.get_run(self.parent_id)) if run.info.status == "RUNNING"
        ]

    def _abort(self) -> None:
        """The sweep ends early (a signal, an error): each job still running is stopped and its run
        ended KILLED, the parent KILLED (a signal) or FAILED (an error), with `end_reason`."""
        if self.parent_id is None:
            self._end("FAILED")
            return
        name = self.signal or lifecycle.received_signal()
        running = self._running_children()
        processes.stop_writers(self.client, running)
        for run in running:
            if self.client.get_run(run.info.run_id).info.status == "RUNNING":  # not ended by its own process
                lifecycle.end(
                    self.client,
                    run.info.run_id,
                    "KILLED",
                    f"sweep interrupted by {name}" if name else "the sweep stopped before this job ended",
                )
        if name:
            self._end("KILLED", f"interrupted by {name}")
        else:
            self._end("FAILED", "the sweep's process stopped before the sweep's end (see its output)")

    def _end(self, status: str, reason: str | None = None) -> None:
        atexit.unregister(self._abort)
        for signum, handler in self.previous_handlers.items():
            signal.signal(signum, handler)
        self.previous_handlers = {}
        if self.parent_id is not None and self.client is not None:
            lifecycle.end(self.client, self.parent_id, status, reason)
            self.parent_id = None
        if self.server is not None:
            self.server.stop()
            self.server = None
            os.environ.pop(MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT.name)
            if self.url_printing is not None:
                os.environ[MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT.name] = self.url_printing
        if self.lock is not None:  # after the parent ended: a resume may start
            self.lock.close()
            self.lock = None
