"""The one place the project starts an MLflow tracking server: on loopback, answering only
requests addressed to it (Host header checked against --allowed-hosts, against DNS rebinding).

    python -m pipeline.server                       # sqlite:///mlflow.db on http://127.0.0.1:5000
    python -m pipeline.server --port 5050 --backend-store-uri postgresql://...

Exposing it (`--host 0.0.0.0 --allowed-hosts mlflow.example.org`) is an explicit choice; the
server has no authentication of its own, so put one in front of it first.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

LOOPBACK = "127.0.0.1"


def default_allowed_hosts(host: str, port: int) -> list[str]:
    """The names a local client reaches the server by (MLflow's own default also admits every
    private network address)."""
    names = {host, "localhost", LOOPBACK} if host == LOOPBACK else {host}
    return sorted(f"{name}:{port}" for name in names) + sorted(names)


def server_command(backend_store_uri: str, artifacts_destination: str | Path, port: int, host: str = LOOPBACK,
                   allowed_hosts: list[str] | None = None, workers: int = 1) -> list[str]:
    return [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", backend_store_uri,
        "--artifacts-destination", str(artifacts_destination),
        "--host", host,
        "--port", str(port),
        "--allowed-hosts", ",".join(allowed_hosts or default_allowed_hosts(host, port)),
        "--workers", str(workers),
    ]


def free_port(host: str = LOOPBACK) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@contextmanager
def running_server(backend_store_uri: str, artifacts_destination: str | Path, port: int | None = None,
                   host: str = LOOPBACK, allowed_hosts: list[str] | None = None,
                   timeout_s: float = 120) -> Iterator[str]:
    """Start a tracking server, wait until it answers, yield its URL; stop it on exit."""
    port = port or free_port(host)
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    cmd = server_command(backend_store_uri, artifacts_destination, port, host, allowed_hosts)
    # Its own process group: stopping it stops the gunicorn/uvicorn workers too.
    server = subprocess.Popen(cmd, env=env, start_new_session=True)
    url = f"http://{host}:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"mlflow server exited with status {server.returncode}: {' '.join(cmd)}")
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"mlflow server not answering on {url} after {timeout_s} s") from None
                time.sleep(0.5)
        yield url
    finally:
        if server.poll() is None:
            os.killpg(server.pid, 15)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, 9)
                server.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pipeline.server", description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend-store-uri", default="sqlite:///mlflow.db")
    parser.add_argument("--artifacts-destination", default="mlartifacts")
    parser.add_argument("--host", default=LOOPBACK)
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--allowed-hosts", help="comma-separated Host header values (default: the loopback names)")
    args = parser.parse_args(argv)
    allowed = args.allowed_hosts.split(",") if args.allowed_hosts else None
    cmd = server_command(args.backend_store_uri, args.artifacts_destination, args.port, args.host, allowed)
    os.execv(cmd[0], cmd)


if __name__ == "__main__":
    main()
