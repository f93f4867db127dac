"""Which process writes a run: the `process.*` tags a run carries, and what is done with them.

A run records its host, pid and the pid's start time (`process_tags`), so that a run whose
process is gone can be told apart from one still being written (`writer`, `writer_is_gone`;
a reused pid has another start time). A sweep stops the processes writing its runs
(`stop_writers`), and a sweep's job in another process exits when the sweep's process is
gone (`exit_when_gone`). Ending the runs themselves is pipeline/tracking/lifecycle.py's.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from contextlib import suppress

import psutil
from mlflow import MlflowClient
from mlflow.entities import Run

HOST_TAG, PID_TAG, STARTED_TAG = "process.host", "process.pid", "process.started"


def process_tags() -> dict[str, str]:
    me = psutil.Process()
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(me.pid), STARTED_TAG: repr(me.create_time())}


def live_process(pid: int, started: float) -> psutil.Process | None:
    """Process `pid` if it is alive and is the one started at `started` (not a reused pid)."""
    try:
        process = psutil.Process(pid)
        same = abs(process.create_time() - started) <= 1.0
        return process if same and process.status() != psutil.STATUS_ZOMBIE else None
    except psutil.NoSuchProcess:
        return None


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


def exit_when_gone(pid: int, started: float, poll_s: float = 1.0) -> None:
    """Watch process `pid` (a sweep's main process) from a daemon thread and SIGKILL this process
    once it is gone: a job does not outlive its sweep (its run is then an orphan that the next
    training or `mark-orphans` marks KILLED)."""

    def watch() -> None:
        while live_process(pid, started):
            time.sleep(poll_s)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name=f"exit-when-{pid}-is-gone", daemon=True).start()


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
