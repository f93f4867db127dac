"""The processes that write a sweep's runs, stopped by the sweep (`stop_writers`: it passes on the
signal it got), and the live process writing a run, found from its `process.*` tags (`writer`; a
reused pid has another start time). The tags are lifecycle.py's (every run carries them); a job
that exits when its sweep's process is gone is sweep_runs.py's.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from contextlib import suppress

import psutil
from mlflow import MlflowClient
from mlflow.entities import Run

from pipeline.tracking.lifecycle import HOST_TAG, PID_TAG, STARTED_TAG
from pipeline.tracking.sweep_runs import live_process


def writer(tags: dict) -> psutil.Process | None:
    """The live process (on this host) that writes the run with these tags, if any."""
    if tags.get(HOST_TAG) != socket.gethostname() or PID_TAG not in tags or STARTED_TAG not in tags:
        return None
    return live_process(int(tags[PID_TAG]), float(tags[STARTED_TAG]))


def stop_writers(client: MlflowClient, runs: list[Run], signum: int = signal.SIGTERM, timeout_s: float = 30.0) -> None:
    """Send `signum` (a sweep passes on the signal it got) to the live processes (on this host,
    other than this one) writing these runs, wait until each has ended its run (its handler ends
    it KILLED) or exited, and SIGKILL those that have done neither after timeout_s."""
    writers = {
        run.info.run_id: process
        for run in runs
        if (process := writer(run.data.tags)) is not None and process.pid != os.getpid()
    }
    for process in writers.values():
        with suppress(psutil.NoSuchProcess):
            process.send_signal(signum)
    deadline = time.monotonic() + timeout_s
    while writers and time.monotonic() < deadline:
        time.sleep(0.5)
        writers = {
            run_id: process
            for run_id, process in writers.items()
            if process.is_running() and client.get_run(run_id).info.status == "RUNNING"
        }
    for process in writers.values():
        with suppress(psutil.NoSuchProcess):
            process.kill()
