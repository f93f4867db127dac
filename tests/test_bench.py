"""The benchmarks run end to end on small generated data and print their figures (no timing is
asserted: speed is measured by running them, bench/RESULTS.md)."""

import re
import subprocess
import sys

import pytest
from mlflow import MlflowClient

from bench import command_start, sweep_overhead, sweep_pruning, sweep_resume, train_speed, whole_process
from bench.whole_process import ROOT


@pytest.mark.slow
def test_train_speed_compares_the_bare_loop_with_the_real_training_path(normalized, capsys):
    train_speed.main(
        [
            "--data",
            normalized.paths.normalized,
            "--repeats",
            "1",
            "--scales",
            "1",
            "2",
            "--scale-epochs",
            "3",
            "fit.epochs=4",
            "fit.batch_size=16",
        ]
    )
    out = capsys.readouterr().out
    for side in ("b0", "b"):  # Lightning alone, and the project with its MLflow records
        ratio = re.search(rf"ratio \({side}\)/\(a\)\s+([\d.]+)\s+([\d.]+)", out)
        assert ratio and float(ratio.group(1)) > 0 and float(ratio.group(2)) > 0, side
    accuracy = re.search(r"validation accuracy: \(a\) ([\d.]+), \(b\) ([\d.]+)", out)
    assert accuracy.group(1) == accuracy.group(2)  # the same training on both sides
    assert re.search(r"^\s+2x\s+\d+", out, re.M)  # the scaling table's 2x row


@pytest.mark.slow
def test_sweep_overhead_times_multiruns_against_bare_trainings_and_splits_the_cost(normalized, capsys):
    sweep_overhead.main(["--data", normalized.paths.normalized, "--runs", "1,2", "fit.epochs=2"])
    out = capsys.readouterr().out
    assert re.search(r"one interpreter start .*: [\d.]+ s", out)
    for jobs in (1, 2):
        assert re.search(rf"^\s+{jobs}\s+[\d.]+\s+[\d.]+\s+-?[\d.]+\s+[\d.]+ s: (met|NOT met)$", out, re.M)
    # on tiny jobs the fit can come out negative: the shape is checked, never the timings
    assert re.search(
        r"split: fixed -?[\d.]+ s per sweep .* -?[\d.]+ s per job against -?[\d.]+ s per bare training", out
    )


@pytest.mark.slow
def test_whole_process_times_the_command_against_a_bare_process_with_and_without_a_trick(normalized, capsys):
    whole_process.main(
        ["--data", normalized.paths.normalized, "--runs", "1", "--epochs", "1", "--trick", "async_logging"]
    )
    out = capsys.readouterr().out
    for name in ("bare", "project", "project+async_logging"):
        assert re.search(rf"^\s+{re.escape(name)}\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+[+-][\d.]+%$", out, re.M), name


@pytest.mark.slow
@pytest.mark.parametrize("trick", ["one_write_per_epoch", "flush_every_second"])
def test_a_trick_holding_metrics_back_still_records_every_epoch_of_every_metric(trick, normalized, tmp_path):
    """bench/tricks.py's one_write_per_epoch and flush_every_second hold metrics back: none may be lost
    (what is held is written when Lightning finalizes the logger)."""
    epochs, db = 3, tmp_path / "tricks.db"
    command = [sys.executable, "-m", "bench.tricks", trick, f"fit.epochs={epochs}"]
    overrides = [
        f"paths.normalized={normalized.paths.normalized}",
        f"tracking.uri=sqlite:///{db}",
        f"hydra.run.dir={tmp_path}/run",
    ]
    done = subprocess.run(command + overrides, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    client = MlflowClient(f"sqlite:///{db}")
    [run] = client.search_runs([e.experiment_id for e in client.search_experiments()])
    for metric in ("train_loss", "val_loss", "val_acc", "bias"):
        assert sorted(m.step for m in client.get_metric_history(run.info.run_id, metric)) == list(range(epochs)), metric


def test_benchmarks_refuse_a_missing_data_directory_in_one_line(tmp_path):
    for main in (train_speed.main, sweep_overhead.main, whole_process.main):
        with pytest.raises(SystemExit, match=r"train_x.npy.*not found"):
            main(["--data", str(tmp_path / "absent")])


def test_sweep_overhead_refuses_a_bad_job_count(capsys):
    for runs in ("4,x", "0"):
        with pytest.raises(SystemExit) as stop:
            sweep_overhead.main(["--runs", runs])
        assert stop.value.code == 2 and f"invalid job_counts value: '{runs}'" in capsys.readouterr().err


def test_parallel_sweep_refuses_a_missing_data_directory_in_one_line(tmp_path):
    from bench import parallel_sweep

    with pytest.raises(SystemExit, match=r"train_x.npy.*not found"):
        parallel_sweep.main(["--data", str(tmp_path / "absent")])


@pytest.mark.slow
def test_store_check_times_the_damaged_store_check_on_built_stores(capsys):
    from bench import store_check

    store_check.main(["--runs", "2", "--epochs", "2", "--repeats", "1"])
    out = capsys.readouterr().out
    assert re.search(r"^2 runs x 2 epochs\s+[\d.]+\s+[\d.]+ ms .*CPU [\d.]+ ms\s+[\d.]+ ms", out, re.M), out
    assert re.search(r"quick_check: [\d.]+ CPU ms per MB", out)


@pytest.mark.slow
def test_sweep_pruning_runs_the_search_with_and_without_its_pruner_and_compares_them(normalized, capsys):
    data = normalized.paths.normalized
    sweep_pruning.main(["--data", data, "--threads", "1", "hydra.sweeper.n_trials=2", "fit.epochs=2"])
    out = capsys.readouterr().out
    for name in ("pruned", "unpruned"):  # both searches ran their 2 trials
        assert re.search(rf"^  {name}\s+[\d.]+\s+[\d.]+\s+\d+\s+[\d.]+\s+2\s+\d\s+\d\s+\{{", out, re.M), out
    assert re.search(r"pruned / unpruned: wall [\d.]+ \(goal <= 0.60: (met|NOT met)\), CPU [\d.]+, epochs", out)


@pytest.mark.slow
def test_sweep_resume_interrupts_the_learner_sweep_resumes_only_the_missing_jobs_and_compares_reports(
    normalized, capsys
):
    overrides = ["seed=0", "fit.epochs=1", "data.valid_last=150"]  # the small data's validation split (conftest)
    sweep_resume.main(["--data", normalized.paths.normalized, "--threads", "1", *overrides])
    out = capsys.readouterr().out
    assert "interrupted after 3 of 6 jobs finished" in out, out  # at the same place on any machine
    assert re.search(r"resume: [\d.]+ s, ran 3 jobs for the 3 missing \(only the missing ones\)", out), out
    assert "parent FINISHED" in out
    assert "report: accuracies and per-image predictions the same; index.html the same" in out, out


@pytest.mark.slow
def test_command_start_times_each_command_here_and_in_another_checkout(capsys):
    names = ["compare --help", "report --help"]  # predict needs a registered champion (`dvc repro`)
    command_start.main(["--runs", "1", "--checkout", str(ROOT), *(f"--command={name}" for name in names)])
    out = capsys.readouterr().out
    for name in names:
        assert re.search(rf"^  {re.escape(name)}\s+[\d.]+  other\s+[\d.]+  this/other\s+[\d.]+$", out, re.M), out
