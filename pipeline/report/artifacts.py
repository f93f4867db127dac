"""What the report reads from a run's artifacts and metric histories in MLflow, once runs.py has
found the runs: each run's per-image test correctness (test_predictions.csv, for McNemar's test), a
metric's per-epoch history, and the pictures and arrays the report shows."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from pipeline.config.errors import ReportError
from pipeline.model import predictions
from pipeline.report.runs import Measured


def correctness(client: MlflowClient, measured: list[Measured]) -> dict[str, dict[int, np.ndarray]]:
    """Per arm and seed: which test images the run got right (from its test_predictions.csv)."""
    correct: dict[str, dict[int, np.ndarray]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for m in measured:
            for seed, run in m.runs.items():
                try:
                    path = client.download_artifacts(run.info.run_id, predictions.TEST_FILE, tmp)
                except MlflowException:
                    raise ReportError(
                        f"run {run.info.run_id} ({m.name}, seed {seed}): no {predictions.TEST_FILE} artifact; "
                        "it was trained before runs logged their test predictions: rerun its sweep"
                    ) from None
                correct.setdefault(m.name, {})[seed] = predictions.correct(*predictions.read_predictions(path))
    return correct


def history(client: MlflowClient, run_id: str, key: str) -> list[float]:
    """A metric's values in the order they were logged (one per epoch)."""
    return [m.value for m in sorted(client.get_metric_history(run_id, key), key=lambda m: (m.step, m.timestamp))]


def fetch_artifact(client: MlflowClient, run_id: str, name: str, out: Path, as_name: str) -> str:
    """Copy one of a run's artifacts into the report directory; return its name there."""
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(client.download_artifacts(run_id, name, tmp), out / as_name)
    return as_name


def load_array(client: MlflowClient, run_id: str, name: str) -> np.ndarray:
    """One of a run's .npy artifacts, read into memory."""
    with tempfile.TemporaryDirectory() as tmp:
        return np.load(client.download_artifacts(run_id, name, tmp))
