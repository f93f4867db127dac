"""The runs the report reads from MLflow, found by their configuration, and what it reads from them.

The report compares *arms*: each model of the learner sweep (conf/experiment/learner.yaml: every
model of conf/model/, with its own recipe) and each learning rate of the learning-rate study
(conf/experiment/learning_rates.yaml), each over the same seeds. An arm's run for a seed is the
latest FINISHED run in the experiment whose model, optim, fit, data and seed params equal that arm's
composed config (pass the sweeps' own overrides, e.g. `fit.epochs=5` or `seed=0,1`, so they
compose alike). Runs without metrics (a sweep's parent run) are skipped, and so are runs validated on
other images than the chosen runs (their validation dataset's digest differs: e.g. runs recorded
before the three splits, whose validation images were MNIST's test set), with one line saying so.
Missing runs: ReportError naming them and the command that makes them.

What the report reads of a run: its test accuracy (`test_acc`) and per-image test predictions
(test_predictions.csv) for every number and test it prints; its validation accuracy only to choose
(the best arm, the order of the ladder), as every choice in the pipeline does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import mlflow
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Glob
from mlflow import MlflowClient
from mlflow.entities import Run
from omegaconf import OmegaConf

from pipeline.config.compose import CONF_DIR, compose, validate
from pipeline.config.errors import ReportError
from pipeline.config.models import model_names
from pipeline.model.metric_names import FINAL_VAL_ACC, TEST_ACC
from pipeline.report.significance import Spread, spread
from pipeline.tracking import store
from pipeline.tracking.lineage import check_recorded_data, validation_digest

LEARNER, LEARNING_RATES = "learner", "learning_rates"  # the two sweeps, in conf/experiment/
# The params that make two runs the same experiment (paths, trainer and tracking do not).
IDENTITY = ("seed", "data.", "model.", "optim.", "fit.")


def sweep_command(experiment: str) -> str:
    return f"python -m pipeline.train -m +experiment={experiment}"


def sweep_values(experiment: str, key: str) -> list[str]:
    """The values a sweep gives `key` (e.g. `model`, `seed`), read from its hydra.sweeper.params;
    a glob over a config group (`model: glob(*)`) stands for the group's options in conf/."""
    params = OmegaConf.load(CONF_DIR / "experiment" / f"{experiment}.yaml").hydra.sweeper.params
    [override] = OverridesParser.create().parse_overrides([f"{key}={params[key]}"])
    if isinstance(override.value(), Glob):
        return override.value().filter(model_names())
    return list(override.sweep_string_iterator())


def sweep_models() -> list[str]:
    return sweep_values(LEARNER, "model")


@dataclass(frozen=True)
class Arm:
    """One configuration the report compares: its name and how it composes."""

    name: str
    experiment: str  # the sweep that runs it
    overrides: tuple[str, ...]


def arms() -> list[Arm]:
    """The learner sweep's models, then the learning-rate study's rates (the default rate is `linear`'s)."""
    models = [Arm(m, LEARNER, ("+experiment=learner", f"model={m}")) for m in sweep_models()]
    rates = [
        Arm(f"linear lr={lr}", LEARNING_RATES, ("+experiment=learning_rates", f"optim.lr={lr}"))
        for lr in sweep_values(LEARNING_RATES, "optim.lr")
    ]
    return models + rates


def split_seeds(overrides: list[str]) -> tuple[list[int], list[str]]:
    """The seeds (a `seed=...` override, as the sweeps took it, else the learner sweep's) and the other overrides."""
    seeds, rest = [int(s) for s in sweep_values(LEARNER, "seed")], []
    for override in OverridesParser.create().parse_overrides(overrides):
        if override.key_or_group == "seed":
            sweep = override.is_sweep_override()
            seeds = [int(s) for s in (override.sweep_string_iterator() if sweep else [override.value()])]
        else:
            rest.append(override.input_line)
    return seeds, rest


@dataclass
class Measured:
    """One arm and its runs, one per seed (in seed order)."""

    name: str
    runs: dict[int, Run]

    @property
    def run(self) -> Run:
        """The first seed's run: the one whose pictures and weights the report shows."""
        return next(iter(self.runs.values()))

    @property
    def params(self) -> dict[str, str]:
        return self.run.data.params

    def values(self, metric: str) -> list[float]:
        return [run.data.metrics[metric] for run in self.runs.values()]

    def spread(self, metric: str = TEST_ACC) -> Spread:
        """A metric over the seeds; by default the test accuracy, what the report prints."""
        return spread(self.values(metric))

    @property
    def validation(self) -> float:
        """The mean validation accuracy over the seeds: what the report's choices read (never test)."""
        return self.spread(FINAL_VAL_ACC).mean


def expected_params(arm: Arm, overrides: list[str]) -> tuple:
    """An arm's composed config and the params (as MLflow stores them, seed aside) that identify its runs."""
    cfg = validate(compose([*arm.overrides, *overrides]))
    params = {k: str(v) for k, v in store.logged_params(cfg).items() if k.startswith(IDENTITY) and k != "seed"}
    return cfg, params


def find_runs(overrides: list[str]) -> tuple[list[Measured], str, str]:
    """The latest finished run of each arm and seed; ReportError naming those without one."""
    seeds, overrides = split_seeds(overrides)
    expected = {arm: expected_params(arm, overrides) for arm in arms()}
    cfg = next(iter(expected.values()))[0]
    uri, experiment = store.tracking_uri(cfg), cfg.tracking.experiment
    first = sweep_command(LEARNER)
    if uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///") :]).is_file():  # do not create it
        raise ReportError(f"{uri}: no such MLflow database; run `{first}` first")
    mlflow.set_tracking_uri(uri)
    if MlflowClient(uri).get_experiment_by_name(experiment) is None:
        raise ReportError(f"{uri}: no MLflow experiment '{experiment}'; run `{first}` first")
    runs = mlflow.search_runs(
        experiment_names=[experiment],
        filter_string="attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        output_format="list",
    )
    runs = [run for run in runs if FINAL_VAL_ACC in run.data.metrics]  # not a parent run
    runs = same_validation_data(runs, experiment)
    found, missing, commands = [], [], []
    for arm, (_, params) in expected.items():
        by_seed = {}
        for seed in seeds:
            wanted = {**params, "seed": str(seed)}
            match = next((r for r in runs if all(r.data.params.get(k) == v for k, v in wanted.items())), None)
            if match is None:
                missing.append(f"{arm.name} seed {seed}")
                commands += [] if sweep_command(arm.experiment) in commands else [sweep_command(arm.experiment)]
            else:
                by_seed[seed] = match
        found.append(Measured(arm.name, by_seed))
    if missing:
        raise ReportError(
            f"{uri}: experiment '{experiment}' has no finished run of {', '.join(missing)} "
            f"(with these settings); run `{'` and `'.join(commands)}` first"
        )
    check_recorded_data(run for m in found for run in m.runs.values())  # each on the data its params say
    return found, uri, experiment


def same_validation_data(runs: list[Run], experiment: str) -> list[Run]:
    """The runs validated on the newest run's validation images (with a test split); the others are
    left out, with one line saying how many and on what they were validated."""
    scored = [run for run in runs if TEST_ACC in run.data.metrics]
    digest = validation_digest(scored[0]) if scored else None
    kept = [run for run in scored if validation_digest(run) == digest]
    other = [run for run in runs if run not in kept]
    if other:
        digests = sorted({validation_digest(run) or "none recorded" for run in other})
        print(
            f"report: left out {len(other)} run(s) of experiment '{experiment}' validated on other images "
            f"(validation digest {', '.join(d[:12] for d in digests)}, not {(digest or '?')[:12]}; e.g. "
            "recorded before the three splits, when MNIST's test set was the validation set)"
        )
    return kept
