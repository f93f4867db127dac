"""The MLflow store a run writes to, and the client that writes it.

The tracking URI is always passed explicitly: `tracking.uri`, else $MLFLOW_TRACKING_URI, else
the sqlite file `mlflow.db` in the project's store directory (`store_dir`). A sqlite store keeps
its runs' files in `mlruns/` beside the database, whichever directory a command starts from.

The store directory is not always the directory a stage runs in. DVC runs a queued experiment
(`dvc exp run --queue`, `dvc queue start`) or a temporary one (`dvc exp run --temp`) in a
workspace of its own under .dvc/tmp/exps/, deleted when the experiment ends; a store there
would go with it. DVC tells every stage command where its repository is in $DVC_ROOT, and for
those workspaces points it at the repository the experiment was queued from (dvc's
repo/experiments/queue/base.py: "Override DVC_ROOT env var to point to the parent DVC repo").
So the store is $DVC_ROOT's when DVC runs the stage, else the project directory's
(pipeline/config/project.py): one store, by the sqlite lock below shared by parallel experiments.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import subprocess
from contextlib import contextmanager
from pathlib import Path

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from pipeline.config.compose import to_flat_dict
from pipeline.config.project import project_dir
from pipeline.config.schema import Config
from pipeline.config.secrets import redact

DVC_ROOT = "DVC_ROOT"  # set by DVC for stage commands: the repository (the queuing one for a temp workspace)
# What DVC tells a stage of an experiment (`dvc exp run`): the experiment's name, the commit it started from.
DVC_EXPERIMENT_TAGS = {"DVC_EXP_NAME": "dvc.exp_name", "DVC_EXP_BASELINE_REV": "dvc.exp_baseline_rev"}
SQLITE_BUSY_TIMEOUT_MS = 120_000


def _wait_for_sqlite_writers(dbapi_connection, _record) -> None:
    """Several processes share one sqlite file: wait for the writer holding the lock instead
    of failing at once with "database is locked" (sqlite3's default wait is 5 s)."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")


def setup() -> None:
    """Once per process, before the first client: runs stay on this machine (no telemetry), no
    progress bar is printed for each artifact read back, and every sqlite connection waits for
    other writers (a SQLAlchemy listener: MLflow builds the engine)."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    if not event.contains(Engine, "connect", _wait_for_sqlite_writers):
        event.listen(Engine, "connect", _wait_for_sqlite_writers)


def store_dir() -> Path:
    """Where the default store lives: the repository DVC names in $DVC_ROOT, else the project directory."""
    return Path(os.environ[DVC_ROOT]) if os.environ.get(DVC_ROOT) else project_dir()


def default_uri() -> str:
    return f"sqlite:///{store_dir() / 'mlflow.db'}"


def tracking_uri(cfg: Config) -> str:
    return cfg.tracking.uri or os.environ.get("MLFLOW_TRACKING_URI") or default_uri()


def sqlite_path(uri: str) -> Path | None:
    """The database file of a `sqlite:///` URI; None for other stores (and in-memory sqlite)."""
    if not uri.startswith("sqlite:///"):
        return None
    path = uri.removeprefix("sqlite:///").split("?")[0]
    return Path(path) if path and path != ":memory:" else None


def artifact_root(uri: str) -> Path | None:
    """Where a sqlite store keeps its runs' files: mlruns/ beside the database file (MLflow's own
    default is ./mlruns of whatever directory the experiment happened to be created from).
    None for other stores: a tracking server decides."""
    database = sqlite_path(uri)
    return database.resolve().parent / "mlruns" if database is not None else None


@contextmanager
def store_lock(uri: str):
    """Held while a sqlite store is created or migrated and the experiment is made: MLflow's
    table creation is not safe against several processes doing it at once (they corrupt the
    schema). A lock file beside the database serializes that first step; other stores need none."""
    db = sqlite_path(uri)
    if db is None:
        yield
        return
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(db.with_name(db.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def open_client(uri: str) -> MlflowClient:
    """A client whose store is ready: created or migrated under the store lock if needed."""
    setup()
    with store_lock(uri):
        client = MlflowClient(uri)
        client.search_experiments(max_results=1)  # builds the store, creating its tables if the database is new
    return client


def experiment_id(client: MlflowClient, name: str) -> str:
    """The experiment's id, creating it if needed (tolerates a concurrent creator)."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    root = artifact_root(client.tracking_uri)
    try:
        return client.create_experiment(name, artifact_location=root.as_uri() if root else None)
    except MlflowException:
        return client.get_experiment_by_name(name).experiment_id


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
    except OSError:
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def source_tags() -> dict[str, str]:
    """The commit a run's code came from, as MLflow's UI shows it, and the DVC experiment the run
    belongs to when DVC runs it (`dvc exp show` names the run back: mlflow_run.json)."""
    commit = git_commit()
    tags = {"mlflow.source.git.commit": commit} if commit else {}
    return tags | {tag: os.environ[var] for var, tag in DVC_EXPERIMENT_TAGS.items() if os.environ.get(var)}


def logged_params(cfg: Config) -> dict:
    """The flattened config, minus the tracking section (a URI may carry credentials), with
    credentials cut out of any other URL (e.g. a private fetch.index_url)."""
    return {k: redact(v) for k, v in to_flat_dict(cfg).items() if not k.startswith("tracking.")}
