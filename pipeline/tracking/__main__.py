"""`python -m pipeline.tracking mark-orphans [URI]`: runs left RUNNING by a dead process -> KILLED."""

from __future__ import annotations

import os
import sys

from pipeline.cli import fail
from pipeline.tracking.lifecycle import mark_orphans
from pipeline.tracking.store import default_uri, open_client, sqlite_path

USAGE = "usage: python -m pipeline.tracking mark-orphans [TRACKING_URI]"


def main(argv: list[str]) -> None:
    if argv[:1] in (["-h"], ["--help"]):
        print(f"{USAGE}\n\n{__doc__.strip()}")
        return
    if not argv or argv[0] != "mark-orphans" or len(argv) > 2:
        fail(USAGE.removeprefix("usage: ") + ": expected the command mark-orphans and at most one URI")
    uri = argv[1] if len(argv) > 1 else os.environ.get("MLFLOW_TRACKING_URI") or default_uri()
    if sqlite_path(uri) is not None and not sqlite_path(uri).is_file():
        fail(f"{sqlite_path(uri)}: no such MLflow database")
    client = open_client(uri)
    orphans = mark_orphans(client, [e.experiment_id for e in client.search_experiments()])
    print(f"mark-orphans: {len(orphans)} run(s) marked KILLED" + "".join(f"\n  {r}" for r in orphans))


if __name__ == "__main__":
    main(sys.argv[1:])
