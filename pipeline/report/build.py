"""`python -m pipeline.report`: report/index.html answering the learner's questions from MLflow.

    python -m pipeline.train -m +experiment=learner    # the runs (MLflow experiment `learner`)
    python -m pipeline.report [--out report] [overrides]

Every measured number comes from the runs of the `learner` sweep, found in MLflow by their
configuration: for each variant the sweep runs (conf/experiment/learner.yaml), the latest
FINISHED run whose model, optim, data and seed params equal that variant's composed config
(pass the sweep's own overrides, e.g. `optim.epochs=5`, so they compose alike). Runs without
metrics (a sweep's parent run) are skipped. Only fastbook's published figures are constants,
shown as references. Missing runs: one line naming the variants, exit 1, no report written.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

import mlflow
from hydra.core.override_parser.overrides_parser import OverridesParser
from mlflow import MlflowClient
from mlflow.entities import Run
from omegaconf import OmegaConf

from pipeline import inputs
from pipeline.atomic import atomic_directory
from pipeline.cli import ArgumentParser
from pipeline.config import CONF_DIR, Config, compose, validate
from pipeline.errors import PipelineError
from pipeline.project import project_dir
from pipeline.report import page
from pipeline.tracking import store

SWEEP = CONF_DIR / "experiment" / "learner.yaml"
SWEEP_COMMAND = "python -m pipeline.train -m +experiment=learner"
# The params that make two runs the same experiment (paths, trainer and tracking do not).
IDENTITY = ("seed", "data.", "model.", "optim.")


class ReportError(PipelineError):
    """The runs the report needs are not in MLflow."""


@dataclass
class Measured:
    """One variant of the sweep and the run that measured it."""

    variant: str
    run: Run

    @property
    def metrics(self) -> dict[str, float]:
        return self.run.data.metrics

    @property
    def params(self) -> dict[str, str]:
        return self.run.data.params


def sweep_variants(sweep: Path = SWEEP) -> list[str]:
    """The variants the learner sweep runs, read from its hydra.sweeper.params."""
    params = OmegaConf.load(sweep).hydra.sweeper.params
    [override] = OverridesParser.create().parse_overrides([f"+variant={params['+variant']}"])
    return list(override.sweep_string_iterator())


def expected_params(variant: str, overrides: list[str]) -> tuple[Config, dict[str, str]]:
    """A variant's composed config and the params (as MLflow stores them) that identify its run."""
    cfg = validate(compose(["+experiment=learner", f"+variant={variant}", *overrides]))
    params = {k: str(v) for k, v in store.logged_params(cfg).items() if k.startswith(IDENTITY)}
    return cfg, params


def find_runs(overrides: list[str]) -> tuple[list[Measured], str, str]:
    """The latest finished run of each variant; ReportError naming the variants without one."""
    variants = sweep_variants()
    expected = {v: expected_params(v, overrides) for v in variants}
    cfg = expected[variants[0]][0]
    uri, experiment = store.tracking_uri(cfg), cfg.tracking.experiment
    if uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///") :]).is_file():  # do not create it
        raise ReportError(f"{uri}: no such MLflow database; run `{SWEEP_COMMAND}` first")
    mlflow.set_tracking_uri(uri)
    if MlflowClient(uri).get_experiment_by_name(experiment) is None:
        raise ReportError(f"{uri}: no MLflow experiment '{experiment}'; run `{SWEEP_COMMAND}` first")
    runs = mlflow.search_runs(
        experiment_names=[experiment],
        filter_string="attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        output_format="list",
    )
    runs = [run for run in runs if "final_val_acc" in run.data.metrics]  # not a parent run
    found, missing = [], []
    for variant, (_, params) in expected.items():
        match = next((r for r in runs if all(r.data.params.get(k) == v for k, v in params.items())), None)
        if match is None:
            missing.append(variant)
        else:
            found.append(Measured(variant, match))
    if missing:
        raise ReportError(
            f"{uri}: experiment '{experiment}' has no finished run of "
            f"{', '.join(missing)} (with these settings); run `{SWEEP_COMMAND}` first"
        )
    inputs.check_recorded_data(m.run for m in found)  # each trained on the data its params say
    return found, uri, experiment


def build(out: Path, overrides: list[str]) -> Path:
    """Write out/index.html and its pictures from the runs; the directory appears whole or not at all."""
    measured, uri, experiment = find_runs(overrides)
    client = MlflowClient(uri)
    with atomic_directory(out) as scratch:
        html = page.render(
            measured,
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
    parser.add_argument("overrides", nargs="*", help="the Hydra overrides the sweep ran with")
    args = parser.parse_args(argv)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one line of output, not bars
    path = build(args.out or project_dir() / "report", args.overrides)
    print(f"report: {path}")
