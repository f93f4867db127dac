"""MLflow: where runs go and what each training run records.

The tracking URI is always passed explicitly (Lightning's MLFlowLogger would otherwise
fall back to the deprecated ./mlruns file store): `tracking.uri`, else
$MLFLOW_TRACKING_URI, else the sqlite file `mlflow.db` in the project directory.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from pipeline.config import Config, to_flat_dict
from pipeline.errors import PipelineError

DEFAULT_URI = "sqlite:///mlflow.db"
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # runs stay on this machine
# Metrics logged asynchronously (train.py) are merged into one database write per second
# instead of one per call: a sqlite write costs ~4 ms of CPU, an epoch ~20 ms.
os.environ.setdefault("MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS", "1")


def tracking_uri(cfg: Config) -> str:
    return cfg.tracking.uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_URI


def experiment_id(client: MlflowClient, name: str) -> str:
    """The experiment's id, creating it if needed (tolerates a concurrent creator)."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    try:
        return client.create_experiment(name)
    except MlflowException:
        return client.get_experiment_by_name(name).experiment_id


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
    except OSError:
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def data_hash(directory: str | Path) -> str:
    """SHA256 over the normalized split files: which data a run was trained on."""
    digest = hashlib.sha256()
    for name in ("train.npz", "valid.npz"):
        digest.update((Path(directory) / name).read_bytes())
    return digest.hexdigest()


def logged_params(cfg: Config) -> dict:
    """The flattened config, minus the tracking section (a URI may carry credentials)."""
    return {k: v for k, v in to_flat_dict(cfg).items() if not k.startswith("tracking.")}


def start_run(cfg: Config, run_name: str | None = None, tags: dict | None = None) -> tuple[MlflowClient, str]:
    """Create the run that one training records into; return the client and run id."""
    client = MlflowClient(tracking_uri(cfg))
    tags = dict(tags or {})
    commit = git_commit()
    if commit:
        tags["mlflow.source.git.commit"] = commit
    tags["data.sha256"] = data_hash(cfg.paths.normalized)
    run = client.create_run(
        experiment_id(client, cfg.tracking.experiment),
        run_name=run_name or cfg.tracking.run_name,
        tags=tags,
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
