"""MLflow: where runs go and what each training run records.

The tracking URI is always passed explicitly (Lightning's MLFlowLogger would otherwise
fall back to the deprecated ./mlruns file store): `tracking.uri`, else
$MLFLOW_TRACKING_URI, else the sqlite file `mlflow.db` in the project directory.

    python -m pipeline.tracking mark-orphans [URI]   # RUNNING runs whose process is gone -> KILLED
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import os
import re
import socket
import sqlite3
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import mlflow
import psutil
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from sqlalchemy import event
from sqlalchemy.engine import Engine

from pipeline.atomic import file_version
from pipeline.config import Config, to_flat_dict
from pipeline.errors import PipelineError

DEFAULT_URI = "sqlite:///mlflow.db"
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # runs stay on this machine
# Metrics logged asynchronously (train.py) are merged into one database write per second
# instead of one per call: a sqlite write costs ~4 ms of CPU, an epoch ~20 ms.
os.environ.setdefault("MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS", "1")

# Tags that tie a run to the process writing it, so a run left RUNNING by a killed process
# can be told apart from one still in progress.
HOST_TAG, PID_TAG, STARTED_TAG = "process.host", "process.pid", "process.started"
END_REASON_TAG = "end_reason"  # why a run ended FAILED or KILLED
SQLITE_BUSY_TIMEOUT_MS = 120_000


@event.listens_for(Engine, "connect")
def _wait_for_sqlite_writers(dbapi_connection, _record) -> None:
    """Several processes share one sqlite file: wait for the writer holding the lock instead
    of failing at once with "database is locked" (sqlite3's default wait is 5 s)."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")


def tracking_uri(cfg: Config) -> str:
    return cfg.tracking.uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_URI


def sqlite_path(uri: str) -> Path | None:
    """The database file of a `sqlite:///` URI; None for other stores (and in-memory sqlite)."""
    if not uri.startswith("sqlite:///"):
        return None
    path = uri.removeprefix("sqlite:///").split("?")[0]
    return Path(path) if path and path != ":memory:" else None


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
    with store_lock(uri):
        return MlflowClient(uri)  # builds the store, creating its tables if the database is new


def artifact_root(uri: str) -> Path | None:
    """Where a sqlite store keeps its runs' files: mlruns/ beside the database file (MLflow's own
    default is ./mlruns of whatever directory the experiment happened to be created from).
    None for other stores: a tracking server decides."""
    database = sqlite_path(uri)
    return database.resolve().parent / "mlruns" if database is not None else None


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


_URL_CREDENTIALS = re.compile(r"(?<=://)[^/@\s]+@")


def redact(value):
    """A string with any URL's user:password@ replaced by ***@ (other values unchanged)."""
    return _URL_CREDENTIALS.sub("***@", value) if isinstance(value, str) else value


def logged_params(cfg: Config) -> dict:
    """The flattened config, minus the tracking section (a URI may carry credentials), with
    credentials cut out of any other URL (e.g. a private fetch.index_url)."""
    return {k: redact(v) for k, v in to_flat_dict(cfg).items() if not k.startswith("tracking.")}


def process_tags() -> dict[str, str]:
    me = psutil.Process()
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(me.pid), STARTED_TAG: repr(me.create_time())}


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


def mark_orphans(client: MlflowClient, experiment_ids: list[str]) -> list[str]:
    """Mark KILLED each RUNNING run whose process on this host is gone (`kill -9`, power loss)."""
    orphans = []
    runs = client.search_runs(experiment_ids, "attributes.status = 'RUNNING'", max_results=10_000)
    for run in runs:
        if writer_is_gone(run.data.tags):
            client.set_tag(run.info.run_id, END_REASON_TAG,
                           f"orphaned: process {run.data.tags[PID_TAG]} on {run.data.tags[HOST_TAG]} ended "
                           "without closing the run")
            client.set_terminated(run.info.run_id, "KILLED")
            orphans.append(run.info.run_id)
    return orphans


def start_run(cfg: Config, run_name: str | None = None, tags: dict | None = None) -> tuple[MlflowClient, str]:
    """Create the run that one training records into; return the client and run id.
    Runs of this experiment left RUNNING by a dead process on this host are marked KILLED first."""
    uri = tracking_uri(cfg)
    tags = dict(tags or {})
    commit = git_commit()
    if commit:
        tags["mlflow.source.git.commit"] = commit
    tags.update(process_tags())
    with store_lock(uri):
        client = MlflowClient(uri)
        experiment = experiment_id(client, cfg.tracking.experiment)
    mark_orphans(client, [experiment])
    run = client.create_run(
        experiment,
        run_name=redact(run_name or cfg.tracking.run_name),
        tags={key: redact(value) for key, value in tags.items()},
    )
    return client, run.info.run_id


def wait_for_logged(client: MlflowClient, run_id: str, params: dict, epochs: int, key: str = "train_loss") -> None:
    """Wait for what the logger sent asynchronously to be stored; raise if any of it was lost
    (the logging thread only prints its errors)."""
    mlflow.set_tracking_uri(client.tracking_uri)
    mlflow.flush_async_logging()  # the client's store: MLflow keeps one store per tracking URI
    stored_params = client.get_run(run_id).data.params
    missing = sorted(set(params) - set(stored_params))
    stored_epochs = len(client.get_metric_history(run_id, key))
    if missing or stored_epochs != epochs:
        raise PipelineError(
            f"MLflow run {run_id}: {stored_epochs} of {epochs} epochs of '{key}' and "
            f"{len(params) - len(missing)} of {len(params)} params stored (missing: {missing[:5]})"
        )


# --- data lineage: which data a run trained on, as MLflow datasets and DVC's hash --------

SPLIT_CONTEXTS = {"train.npz": "training", "valid.npz": "validation"}


def file_md5(path: Path) -> str:
    """The file's MD5, hashed again only when the file changed (atomic.file_version): each run
    of a sweep hashes the same 45 MB of splits otherwise (~0.14 s)."""
    return _md5(*file_version(path))


@functools.lru_cache(maxsize=64)
def _md5(path: str, size: int, mtime_ns: int, inode: int) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, lambda: hashlib.md5(usedforsecurity=False)).hexdigest()


def dvc_md5(directory: str | Path) -> str:
    """The `md5: ….dir` DVC gives a directory output (DVC's own tree hashing over file MD5s)."""
    from dvc_data.hashfile.hash_info import HashInfo
    from dvc_data.hashfile.tree import Tree

    directory, tree = Path(directory), Tree()
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            tree.add(path.relative_to(directory).parts, None, HashInfo("md5", file_md5(path)))
    tree.digest()
    return tree.hash_info.value


def locked_md5(directory: str | Path, lock: Path = Path("dvc.lock")) -> str | None:
    """What dvc.lock records for `directory` as a stage output (None: no lock, or not an output)."""
    if not lock.is_file():
        return None
    import yaml

    target = Path(directory).resolve()
    for stage in (yaml.safe_load(lock.read_text()) or {}).get("stages", {}).values():
        for out in stage.get("outs", []):
            if (lock.parent / out["path"]).resolve() == target:
                return out.get("md5")
    return None


DATASET_INSERT_ATTEMPTS = 3


def log_inputs_beside_concurrent_runs(client: MlflowClient, run_id: str, inputs: list) -> None:
    """client.log_inputs, tried again when it loses a race: MLflow looks up a dataset in the
    experiment, then inserts it if missing, so parallel jobs of a sweep logging the same splits
    can both miss it and the later insert fails on the (experiment, name, digest) unique key.
    The next attempt finds the row the winner committed and only links it to this run."""
    for attempt in range(1, DATASET_INSERT_ATTEMPTS + 1):
        try:
            client.log_inputs(run_id, datasets=inputs)
            return
        except MlflowException:
            if attempt == DATASET_INSERT_ATTEMPTS:
                raise


def log_data_lineage(client: MlflowClient, run_id: str, cfg: Config) -> None:
    """The normalized splits as MLflow dataset inputs (digest = the file's MD5, as DVC records it),
    the directory's DVC hash, whether dvc.lock agrees, and where fetch got the raw data."""
    import json
    import warnings

    import mlflow.data
    from mlflow.entities import DatasetInput, InputTag
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    from pipeline.normalize import load_split

    inputs = []
    for name, context in SPLIT_CONTEXTS.items():
        path = (Path(cfg.paths.normalized) / name).resolve()
        x, y, digits = load_split(path.parent, name)
        with warnings.catch_warnings():  # MLflow registers its local source under two schemes, then warns
            warnings.filterwarnings("ignore", "The specified dataset source can be interpreted in multiple ways")
            dataset = mlflow.data.from_numpy(x, targets=y, source=str(path), digest=file_md5(path),
                                             name=f"mnist-{digits[0]}-vs-{digits[1]}-{name.removesuffix('.npz')}")
        # MlflowClient takes dataset entities; mlflow.log_input would need the run active here.
        inputs.append(DatasetInput(dataset._to_mlflow_entity(), [InputTag(MLFLOW_DATASET_CONTEXT, context)]))
    log_inputs_beside_concurrent_runs(client, run_id, inputs)

    computed, locked = dvc_md5(cfg.paths.normalized), locked_md5(cfg.paths.normalized)
    client.set_tag(run_id, "data.dvc_md5", computed)
    if locked is not None:
        client.set_tag(run_id, "data.dvc_lock", "matches" if locked == computed else f"differs: dvc.lock has {locked}")
    manifest = Path(cfg.paths.raw) / "manifest.json"
    if manifest.is_file():
        fetched = json.loads(manifest.read_text())
        client.set_tag(run_id, "data.origin", f"{fetched['source']}: {fetched['origin']}")


def main(argv: list[str]) -> None:
    if not argv or argv[0] != "mark-orphans" or len(argv) > 2:
        raise SystemExit("usage: python -m pipeline.tracking mark-orphans [TRACKING_URI]")
    uri = argv[1] if len(argv) > 1 else os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_URI
    if sqlite_path(uri) is not None and not sqlite_path(uri).is_file():
        raise SystemExit(f"error: {sqlite_path(uri)}: no such MLflow database")
    client = open_client(uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    orphans = mark_orphans(client, experiments)
    print(f"mark-orphans: {len(orphans)} run(s) marked KILLED" + "".join(f"\n  {r}" for r in orphans))


if __name__ == "__main__":
    main(sys.argv[1:])
