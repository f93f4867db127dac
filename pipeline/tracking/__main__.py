"""`python -m pipeline.tracking mark-orphans [URI]`: runs left RUNNING by a dead process -> KILLED.

URI: the store (default: $MLFLOW_TRACKING_URI, else the project's mlflow.db)."""

from __future__ import annotations

import os
import sys

from pipeline.config.cli import ArgumentParser, run_command
from pipeline.config.errors import PipelineError
from pipeline.tracking.lifecycle import mark_orphans
from pipeline.tracking.store import default_uri, open_client, sqlite_path


def main(argv: list[str] | None = None) -> None:
    parser = ArgumentParser(prog="python -m pipeline.tracking", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    orphans = commands.add_parser("mark-orphans", help="mark KILLED the RUNNING runs whose process is gone")
    orphans.add_argument("uri", nargs="?", metavar="TRACKING_URI", help="default: $MLFLOW_TRACKING_URI, else mlflow.db")
    args = parser.parse_args(argv)
    uri = args.uri or os.environ.get("MLFLOW_TRACKING_URI") or default_uri()
    if sqlite_path(uri) is not None and not sqlite_path(uri).is_file():
        raise PipelineError(f"{sqlite_path(uri)}: no such MLflow database")
    client = open_client(uri)
    marked = mark_orphans(client, [e.experiment_id for e in client.search_experiments()])
    print(f"mark-orphans: {len(marked)} run(s) marked KILLED" + "".join(f"\n  {r}" for r in marked))


if __name__ == "__main__":
    run_command(main, sys.argv[1:])
