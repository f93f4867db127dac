"""The README's commands on the synthetic data: the learner sweep and the learning-rate study (Hydra
multiruns, two seeds, two epochs), then the report."""

import subprocess
import sys

import pytest
from mlflow import MlflowClient

from pipeline.model.metric_names import FINAL_VAL_ACC
from pipeline.report.runs import sweep_models, sweep_values
from tests.conftest import REPO

pytestmark = pytest.mark.slow

SEEDS = (0, 1)


def command(*args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def test_learner_sweeps_then_report(normalized, tmp_path):
    seeds = ",".join(map(str, SEEDS))  # data.valid_last: as the synthetic data was made (runs record the data's)
    shared = [f"tracking.uri={normalized.tracking.uri}", "fit.epochs=2", f"seed={seeds}", "data.valid_last=150"]
    for experiment in ("learner", "learning_rates"):
        command(
            "pipeline.train",
            "-m",
            f"+experiment={experiment}",
            *shared,
            f"paths.normalized={normalized.paths.normalized}",
            "tracking.log_model=false",
            "trainer.accelerator=cpu",
            f"hydra.sweep.dir={tmp_path}/{experiment}",
        )
    client = MlflowClient(normalized.tracking.uri)
    experiment = client.get_experiment_by_name("learner")
    runs = [r for r in client.search_runs([experiment.experiment_id]) if FINAL_VAL_ACC in r.data.metrics]
    models = [f"model={m},seed={s}" for m in sweep_models() for s in SEEDS]
    rates = [f"optim.lr={lr},seed={s}" for lr in sweep_values("learning_rates", "optim.lr") for s in SEEDS]
    assert sorted(r.info.run_name for r in runs) == sorted(models + rates)
    assert all(r.info.status == "FINISHED" for r in runs)

    done = command("pipeline.report", "--out", str(tmp_path / "report"), *shared)
    assert done.stdout.strip() == f"report: {tmp_path}/report/index.html"
    page = (tmp_path / "report/index.html").read_text()
    for run in runs:
        assert run.info.run_id in page
