"""The one place the project starts an MLflow tracking server process: on loopback by default,
answering only requests addressed to it (Host header checked against --allowed-hosts, against DNS
rebinding). `python -m pipeline.server` runs one in the foreground (pipeline/server/cli.py); a sweep
asked to (`hydra.callbacks.mlflow_sweep.server=true`, pipeline/launch/sweep.py) and the tests start
one in the background with `TrackingServer`.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.config.errors import PipelineError

LOOPBACK = "127.0.0.1"


def default_allowed_hosts(host: str, port: int) -> list[str]:
    """The names a local client reaches the server by (MLflow's own default also admits every
    private network address)."""
    names = {host, "localhost", LOOPBACK} if host == LOOPBACK else {host}
    return sorted(f"{name}:{port}" for name in names) + sorted(names)


def server_command(
    backend_store_uri: str,
    artifacts: str | Path,
    port: int,
    host: str = LOOPBACK,
    allowed_hosts: list[str] | None = None,
    workers: int = 1,
    serve_artifacts: bool = True,
    app_name: str | None = None,
) -> list[str]:
    """`mlflow server` on host:port. serve_artifacts: the server stores artifacts in `artifacts`
    and proxies them; otherwise clients write them to the local path `artifacts` themselves
    (what a direct SQLite client does, so the store reads the same with or without the server).
    app_name: an MLflow server app, e.g. `basic-auth` (accounts: pipeline/server/basic_auth.py)."""
    if serve_artifacts:
        artifact_options = ["--artifacts-destination", str(artifacts)]
    else:
        artifact_options = ["--default-artifact-root", str(Path(artifacts).resolve()), "--no-serve-artifacts"]
    return [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        backend_store_uri,
        *artifact_options,
        "--host",
        host,
        "--port",
        str(port),
        "--allowed-hosts",
        ",".join(allowed_hosts or default_allowed_hosts(host, port)),
        "--workers",
        str(workers),
        *(["--app-name", app_name] if app_name else []),
    ]


def tracking_only_env() -> dict[str, str]:
    """The environment of a server that only tracks: no telemetry, and none of MLflow 3's
    job-execution workers (a huey runner and its consumers, which a sweep never uses and which
    ignore SIGTERM)."""
    return {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


def end_with_parent() -> None:
    """In a server process about to exec: ask Linux for SIGTERM when the process that started it
    dies, even by `kill -9` (prctl PR_SET_PDEATHSIG; `mlflow server` forwards SIGTERM to uvicorn
    and exits). Elsewhere (no prctl) the sweep's own ending stops the server."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


def free_port(host: str = LOOPBACK) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class TrackingServer:
    """A server process on a free loopback port: `start()` returns its URL once it answers,
    `stop()` ends it with its workers. Its output goes to `log_path` (or this process's)."""

    def __init__(
        self,
        backend_store_uri: str,
        artifacts: str | Path,
        log_path: str | Path | None = None,
        serve_artifacts: bool = True,
    ):
        self.backend_store_uri, self.artifacts, self.serve_artifacts = backend_store_uri, artifacts, serve_artifacts
        self.log_path = Path(log_path) if log_path else None
        self.process: subprocess.Popen | None = None
        self.url = ""

    def start(self, timeout_s: float = 120.0) -> str:
        port = free_port()
        self.url = f"http://{LOOPBACK}:{port}"
        command = server_command(self.backend_store_uri, self.artifacts, port, serve_artifacts=self.serve_artifacts)
        log = None
        if self.log_path:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the server process, closed below
        # Its own process group (`mlflow server` runs uvicorn as a child, and both must stop; a Ctrl+C
        # meant for the sweep's jobs does not reach it), ending when this process ends.
        self.process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT if log else None,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=tracking_only_env(),
            preexec_fn=end_with_parent,
        )
        if log:
            log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                where = f"; see {self.log_path}" if self.log_path else ""
                raise PipelineError(
                    f"mlflow server for {self.backend_store_uri} exited with status {self.process.returncode}{where}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                    if response.status == 200:
                        return self.url
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise PipelineError(
            f"mlflow server for {self.backend_store_uri} not answering on {self.url} after {timeout_s:.0f} s"
        )

    def stop(self) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)  # the whole group, uvicorn included
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        except ProcessLookupError:
            pass
        self.process = None

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@contextmanager
def running_server(backend_store_uri: str, artifacts_destination: str | Path, timeout_s: float = 120) -> Iterator[str]:
    """A server with proxied artifacts for the duration of the block; yields its URL."""
    server = TrackingServer(backend_store_uri, artifacts_destination)
    try:
        yield server.start(timeout_s)
    finally:
        server.stop()
