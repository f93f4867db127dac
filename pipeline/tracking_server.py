"""A local `mlflow server` on 127.0.0.1: one process that owns a store while many clients write.

SQLite allows one writer at a time; parallel training jobs each opening `mlflow.db` get
"database is locked" and race to create the experiment. Sending them through one server
process (one uvicorn worker) serialises the writes. Artifacts are not proxied: the server
hands out plain local paths (the same `./mlruns` a direct SQLite client would use), so jobs
on this machine write their files directly and the store reads the same with or without it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from pipeline.errors import PipelineError


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class TrackingServer:
    """`with TrackingServer(store_uri, artifact_root, log) as url:` serves store_uri at url."""

    def __init__(self, store_uri: str, artifact_root: str | Path, log_path: str | Path):
        self.store_uri = store_uri
        self.artifact_root = Path(artifact_root).resolve()
        self.log_path = Path(log_path)
        self.process: subprocess.Popen | None = None
        self.url = ""

    def start(self, timeout_s: float = 120.0) -> str:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        command = [
            sys.executable, "-m", "mlflow", "server",
            "--backend-store-uri", self.store_uri,
            "--default-artifact-root", str(self.artifact_root),
            "--no-serve-artifacts",
            "--host", "127.0.0.1", "--port", str(port),
            "--workers", "1",  # one process: the single writer of the SQLite file
        ]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            # Its own process group: `mlflow server` runs uvicorn as a child, and both must stop.
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True,
                                            env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"})
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-2000:]
                raise PipelineError(f"mlflow server for {self.store_uri} exited; see {self.log_path}:\n{tail}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                    if response.status == 200:
                        return self.url
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise PipelineError(f"mlflow server for {self.store_uri} not ready after {timeout_s:.0f} s; see {self.log_path}")

    def stop(self) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)  # the whole group, uvicorn included
        except ProcessLookupError:
            return
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.process = None

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
