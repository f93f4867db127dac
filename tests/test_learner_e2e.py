"""The README's two commands on the synthetic data: the learner sweep (a Hydra multirun), then the report."""

import subprocess
import sys

import pytest
from mlflow import MlflowClient

from pipeline.report.build import sweep_variants
from tests.conftest import REPO

pytestmark = pytest.mark.slow


def command(*args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def test_learner_sweep_then_report(normalized, tmp_path):
    shared = [f"tracking.uri={normalized.tracking.uri}", "optim.epochs=2"]
    command(
        "pipeline.train",
        "-m",
        "+experiment=learner",
        *shared,
        f"paths.normalized={normalized.paths.normalized}",
        "tracking.log_model=false",
        "trainer.accelerator=cpu",
        f"hydra.sweep.dir={tmp_path}/sweep",
    )
    client = MlflowClient(normalized.tracking.uri)
    experiment = client.get_experiment_by_name("learner")
    runs = [r for r in client.search_runs([experiment.experiment_id]) if "final_val_acc" in r.data.metrics]
    assert sorted(r.info.run_name for r in runs) == sorted(sweep_variants())
    assert all(r.info.status == "FINISHED" for r in runs)

    done = command("pipeline.report", "--out", str(tmp_path / "report"), *shared)
    assert done.stdout.strip() == f"report: {tmp_path}/report/index.html"
    page = (tmp_path / "report/index.html").read_text()
    for run in runs:
        assert run.info.run_id in page
