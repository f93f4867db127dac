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

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from pipeline.config import Config, to_flat_dict

DEFAULT_URI = "sqlite:///mlflow.db"
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # runs stay on this machine


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


# --- data lineage: which data a run trained on, as MLflow datasets and DVC's hash --------

SPLIT_CONTEXTS = {"train.npz": "training", "valid.npz": "validation"}


def file_md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


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
    client.log_inputs(run_id, datasets=inputs)

    computed, locked = dvc_md5(cfg.paths.normalized), locked_md5(cfg.paths.normalized)
    client.set_tag(run_id, "data.dvc_md5", computed)
    if locked is not None:
        client.set_tag(run_id, "data.dvc_lock", "matches" if locked == computed else f"differs: dvc.lock has {locked}")
    manifest = Path(cfg.paths.raw) / "manifest.json"
    if manifest.is_file():
        fetched = json.loads(manifest.read_text())
        client.set_tag(run_id, "data.origin", f"{fetched['source']}: {fetched['origin']}")
