"""Which data a run trained on: the normalized splits as MLflow dataset inputs (digest = the MD5 of
the split's files), DVC's hash of the directory, whether dvc.lock agrees, and where fetch got the
raw data. All of it from the data as the run read it, once (pipeline/data/normalized.py); and the
refusal of runs whose recorded data contradicts their params."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import mlflow
import mlflow.data
from mlflow.exceptions import MlflowException

from pipeline.config.errors import InputError
from pipeline.config.project import project_dir
from pipeline.config.schema import Config
from pipeline.data.normalized import NormalizedData, x_file

SPLIT_CONTEXTS = {"train": "training", "valid": "validation", "test": "testing"}
DATASET_INSERT_ATTEMPTS = 3
DATASET_DIGITS = re.compile(r"mnist-(\d)-vs-(\d)-")


def dataset_name(digits: list[int], split: str) -> str:
    """The MLflow dataset name of a normalized split (`mnist-3-vs-7-train`)."""
    return f"mnist-{digits[0]}-vs-{digits[1]}-{split}"


def dvc_md5(md5: dict[str, str]) -> str:
    """The `md5: ….dir` DVC gives a directory output from its files' MD5s (DVC's own tree hashing)."""
    from dvc_data.hashfile.hash_info import HashInfo
    from dvc_data.hashfile.tree import Tree

    tree = Tree()
    for name in sorted(md5):
        tree.add(tuple(name.split("/")), None, HashInfo("md5", md5[name]))
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


def log_data_lineage(cfg: Config, data: NormalizedData) -> None:
    """Record on the active run the data it trains on (see the module's docstring)."""
    for split, context in SPLIT_CONTEXTS.items():
        x, y = data.arrays[split]
        with warnings.catch_warnings():  # MLflow registers its local source under two schemes, then warns
            warnings.filterwarnings("ignore", "The specified dataset source can be interpreted in multiple ways")
            dataset = mlflow.data.from_numpy(
                x,
                targets=y,
                source=str((data.directory / x_file(split)).resolve()),
                digest=data.digest(split),
                name=dataset_name(data.digits, split),
            )
        log_input_beside_concurrent_runs(dataset, context)

    computed, locked = dvc_md5(data.md5), locked_md5(data.directory)
    mlflow.set_tag("data.dvc_md5", computed)
    if locked is not None:
        mlflow.set_tag("data.dvc_lock", "matches" if locked == computed else f"differs: dvc.lock has {locked}")
    manifest = Path(cfg.paths.raw) / "manifest.json"
    if manifest.is_file():
        fetched = json.loads(manifest.read_text())
        mlflow.set_tag("data.origin", f"{fetched['source']}: {fetched['origin']}")


def validation_digest(run) -> str | None:
    """The digest of the validation data a run recorded (its `validation` dataset input)."""
    for item in run.inputs.dataset_inputs if run.inputs else []:
        if any(tag.key == "mlflow.data.context" and tag.value == SPLIT_CONTEXTS["valid"] for tag in item.tags):
            return item.dataset.digest
    return None


def check_recorded_data(runs) -> None:
    """Refuse MLflow runs whose dataset inputs are of other digits than their `data.digits` param
    says (recorded before training checked its data): their metrics are not what they claim."""
    for run in runs:
        claimed = run.data.params.get("data.digits")
        names = [i.dataset.name for i in run.inputs.dataset_inputs] if run.inputs else []
        used = {f"[{m[1]}, {m[2]}]" for m in map(DATASET_DIGITS.match, names) if m}
        if claimed and used and used != {claimed}:
            raise InputError(
                f"MLflow run {run.info.run_id} ({run.info.run_name}) says data.digits={claimed} but "
                f"trained on {', '.join(sorted(names))}: its metrics are not of {claimed}; delete it "
                f"(mlflow runs delete --run-id {run.info.run_id}) and train again"
            )
