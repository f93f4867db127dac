"""Compare runs: a sweep's (Hydra multirun) or a set of DVC experiments', as a table, best first.

    python -m pipeline.compare latest                    # the most recent sweep in the store
    python -m pipeline.compare 2026-11-29_11-46-24       # a sweep by name (its sweep directory's name)
    python -m pipeline.compare 3e1ff846f5bf...           # a sweep by its parent run id
    python -m pipeline.compare latest --png lr.png       # and a PNG: accuracy against each swept key
    python -m pipeline.compare --dvc-exps                # the runs of every DVC experiment
    python -m pipeline.compare --dvc-exps lr-half no-bias

A sweep is its MLflow parent run (pipeline/launch/sweep.py) and its child runs, looked for in
every experiment of the store. A DVC experiment's run carries the tag `dvc.exp_name`; the latest
run of each name is shown. Columns: the swept keys in the sweep's order (DVC experiments: the
params that differ, sorted), then final_val_acc: best first by validation accuracy, ties keep the
earlier run first. The test accuracy is not shown: a comparison chooses, and nothing chooses on test.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from pipeline.config.cli import ArgumentParser, run_command
from pipeline.config.compose import compose, validate
from pipeline.config.errors import PipelineError
from pipeline.model.metric_names import FINAL_VAL_ACC as METRIC
from pipeline.model.pictures import save, subplots
from pipeline.tracking import store
from pipeline.tracking.lineage import check_recorded_data
from pipeline.tracking.sweep_runs import children

ACCURACY = f"metrics.{METRIC}"
IS_SWEEP = "tags.`sweep.dir` LIKE '%'"  # parent runs carry the sweep's directory
DVC_EXP_TAG = "dvc.exp_name"  # the DVC experiment a run belongs to
ORDER = "best first by validation accuracy"  # the column final_val_acc


def experiment_names(client: MlflowClient) -> dict[str, str]:
    """id -> name of every experiment in the store."""
    return {e.experiment_id: e.name for e in client.search_experiments()}


def find_parent(client: MlflowClient, experiments: dict[str, str], sweep: str):
    """The sweep's parent run from its id, its name, or `latest`, in any experiment of the store."""
    if re.fullmatch(r"[0-9a-f]{32}", sweep):
        try:
            run = client.get_run(sweep)
        except MlflowException:
            raise PipelineError(f"sweep '{sweep}': no such run in the store") from None
        if "sweep.dir" not in run.data.tags:
            raise PipelineError(
                f"run {sweep} in experiment '{experiments[run.info.experiment_id]}' is not a sweep's parent run"
            )
        return run
    name = "" if sweep == "latest" else f" AND attributes.run_name = '{sweep}'"
    runs = client.search_runs(
        list(experiments), filter_string=IS_SWEEP + name, order_by=["attributes.start_time DESC"], max_results=1
    )
    if not runs:
        searched = ", ".join(f"'{n}'" for n in sorted(experiments.values())) or "none"
        raise PipelineError(
            f"sweep '{sweep}': no such sweep (parent run) in the experiments of the store "
            f"({searched}); expected a parent run id, a sweep name, or 'latest'"
        )
    return runs[0]


def as_table(runs: list) -> pd.DataFrame:
    """Runs as rows: run_id, status, params.*, metrics.final_val_acc (in the order given)."""
    return pd.DataFrame(
        [
            {
                "run_id": run.info.run_id,
                "status": run.info.status,
                DVC_EXP_TAG: run.data.tags.get(DVC_EXP_TAG),
                **{f"params.{k}": v for k, v in run.data.params.items()},
                ACCURACY: run.data.metrics.get(METRIC, float("nan")),
            }
            for run in runs
        ]
    )


def varying_params(runs: pd.DataFrame) -> list[str]:
    return sorted(c for c in runs.columns if c.startswith("params.") and runs[c].nunique(dropna=False) > 1)


def swept_params(parent, runs: pd.DataFrame) -> list[str]:
    """The keys the sweep varied, once each, in the order the parent recorded them; else those that differ."""
    recorded = [key for key in parent.data.tags.get("sweep.swept_keys", "").split(",") if key]
    columns = list(dict.fromkeys(f"params.{key}" for key in recorded if f"params.{key}" in runs))
    return columns or varying_params(runs)


def dvc_experiment_runs(client: MlflowClient, experiments: dict[str, str], names: list[str]) -> list:
    """The latest run of each DVC experiment (of `names`, or all), best first, ties by start time."""
    latest = {}
    for run in client.search_runs(
        list(experiments),
        filter_string=f"tags.`{DVC_EXP_TAG}` LIKE '%'",
        order_by=["attributes.start_time DESC"],
        max_results=10_000,
    ):
        latest.setdefault(run.data.tags[DVC_EXP_TAG], run)
    missing = [name for name in names if name not in latest]
    if missing or not latest:
        raise PipelineError(
            f"DVC experiment(s) {', '.join(missing) or '(any)'}: no run tagged {DVC_EXP_TAG} in the "
            f"experiments of the store ({', '.join(repr(n) for n in sorted(experiments.values()))}); "
            f"runs with that tag: {', '.join(sorted(latest)) or 'none'}"
        )
    runs = [latest[name] for name in names] if names else list(latest.values())
    return sorted(runs, key=lambda r: (-r.data.metrics.get(METRIC, float("-inf")), r.info.start_time))


def table(runs: pd.DataFrame, first: list[str], params: list[str]) -> str:
    shown = runs[[*first, "run_id", "status", *params, ACCURACY]].copy()
    shown["run_id"] = shown["run_id"].str[:8]
    shown.columns = [c.removeprefix("params.").removeprefix("metrics.") for c in shown.columns]
    return shown.to_string(index=False, float_format=lambda x: f"{x:.4f}")


def as_numbers(values: pd.Series) -> pd.Series | None:
    numbers = pd.to_numeric(values, errors="coerce")
    return None if numbers.isna().any() else numbers


def plot(runs: pd.DataFrame, params: list[str], title: str, path: Path) -> Path:
    """One panel per swept parameter: accuracy of every finished run against its value; best in red."""
    finished = runs.dropna(subset=[ACCURACY])
    fig, axes = subplots(1, max(len(params), 1), figsize=(4 * max(len(params), 1), 3.5), squeeze=False, sharey=True)
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
    parser = ArgumentParser(
        prog="python -m pipeline.compare",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("sweep", nargs="?", help="the sweep's parent run id, its name (its directory's), or 'latest'")
    parser.add_argument("--dvc-exps", nargs="*", metavar="NAME", help="these DVC experiments' runs (none named: all)")
    store_help = "the MLflow store; default: tracking.uri from conf/, else $MLFLOW_TRACKING_URI, else ./mlflow.db"
    parser.add_argument("--tracking-uri", help=store_help)
    parser.add_argument("--png", type=Path, metavar="FILE", help="also write a PNG of accuracy against each column")
    args = parser.parse_args(argv)
    if (args.sweep is None) == (args.dvc_exps is None):
        parser.error("expected a sweep (a parent run id, a sweep name, or 'latest') or --dvc-exps, not both")

    uri = args.tracking_uri or store.tracking_uri(validate(compose()))
    client = MlflowClient(uri)
    experiments = experiment_names(client)
    if args.dvc_exps is not None:
        runs = as_table(dvc_experiment_runs(client, experiments, args.dvc_exps))
        params, first, title = varying_params(runs), [DVC_EXP_TAG], "DVC experiments"
        print(f"DVC experiments: {len(runs)} runs (tag {DVC_EXP_TAG}) in {uri}; {ORDER}")
    else:
        parent = find_parent(client, experiments, args.sweep)
        experiment = experiments[parent.info.experiment_id]
        found = children(client, parent)
        check_recorded_data(found)  # no run shown for data it did not train on
        if not found:
            raise PipelineError(
                f"sweep '{parent.info.run_name}' ({parent.info.run_id}) in experiment '{experiment}': no child runs"
            )
        runs = as_table(found)
        params, first, title = swept_params(parent, runs), [], f"sweep {parent.info.run_name}"
        print(
            f"sweep {parent.info.run_name} in experiment '{experiment}' (parent run {parent.info.run_id}, "
            f"{parent.info.status}): {len(runs)} runs, overrides: {parent.data.tags.get('sweep.overrides', '')}; "
            + ORDER
        )
    print(table(runs, first, params))
    if args.png:
        print(f"plot: {plot(runs, params, title, args.png)}")


if __name__ == "__main__":
    run_command(main)
