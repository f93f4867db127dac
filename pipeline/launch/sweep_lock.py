"""One process at a time runs a sweep: the sweep itself, or one resume of it.

A sweep's first directory (its parent run's tag `sweep.dir`; a resume has its own directory but
continues this one's runs and Optuna study) holds the lock file `sweep.lock`. The sweep's process
takes an exclusive `flock` on it before it creates its parent run, a resume before it even reads
whether the parent is still running, and each keeps it until the parent ends. A second process
that asks while the lock is held (a resume of a sweep still running, two resumes started together)
is refused before it changes anything, naming the process that holds it: the holder writes its pid
in the file. The OS releases the lock when its process ends however it ends (`kill -9` included),
so a lock is never stale, and a file left behind is harmless. Why a file lock and not a check of
the parent run's status: two resumes read the status before either reopens the parent, and both
go on (issue 30); MLflow offers no atomic compare-and-set of a run's status. The lock serializes
processes on one host, as the `process.*` tags that tell a live writer from a dead one do.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from typing import TextIO

from pipeline.config.errors import SweepLocked

LOCK_FILE = "sweep.lock"


def hold(directory: Path) -> TextIO:
    """The lock of the sweep whose first directory is `directory`, held by this process until the
    file returned is closed (or the process ends); SweepLocked when another process holds it."""
    directory.mkdir(parents=True, exist_ok=True)
    lock = open(directory / LOCK_FILE, "a+")  # noqa: SIM115 - held open; "w" would erase the holder's pid
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise SweepLocked(holder(directory)) from None
    lock.truncate(0)
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    return lock


def holder(directory: Path, wait_s: float = 2.0) -> int | None:
    """The pid in the lock file, waiting up to wait_s for a holder that has just taken the lock to write it."""
    deadline = time.monotonic() + wait_s
    while True:
        text = (directory / LOCK_FILE).read_text().strip()
        if text.isdigit() or time.monotonic() > deadline:
            return int(text) if text.isdigit() else None
        time.sleep(0.05)
