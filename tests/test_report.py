"""The report on a small tracked run set: every arm (the learner sweep's models, learning rates) trained on the
synthetic data over two seeds (the `learner_runs` fixture, tests/conftest.py)."""

import re
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient

from pipeline.config.cli import run_command
from pipeline.model.metric_names import BIAS, FINAL_VAL_ACC, TEST_ACC
from pipeline.model.predictions import TEST_FILE
from pipeline.report import build as report
from pipeline.report.build import build
from pipeline.report.runs import arms, split_seeds, sweep_models, sweep_values
from tests.conftest import LEARNER_SEEDS


def test_the_report_takes_the_seeds_the_sweeps_ran_with():
    assert split_seeds(["fit.epochs=2"]) == ([int(s) for s in sweep_values("learner", "seed")], ["fit.epochs=2"])
    assert split_seeds(["seed=3,4", "fit.epochs=2"]) == ([3, 4], ["fit.epochs=2"])
    assert split_seeds(["seed=range(0,3)"]) == ([0, 1, 2], [])
    assert split_seeds(["seed=7"]) == ([7], [])


def runs_by_name(client: MlflowClient) -> dict:
    experiment = client.get_experiment_by_name("learner")
    return {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}


def test_report_answers_from_the_runs(learner_runs, tmp_path):
    client = MlflowClient(learner_runs.uri)
    experiment = client.get_experiment_by_name("learner")
    # Neither a run without metrics (a sweep's parent) nor an unfinished run may be picked.
    client.create_run(experiment.experiment_id, run_name="parent")
    failed = client.create_run(experiment.experiment_id, run_name="failed")
    client.log_metric(failed.info.run_id, FINAL_VAL_ACC, 0.123456)
    client.set_terminated(failed.info.run_id, "FAILED")

    page = build(tmp_path / "report", learner_runs.overrides).read_text()
    runs = runs_by_name(client)
    for arm in arms():
        accuracies = [runs[f"{arm.name},seed={seed}"].data.metrics[TEST_ACC] for seed in LEARNER_SEEDS]
        mean, std = np.mean(accuracies), np.std(accuracies, ddof=1)
        spread = f"{100 * mean:.2f}% ± {100 * std:.2f} ({100 * min(accuracies):.2f}–{100 * max(accuracies):.2f}%, "
        assert spread + f"{len(LEARNER_SEEDS)} seeds)" in page, arm
        for seed in LEARNER_SEEDS:
            assert runs[f"{arm.name},seed={seed}"].info.run_id in page, (arm, seed)
    assert "12.35%" not in page and runs["failed"].info.run_id not in page
    linear = runs[f"linear,seed={LEARNER_SEEDS[0]}"].data.metrics
    assert f"{linear[BIAS]:+.3f}" in page  # the first seed's final bias, from the run
    for question in (
        "Why multiply each pixel by a weight?",
        "What is the bias for?",
        "Why not score abs(pixel - weight)?",
        "Is 95% the best there is?",
        "Draw a digit",
    ):
        assert question in page
    # every comparison carries its test's verdict: bias, pixel similarity, a rung over the one below for
    # each model but the first, best, learning rates
    verdicts = re.findall(r"the difference is <b>(significant|within noise)</b>", page)
    assert len(verdicts) == 2 + (len(sweep_models()) - 1) + 1 + len(sweep_values("learning_rates", "optim.lr"))
    assert "97.85%" in page and "reference" in page  # fastbook's own figure, labelled
    assert "<td>6,369</td>" in page and "<td>785</td>" in page  # the ladder's parameter counts, logged by the runs
    pictures = re.findall(r'<img src="([^"]+)"', page)
    expected = {"linear_weights.png", "linear_contributions.png", "pixel_similarity_templates.png", "bias.png"}
    assert expected | {"accuracy.png", "learning_rate.png", "val_acc.png"} <= set(pictures)
    for name in pictures:
        assert (tmp_path / "report" / name).read_bytes()[:4] == b"\x89PNG", name


def test_report_names_the_runs_it_misses_and_the_sweep_that_makes_them(learner_runs, tmp_path, capsys):
    client = MlflowClient(learner_runs.uri)
    names = ("mlp,seed=1", "fastbook,seed=0", "linear lr=0.1,seed=1")
    gone = [run for name, run in runs_by_name(client).items() if name in names]
    for run in gone:
        client.delete_run(run.info.run_id)
    try:
        with pytest.raises(SystemExit) as exit_:
            run_command(report.main, ["--out", str(tmp_path / "report"), *learner_runs.overrides])
    finally:
        for run in gone:
            client.restore_run(run.info.run_id)
    assert exit_.value.code == 1
    [line] = capsys.readouterr().err.splitlines()
    assert "fastbook seed 0, mlp seed 1, linear lr=0.1 seed 1" in line and "'learner'" in line
    assert "`python -m pipeline.train -m +experiment=learner` and `python -m pipeline.train -m " in line
    assert "+experiment=learning_rates` first" in line
    assert not (tmp_path / "report").exists()


def test_report_needs_every_seed(learner_runs, tmp_path, capsys):
    with pytest.raises(SystemExit):
        run_command(report.main, ["--out", str(tmp_path / "report"), *learner_runs.overrides, "seed=0,1,2"])
    assert "cnn seed 2, fastbook seed 2, linear seed 2" in capsys.readouterr().err
    assert not (tmp_path / "report").exists()


def test_report_needs_the_runs_predictions(learner_runs, tmp_path, capsys):
    run = runs_by_name(MlflowClient(learner_runs.uri))["mlp,seed=0"]
    stored = Path(run.info.artifact_uri.removeprefix("file://")) / TEST_FILE  # as a run trained before runs logged it
    stored.rename(tmp_path / TEST_FILE)
    try:
        with pytest.raises(SystemExit):
            run_command(report.main, ["--out", str(tmp_path / "report"), *learner_runs.overrides])
    finally:
        (tmp_path / TEST_FILE).rename(stored)
    assert f"run {run.info.run_id} (mlp, seed 0): no {TEST_FILE}" in capsys.readouterr().err
    assert not (tmp_path / "report").exists()


def test_report_fails_clearly_without_the_experiment(tmp_path, capsys):
    uri = f"sqlite:///{tmp_path}/other.db"
    MlflowClient(uri).create_experiment("threes-sevens")
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        run_command(report.main, ["--out", str(tmp_path / "report"), f"tracking.uri={uri}"])
    assert exit_.value.code == 1
    [line] = capsys.readouterr().err.splitlines()
    assert "no MLflow experiment 'learner'" in line and "+experiment=learner" in line
    assert not (tmp_path / "report").exists()


def test_report_does_not_create_a_missing_database(tmp_path, capsys):
    with pytest.raises(SystemExit):
        run_command(report.main, ["--out", str(tmp_path / "report"), f"tracking.uri=sqlite:///{tmp_path}/no.db"])
    assert "no such MLflow database" in capsys.readouterr().err
    assert not (tmp_path / "no.db").exists() and not (tmp_path / "report").exists()


def test_report_needs_runs_with_the_same_settings(learner_runs, tmp_path, capsys):
    with pytest.raises(SystemExit):
        run_command(report.main, ["--out", str(tmp_path / "report"), *learner_runs.overrides, "fit.epochs=7"])
    assert "no finished run of cnn seed 0, cnn seed 1, fastbook seed 0" in capsys.readouterr().err


def test_report_leaves_out_runs_validated_on_other_images(learner_runs, tmp_path, capsys):
    """A run recorded before the three splits (validated on what is now the test split, no test score),
    newer than the others and with the same params, is left out with one line, never mixed in."""
    import mlflow
    import mlflow.data

    from pipeline.tracking.lineage import SPLIT_CONTEXTS

    client = MlflowClient(learner_runs.uri)
    real = runs_by_name(client)[f"linear,seed={LEARNER_SEEDS[0]}"]
    test_digest = next(
        i.dataset.digest for i in real.inputs.dataset_inputs if i.tags[0].value == SPLIT_CONTEXTS["test"]
    )
    mlflow.set_tracking_uri(learner_runs.uri)
    with mlflow.start_run(experiment_id=real.info.experiment_id, run_name="before the splits") as old:
        mlflow.log_params(real.data.params)
        mlflow.log_metric(FINAL_VAL_ACC, 0.123456)
        old_valid = mlflow.data.from_numpy(np.zeros((2, 784)), digest=test_digest, name="mnist-3-vs-7-valid")
        mlflow.log_input(old_valid, context=SPLIT_CONTEXTS["valid"])
    capsys.readouterr()
    try:
        page = build(tmp_path / "report", learner_runs.overrides).read_text()
    finally:
        client.delete_run(old.info.run_id)
    [line] = capsys.readouterr().out.splitlines()
    assert line.startswith("report: left out 1 run(s) of experiment 'learner' validated on other images")
    assert f"validation digest {test_digest[:12]}" in line and "before the three splits" in line
    assert old.info.run_id not in page and real.info.run_id in page and "12.35%" not in page
