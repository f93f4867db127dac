"""Shared fixtures: small generated MNIST-like data and configs pointed at a temporary tree."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest

from pipeline.config.compose import compose, validate
from pipeline.config.schema import Config
from pipeline.data import idx
from tests import system_deps

REPO = Path(__file__).resolve().parent.parent
USAGE_REPORTS_OFF = {"DVC_NO_ANALYTICS": "1", "MLFLOW_DISABLE_TELEMETRY": "true"}


def synthetic_digits(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n 28x28 uint8 images, labels cycling 0..9; digit d is a bright bar in row band d plus noise,
    so a linear model can separate any two digits."""
    rng = np.random.default_rng(seed)
    labels = (np.arange(n) % 10).astype(np.uint8)
    rng.shuffle(labels)
    images = rng.integers(0, 40, size=(n, 28, 28), dtype=np.uint8)
    for i, digit in enumerate(labels):
        row = 2 + 2 * int(digit)
        images[i, row : row + 3, 4:24] = rng.integers(180, 256, size=(3, 20), dtype=np.uint8)
    return images, labels


def write_idx_dir(directory: Path, n_train: int = 400, n_test: int = 200, gz: bool = False) -> dict[str, bytes]:
    """The four MNIST IDX files of synthetic data in `directory`; returns name -> bytes written."""
    import gzip

    directory.mkdir(parents=True, exist_ok=True)
    written = {}
    for prefix, n, seed in (("train", n_train, 1), ("t10k", n_test, 2)):
        images, labels = synthetic_digits(n, seed)
        for name, array in ((f"{prefix}-images-idx3-ubyte", images), (f"{prefix}-labels-idx1-ubyte", labels)):
            data = idx.encode(array)
            written[name] = data
            (directory / (name + ".gz" if gz else name)).write_bytes(gzip.compress(data) if gz else data)
    return written


def make_config(tmp_path: Path, overrides: list[str] = (), fetch: str = "local") -> Config:
    """conf/ composed with every path under tmp_path, tracking to a sqlite file there, few epochs;
    fetching from `fetch` (by default the synthetic IDX files in tmp_path/idx)."""
    base = [
        f"fetch={fetch}",
        f"paths.raw={tmp_path}/data/raw",
        f"paths.filtered={tmp_path}/data/filtered",
        f"paths.normalized={tmp_path}/data/normalized",
        f"paths.model={tmp_path}/models",
        f"paths.metrics={tmp_path}/metrics.json",
        f"paths.plots={tmp_path}/plots",
        f"tracking.uri=sqlite:///{tmp_path}/mlflow.db",
        "fetch.verify_canonical=false",
        "data.valid_last=150",  # the last 150 of the small training set validate
        "fit.epochs=3",
        "trainer.accelerator=cpu",
    ]
    if fetch == "local":
        base.append(f"fetch.local_dir={tmp_path}/idx")
    return validate(compose(base + list(overrides)))


@pytest.fixture
def synthetic_idx(tmp_path: Path) -> Path:
    write_idx_dir(tmp_path / "idx")
    return tmp_path / "idx"


@pytest.fixture
def cfg(tmp_path: Path, synthetic_idx: Path) -> Config:
    return make_config(tmp_path)


@pytest.fixture
def normalized(cfg: Config) -> Config:
    """cfg after fetch, filter and normalize have run on the synthetic data."""
    from pipeline.fetch import fetch
    from pipeline.filter import filter_digits
    from pipeline.normalize import normalize

    fetch(cfg)
    filter_digits(cfg)
    normalize(cfg)
    return cfg


# What DVC (a stage command) or a Hydra app tells a process about its project and experiment.
PROJECT_ENV = ("DVC_ROOT", "DVC_EXP_NAME", "DVC_EXP_BASELINE_REV", "DVC_STAGE", "PIPELINE_PROJECT_DIR")


@pytest.fixture(autouse=True)
def _isolated_mlflow(monkeypatch, tmp_path):
    """No test writes to the project's own store or reads the caller's MLFLOW_* settings, or
    inherits the project and experiment DVC would name (the tests may themselves run under DVC)."""
    for key in list(os.environ):
        if (key.startswith("MLFLOW_") and key != "MLFLOW_DISABLE_TELEMETRY") or key in PROJECT_ENV:
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


def pytest_configure(config: pytest.Config) -> None:
    """The tests, and every command they start, send no usage reports: DVC's analytics (a `dvc daemon
    analytics` process after a dvc command) and MLflow's telemetry are off (README, "Usage reports")."""
    os.environ.update(USAGE_REPORTS_OFF)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test marked `needs_chromium`, `needs_postgres`, `needs_podman` or `needs_docker` is skipped, with the
    reason, where that program is missing; under CI=true it fails instead: CI installs every one (`make test` as
    root), so none goes unchecked."""
    for marker in item.iter_markers():
        reason = system_deps.missing(marker.name)
        if reason and os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and {reason}", pytrace=False)
        if reason:
            pytest.skip(reason)


LEARNER_SEEDS = (0, 1)  # the learner arms run with these seeds in tests (two: a spread, a pair per arm)


class LearnerRuns(NamedTuple):
    uri: str  # the tracking URI holding the runs
    overrides: list[str]  # what the report needs to find them
    normalized: Path  # the data they trained on


@pytest.fixture(scope="session")
def learner_runs(tmp_path_factory) -> LearnerRuns:
    """A finished run of every arm the report compares (the learner sweep's models and the
    learning-rate study's rates) for each of LEARNER_SEEDS, trained on the synthetic data for 2 epochs."""
    from pipeline.fetch import fetch
    from pipeline.filter import filter_digits
    from pipeline.normalize import normalize
    from pipeline.report.runs import arms
    from pipeline.train import train

    tmp = tmp_path_factory.mktemp("learner")
    write_idx_dir(tmp / "idx")
    base = make_config(tmp)
    fetch(base), filter_digits(base), normalize(base)
    for arm in arms():
        for seed in LEARNER_SEEDS:
            overrides = [*arm.overrides, f"seed={seed}", "tracking.log_model=false", "fit.epochs=2"]
            train(make_config(tmp, overrides), tmp / "runs" / f"{arm.name}-{seed}", run_name=f"{arm.name},seed={seed}")
    seeds = ",".join(str(seed) for seed in LEARNER_SEEDS)
    overrides = [f"tracking.uri={base.tracking.uri}", "fit.epochs=2", f"seed={seeds}", "data.valid_last=150"]
    return LearnerRuns(base.tracking.uri, overrides, Path(base.paths.normalized))


def mlflow_store(directory: Path) -> Path:
    """An MLflow sqlite store (all its tables) holding one finished run with a few params and metrics."""
    from mlflow import MlflowClient

    directory.mkdir(parents=True, exist_ok=True)
    database = directory / "mlflow.db"
    client = MlflowClient(f"sqlite:///{database}")
    run = client.create_run(
        client.create_experiment("threes-sevens", artifact_location=(directory / "mlruns").as_uri())
    )
    client.log_param(run.info.run_id, "optim.lr", "0.5")
    for epoch in range(3):
        client.log_metric(run.info.run_id, "val_acc", 0.9 + epoch / 100, step=epoch)
    client.set_terminated(run.info.run_id)
    return database


def damaged_copies(database: Path) -> dict[str, Path]:
    """Two damaged copies of a sqlite database, beside it: `truncated` (cut at 20,000 bytes) and `flipped`
    (16 bytes inverted at the start of the `runs` table's root page: its b-tree page header)."""
    import sqlite3
    from contextlib import closing

    data = database.read_bytes()
    with closing(sqlite3.connect(database)) as db:
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
        root = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'runs'").fetchone()[0]
    flipped = bytearray(data)
    start = (root - 1) * page_size
    flipped[start : start + 16] = bytes(b ^ 0xFF for b in flipped[start : start + 16])
    copies = {"truncated": data[:20_000], "flipped": bytes(flipped)}
    for name, content in copies.items():
        (database.parent / f"{name}.db").write_bytes(content)
    return {name: database.parent / f"{name}.db" for name in copies}
