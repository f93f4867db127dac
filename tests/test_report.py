"""The report on a small tracked run set: every learner variant trained on the synthetic data."""

import re

import pytest
from mlflow import MlflowClient

from pipeline.cli import run_stage
from pipeline.report import build as report
from pipeline.report.build import build, sweep_variants
from pipeline.train import train
from tests.conftest import make_config, write_idx_dir

EPOCHS = ["optim.epochs=2"]


@pytest.fixture(scope="module")
def learner_runs(tmp_path_factory) -> tuple[str, list[str]]:
    """A tracking URI holding one finished run of every variant, and the overrides they ran with."""
    from pipeline.fetch import fetch
    from pipeline.filter import filter_digits
    from pipeline.normalize import normalize

    tmp = tmp_path_factory.mktemp("learner")
    write_idx_dir(tmp / "idx")
    base = make_config(tmp)
    fetch(base), filter_digits(base), normalize(base)
    for variant in sweep_variants():
        cfg = make_config(tmp, ["+experiment=learner", f"+variant={variant}", "tracking.log_model=false", *EPOCHS])
        train(cfg, tmp / "runs" / variant, run_name=variant)
    return base.tracking.uri, [f"tracking.uri={base.tracking.uri}", *EPOCHS]


def test_the_sweep_covers_the_learners_questions():
    assert {"pixel_similarity", "linear", "linear_no_bias", "mlp", "fastbook"} <= set(sweep_variants())
    assert len([v for v in sweep_variants() if v.startswith("linear_lr_")]) >= 2


def test_report_answers_from_the_runs(learner_runs, tmp_path):
    uri, overrides = learner_runs
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("learner")
    # Neither a run without metrics (a sweep's parent) nor an unfinished run may be picked.
    client.create_run(experiment.experiment_id, run_name="parent")
    failed = client.create_run(experiment.experiment_id, run_name="failed")
    client.log_metric(failed.info.run_id, "final_val_acc", 0.123456)
    client.set_terminated(failed.info.run_id, "FAILED")

    page = build(tmp_path / "report", overrides).read_text()
    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    for variant in sweep_variants():
        run = runs[variant]
        assert f"{100 * run.data.metrics['final_val_acc']:.2f}%" in page, variant
        assert run.info.run_id in page, variant
    assert "12.35%" not in page and runs["failed"].info.run_id not in page
    linear = runs["linear"].data.metrics
    assert f"{linear['bias']:+.3f}" in page  # the final bias, from the run
    for question in (
        "Why multiply each pixel by a weight?",
        "What is the bias for?",
        "Why not score abs(pixel - weight)?",
        "Is 95% the best there is?",
    ):
        assert question in page
    assert "97.85%" in page and "reference" in page  # fastbook's own figure, labelled
    pictures = re.findall(r'<img src="([^"]+)"', page)
    assert {
        "linear_weights.png",
        "linear_contributions.png",
        "pixel_similarity_templates.png",
        "bias.png",
        "accuracy.png",
    } <= set(pictures)
    for name in pictures:
        assert (tmp_path / "report" / name).read_bytes()[:4] == b"\x89PNG", name


def test_report_names_the_variants_without_a_run(learner_runs, tmp_path, capsys):
    uri, overrides = learner_runs
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("learner")
    gone = [r for r in client.search_runs([experiment.experiment_id]) if r.info.run_name in ("mlp", "fastbook")]
    for run in gone:
        client.delete_run(run.info.run_id)
    try:
        with pytest.raises(SystemExit) as exit_:
            run_stage(report.main, ["--out", str(tmp_path / "report"), *overrides])
    finally:
        for run in gone:
            client.restore_run(run.info.run_id)
    assert exit_.value.code == 1
    [line] = capsys.readouterr().err.splitlines()
    assert "fastbook, mlp" in line and "learner" in line and "+experiment=learner" in line
    assert not (tmp_path / "report").exists()


def test_report_fails_clearly_without_the_experiment(tmp_path, capsys):
    uri = f"sqlite:///{tmp_path}/other.db"
    MlflowClient(uri).create_experiment("threes-sevens")
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        run_stage(report.main, ["--out", str(tmp_path / "report"), f"tracking.uri={uri}"])
    assert exit_.value.code == 1
    [line] = capsys.readouterr().err.splitlines()
    assert "no MLflow experiment 'learner'" in line and "+experiment=learner" in line
    assert not (tmp_path / "report").exists()


def test_report_does_not_create_a_missing_database(tmp_path, capsys):
    with pytest.raises(SystemExit):
        run_stage(report.main, ["--out", str(tmp_path / "report"), f"tracking.uri=sqlite:///{tmp_path}/no.db"])
    assert "no such MLflow database" in capsys.readouterr().err
    assert not (tmp_path / "no.db").exists() and not (tmp_path / "report").exists()


def test_report_needs_runs_with_the_same_settings(learner_runs, tmp_path, capsys):
    _, overrides = learner_runs
    with pytest.raises(SystemExit):
        run_stage(report.main, ["--out", str(tmp_path / "report"), *overrides, "optim.epochs=7"])
    assert "no finished run of pixel_similarity, linear" in capsys.readouterr().err
