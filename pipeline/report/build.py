"""`python -m pipeline.report`: report/index.html answering the learner's questions from MLflow.

    python -m pipeline.train -m +experiment=learner          # the runs (MLflow experiment `learner`)
    python -m pipeline.train -m +experiment=learning_rates   # the learning-rate study, same experiment
    python -m pipeline.report [--out report] [overrides]

Every measured number comes from the runs of those two sweeps (pipeline/report/runs.py says how
they are found: pass the sweeps' own overrides, e.g. `fit.epochs=5 seed=0,1`). Each run's
per-image predictions (predictions.csv) pair it with the other arms' runs of the same seed for
McNemar's test. Only fastbook's published figures are constants, shown as references. Missing
runs: one line naming them, exit 1, no report written.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from mlflow import MlflowClient

from pipeline.config.atomic import atomic_directory
from pipeline.config.cli import ArgumentParser
from pipeline.config.project import project_dir
from pipeline.report import page
from pipeline.report.artifacts import correctness
from pipeline.report.runs import find_runs


def build(out: Path, overrides: list[str]) -> Path:
    """Write out/index.html and its pictures from the runs; the directory appears whole or not at all."""
    measured, uri, experiment = find_runs(overrides)
    client = MlflowClient(uri)
    correct = correctness(client, measured)
    with atomic_directory(out) as scratch:
        html = page.render(
            measured,
            correct,
            client,
            scratch,
            source={
                "tracking URI": uri,
                "experiment": experiment,
                "generated": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            },
        )
        (scratch / "index.html").write_text(html)
    return out / "index.html"


def main(argv: list[str] | None = None) -> None:
    parser = ArgumentParser(prog="python -m pipeline.report", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="output directory (replaced whole); default: report/ in the project")
    parser.add_argument("overrides", nargs="*", help="the Hydra overrides the sweeps ran with")
    args = parser.parse_args(argv)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one line of output, not bars
    path = build(args.out or project_dir() / "report", args.overrides)
    print(f"report: {path}")
