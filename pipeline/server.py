"""`python -m pipeline.server`: an MLflow tracking server for this project, on loopback, answering
only requests addressed to it (Host header checked against --allowed-hosts, against DNS rebinding).

    python -m pipeline.server                       # the project's mlflow.db on http://127.0.0.1:5000
    python -m pipeline.server --port 5050 --backend-store-uri postgresql+psycopg2://...

Its store and artifacts are the project's (`mlflow.db` and `mlartifacts/` in the project directory),
whichever directory it is started from: the store that training writes by default. Exposing it
(`--host 0.0.0.0 --allowed-hosts mlflow.example.org`) is an explicit choice.
"""

from __future__ import annotations

import os
import sys

from pipeline.config.cli import ArgumentParser, run_command
from pipeline.config.project import project_dir
from pipeline.tracking.server import LOOPBACK, server_command, tracking_only_env
from pipeline.tracking.store import default_uri


def main(argv: list[str] | None = None) -> None:
    parser = ArgumentParser(prog="python -m pipeline.server", description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend-store-uri", help="default: the project's sqlite:///.../mlflow.db")
    parser.add_argument("--artifacts-destination", help="default: mlartifacts/ in the project directory")
    parser.add_argument("--host", default=LOOPBACK)
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--allowed-hosts", help="comma-separated Host header values (default: the loopback names)")
    args = parser.parse_args(argv)
    allowed = args.allowed_hosts.split(",") if args.allowed_hosts else None
    store = args.backend_store_uri or default_uri()
    artifacts = args.artifacts_destination or project_dir() / "mlartifacts"
    cmd = server_command(store, artifacts, args.port, args.host, allowed)
    os.execve(cmd[0], cmd, tracking_only_env())


if __name__ == "__main__":
    run_command(main, sys.argv[1:])
