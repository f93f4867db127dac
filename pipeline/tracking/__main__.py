"""`python -m pipeline.tracking COMMAND`: the tracking store's housekeeping.

    python -m pipeline.tracking mark-orphans [URI]   # runs left RUNNING by a dead process -> KILLED
    python -m pipeline.tracking record DIR           # complete the run of a training whose store was away

URI: the store (default: $MLFLOW_TRACKING_URI, else the project's mlflow.db). DIR: a training's
output directory holding unrecorded.json (pipeline/tracking/results.py); its run is completed in
the store it was started in, with the credentials of the environment (as for a training)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import mlflow
from mlflow.exceptions import MlflowException

from pipeline.config.cli import ArgumentParser, run_command
from pipeline.config.errors import PipelineError
from pipeline.tracking import results, store_check
from pipeline.tracking.lifecycle import END_REASON_TAG, mark_orphans
from pipeline.tracking.store import default_uri, open_client, sqlite_path

RECORDED_LATER_TAG = "recorded_later"


def orphans(uri: str | None) -> None:
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or default_uri()
    if sqlite_path(uri) is not None and not sqlite_path(uri).is_file():
        raise PipelineError(f"{sqlite_path(uri)}: no such MLflow database")
    client = open_client(uri)
    marked = mark_orphans(client, [e.experiment_id for e in client.search_experiments()])
    print(f"mark-orphans: {len(marked)} run(s) marked KILLED" + "".join(f"\n  {r}" for r in marked))


def record(directory: Path) -> None:
    """Complete the run that `directory`'s unrecorded.json names: the same run, resumed, given what
    it lacks, ended FINISHED (an `end_reason` from its interruption removed, `recorded_later` set)."""
    pending = results.Results.load(directory)
    store_check.check_store(pending.tracking_uri, f"the run's store {pending.tracking_uri}", 10)
    client = open_client(pending.tracking_uri)
    try:
        run = client.get_run(pending.run_id)
    except MlflowException as err:
        raise PipelineError(f"{pending.tracking_uri}: no run {pending.run_id} to complete ({err.message})") from None
    if run.info.status != "FINISHED":
        mlflow.set_tracking_uri(pending.tracking_uri)
        with mlflow.start_run(run_id=pending.run_id):
            if END_REASON_TAG in run.data.tags:
                client.delete_tag(pending.run_id, END_REASON_TAG)
            mlflow.set_tag(RECORDED_LATER_TAG, f"by `python -m pipeline.tracking record` from {directory.resolve()}")
            results.record(pending, directory)
    (directory / results.FILE).unlink(missing_ok=True)
    if pending.run_file:
        results.write_run_file(pending.run_file, run.info.run_id, run.info.experiment_id)
    print(f"record: MLflow run {pending.run_id} is complete in {pending.tracking_uri}")


def main(argv: list[str] | None = None) -> None:
    parser = ArgumentParser(prog="python -m pipeline.tracking", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    marking = commands.add_parser("mark-orphans", help="mark KILLED the RUNNING runs whose process is gone")
    marking.add_argument("uri", nargs="?", metavar="TRACKING_URI", help="default: $MLFLOW_TRACKING_URI, else mlflow.db")
    recording = commands.add_parser("record", help="complete the run of a training whose tracking store was away")
    recording.add_argument("directory", type=Path, metavar="DIR", help="the training's output directory")
    args = parser.parse_args(argv)
    if args.command == "record":
        record(args.directory)
    else:
        orphans(args.uri)


if __name__ == "__main__":
    run_command(main, sys.argv[1:])
