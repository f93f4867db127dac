"""Which data a run trained on: the normalized splits as MLflow dataset inputs (digest = the
file's MD5, as DVC records it), DVC's hash of the directory, whether dvc.lock agrees, and
where fetch got the raw data."""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import mlflow
import mlflow.data
from mlflow.exceptions import MlflowException

from pipeline.config import Config
from pipeline.inputs import read_split
from pipeline.project import project_dir

SPLIT_CONTEXTS = {"train.npz": "training", "valid.npz": "validation"}
DATASET_INSERT_ATTEMPTS = 3


def file_md5(path: str | Path) -> str:
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


def locked_md5(directory: str | Path, lock: Path | None = None) -> str | None:
    """What dvc.lock (by default the project's) records for `directory` as a stage output
    (None: no lock, or not an output)."""
    lock = lock or project_dir() / "dvc.lock"
    if not lock.is_file():
        return None
    import yaml

    target = Path(directory).resolve()
    for stage in (yaml.safe_load(lock.read_text()) or {}).get("stages", {}).values():
        for out in stage.get("outs", []):
            if (lock.parent / out["path"]).resolve() == target:
                return out.get("md5")
    return None


def log_input_beside_concurrent_runs(dataset, context: str) -> None:
    """mlflow.log_input, tried again when it loses a race: MLflow looks up a dataset in the
    experiment, then inserts it if missing, so parallel jobs of a sweep logging the same splits
    can both miss it and the later insert fails on the (experiment, name, digest) unique key.
    The next attempt finds the row the winner committed and only links it to this run."""
    for attempt in range(1, DATASET_INSERT_ATTEMPTS + 1):
        try:
            mlflow.log_input(dataset, context=context)
            return
        except MlflowException:
            if attempt == DATASET_INSERT_ATTEMPTS:
                raise


def log_data_lineage(cfg: Config) -> None:
    """Record on the active run the data it trains on (see the module's docstring)."""
    for name, context in SPLIT_CONTEXTS.items():
        path = (Path(cfg.paths.normalized) / name).resolve()
        x, y, digits = read_split(path.parent, name)
        with warnings.catch_warnings():  # MLflow registers its local source under two schemes, then warns
            warnings.filterwarnings("ignore", "The specified dataset source can be interpreted in multiple ways")
            dataset = mlflow.data.from_numpy(
                x,
                targets=y,
                source=str(path),
                digest=file_md5(path),
                name=f"mnist-{digits[0]}-vs-{digits[1]}-{name.removesuffix('.npz')}",
            )
        log_input_beside_concurrent_runs(dataset, context)

    computed, locked = dvc_md5(cfg.paths.normalized), locked_md5(cfg.paths.normalized)
    mlflow.set_tag("data.dvc_md5", computed)
    if locked is not None:
        mlflow.set_tag("data.dvc_lock", "matches" if locked == computed else f"differs: dvc.lock has {locked}")
    manifest = Path(cfg.paths.raw) / "manifest.json"
    if manifest.is_file():
        fetched = json.loads(manifest.read_text())
        mlflow.set_tag("data.origin", f"{fetched['source']}: {fetched['origin']}")
