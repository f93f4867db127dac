"""Compare a sweep's runs: a table in the terminal and a PNG of accuracy against each swept parameter.

    python -m pipeline.compare latest                  # the most recent sweep
    python -m pipeline.compare 2026-11-29_11-46-24     # a sweep by name (its sweep directory's name)
    python -m pipeline.compare 3e1ff846f5bf...         # a sweep by its parent run id

<sweep> names the sweep's MLflow parent run (pipeline/sweep.py): its run id, its run name, or
`latest`. Runs are read with mlflow.search_runs from `--tracking-uri` (default: as training
resolves it from conf/) in `--experiment` (default: tracking.experiment).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import mlflow
import pandas as pd
from mlflow import MlflowClient

from pipeline import inputs, tracking
from pipeline.config import compose, run_stage, validate
from pipeline.errors import PipelineError
from pipeline.figures import plt, save
from pipeline.sweep import METRIC, PARENT_TAG, children

ACCURACY = f"metrics.{METRIC}"
IS_SWEEP = "tags.`sweep.dir` LIKE '%'"  # parent runs carry the sweep's directory


def find_parent(client: MlflowClient, experiment_id: str, sweep: str):
    """The sweep's parent run from its id, its name, or `latest`."""
    if re.fullmatch(r"[0-9a-f]{32}", sweep):
        return client.get_run(sweep)
    name = "" if sweep == "latest" else f" AND attributes.run_name = '{sweep}'"
    runs = client.search_runs([experiment_id], filter_string=IS_SWEEP + name, order_by=["attributes.start_time DESC"],
                              max_results=1)
    if not runs:
        raise PipelineError(f"sweep '{sweep}': no such sweep (parent run) in experiment {experiment_id}; "
                            "expected a parent run id, a sweep name, or 'latest'")
    return runs[0]


def sweep_runs(uri: str, parent) -> pd.DataFrame:
    """The parent's child runs as mlflow.search_runs returns them, best first."""
    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.`{PARENT_TAG}` = '{parent.info.run_id}'",
        order_by=[f"metrics.{METRIC} DESC"],
    )
    if runs.empty:
        raise PipelineError(f"sweep '{parent.info.run_name}' ({parent.info.run_id}): no child runs")
    return runs


def swept_params(parent, runs: pd.DataFrame) -> list[str]:
    """The parameters the sweep varied: as the parent recorded them, else those that differ."""
    recorded = [key for key in parent.data.tags.get("sweep.swept_keys", "").split(",") if key]
    columns = [f"params.{key}" for key in recorded if f"params.{key}" in runs]
    if columns:
        return columns
    return [c for c in runs.columns if c.startswith("params.") and runs[c].nunique(dropna=False) > 1]


def table(runs: pd.DataFrame, params: list[str]) -> str:
    shown = runs[["run_id", "status", *params, ACCURACY]].copy()
    shown["run_id"] = shown["run_id"].str[:8]
    shown.columns = [c.removeprefix("params.").removeprefix("metrics.") for c in shown.columns]
    return shown.to_string(index=False, float_format=lambda x: f"{x:.4f}")


def as_numbers(values: pd.Series) -> pd.Series | None:
    numbers = pd.to_numeric(values, errors="coerce")
    return None if numbers.isna().any() else numbers


def plot(runs: pd.DataFrame, params: list[str], title: str, path: Path) -> Path:
    """One panel per swept parameter: accuracy of every finished run against its value; best in red."""
    finished = runs.dropna(subset=[ACCURACY])
    fig, axes = plt.subplots(1, max(len(params), 1), figsize=(4 * max(len(params), 1), 3.5), squeeze=False,
                             sharey=True)
    for ax, column in zip(axes[0], params):
        numbers = as_numbers(finished[column])
        x = numbers if numbers is not None else finished[column].astype(str)
        ax.scatter(x, finished[ACCURACY], color="tab:blue")
        ax.scatter(x.iloc[:1], finished[ACCURACY].iloc[:1], color="tab:red", label="best")
        if numbers is not None and numbers.min() > 0 and numbers.max() / numbers.min() >= 10:
            ax.set_xscale("log")
        ax.set_xlabel(column.removeprefix("params."))
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("validation accuracy")
    axes[0][0].legend()
    fig.suptitle(title)
    fig.tight_layout()
    return save(fig, path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pipeline.compare", description=__doc__.splitlines()[0])
    parser.add_argument("sweep", help="the sweep's parent run id, its name, or 'latest'")
    parser.add_argument("--tracking-uri", help="default: tracking.uri, else $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db")
    parser.add_argument("--experiment", help="default: tracking.experiment from conf/")
    parser.add_argument("--png", type=Path, help="default: outputs/compare/<sweep name>.png")
    args = parser.parse_args(argv)

    cfg = validate(compose())
    uri = args.tracking_uri or tracking.tracking_uri(cfg)
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(args.experiment or cfg.tracking.experiment)
    if experiment is None:
        raise PipelineError(f"{uri}: no experiment '{args.experiment or cfg.tracking.experiment}'")
    parent = find_parent(client, experiment.experiment_id, args.sweep)
    runs = sweep_runs(uri, parent)
    inputs.check_recorded_data(children(client, parent))  # no run shown for data it did not train on
    params = swept_params(parent, runs)
    name = parent.info.run_name
    print(f"sweep {name} (parent run {parent.info.run_id}, {parent.info.status}): {len(runs)} runs, "
          f"overrides: {parent.data.tags.get('sweep.overrides', '')}")
    print(table(runs, params))
    png = plot(runs, params, f"sweep {name}", args.png or Path("outputs/compare") / f"{name}.png")
    print(f"plot: {png}")


if __name__ == "__main__":
    run_stage(main)
