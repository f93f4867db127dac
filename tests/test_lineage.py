"""Data lineage in MLflow: dataset inputs with digests and sources, DVC's hash of the data."""

import json
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import mlflow
import pytest
import yaml
from mlflow import MlflowClient
from mlflow.entities import DatasetInput, InputTag
from mlflow.exceptions import MlflowException

from pipeline.config.errors import InputError
from pipeline.data.normalized import read
from pipeline.tracking import lineage
from pipeline.tracking.store import experiment_id


def log_lineage(cfg, run_id) -> None:
    """log_data_lineage on the run, active as train makes it."""
    mlflow.set_tracking_uri(cfg.tracking.uri)
    with mlflow.start_run(run_id=run_id):
        lineage.log_data_lineage(cfg, read(cfg.paths.normalized))


def dataset_inputs(client, run_id) -> dict:
    """context -> (dataset, tags) of a run's dataset inputs."""
    inputs = {}
    for item in client.get_run(run_id).inputs.dataset_inputs:
        tags = {tag.key: tag.value for tag in item.tags}
        inputs[tags["mlflow.data.context"]] = (item.dataset, tags)
    return inputs


def write_lock(tmp_path, md5):
    lock = {
        "schema": "2.0",
        "stages": {
            "normalize": {
                "cmd": "python -m pipeline.normalize",
                "outs": [{"path": "data/normalized", "hash": "md5", "md5": md5}],
            }
        },
    }
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump(lock))


def test_dvc_md5_is_the_hash_dvc_itself_records(normalized, tmp_path):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    for cmd in (["dvc", "init", "--no-scm", "-q"], ["dvc", "add", "-q", "data/normalized"]):
        subprocess.run(cmd, cwd=tmp_path, env=env, check=True, capture_output=True)
    [out] = yaml.safe_load((tmp_path / "data/normalized.dvc").read_text())["outs"]
    assert lineage.dvc_md5(read(tmp_path / "data/normalized").md5) == out["md5"]


def test_lineage_records_datasets_dvc_hash_and_origin(normalized, tmp_path):
    cfg = normalized
    data = read(cfg.paths.normalized)
    write_lock(tmp_path, lineage.dvc_md5(data.md5))
    client = MlflowClient(cfg.tracking.uri)
    run_id = client.create_run(experiment_id(client, "lineage")).info.run_id
    log_lineage(cfg, run_id)

    inputs = dataset_inputs(client, run_id)
    assert set(inputs) == {"training", "validation", "testing"}
    for context, split in (("training", "train"), ("validation", "valid"), ("testing", "test")):
        dataset, _ = inputs[context]
        path = tmp_path / f"data/normalized/{split}_x.npy"
        assert dataset.name == f"mnist-3-vs-7-{split}"
        assert dataset.digest == data.digest(split)
        assert dataset.source_type == "local" and json.loads(dataset.source) == {"uri": str(path)}
        assert json.loads(dataset.profile)["features_shape"] == [{"train": 57, "valid": 23, "test": 40}[split], 784]
    tags = client.get_run(run_id).data.tags
    assert tags["data.dvc_md5"] == lineage.dvc_md5(data.md5) and tags["data.dvc_md5"].endswith(".dir")
    assert tags["data.dvc_lock"] == "matches"
    assert tags["data.origin"] == f"local: {tmp_path}/idx"


def test_lock_tag_says_whether_dvc_lock_describes_this_data(normalized, tmp_path):
    client = MlflowClient(normalized.tracking.uri)
    experiment = experiment_id(client, "lineage")

    def lock_tag():
        run_id = client.create_run(experiment).info.run_id
        log_lineage(normalized, run_id)
        return client.get_run(run_id).data.tags.get("data.dvc_lock")

    assert lock_tag() is None  # no dvc.lock: nothing to compare with
    write_lock(tmp_path, "0" * 32 + ".dir")
    assert lock_tag() == f"differs: dvc.lock has {'0' * 32}.dir"


def test_lineage_survives_losing_the_dataset_insert_race_to_a_concurrent_run(normalized, monkeypatch):
    """MLflow looks a dataset up, then inserts it: a parallel job can insert it in between, and
    this run's insert then fails on the unique key. The lineage is logged all the same."""
    client = MlflowClient(normalized.tracking.uri)
    experiment = experiment_id(client, "lineage")
    run_id, winner = (client.create_run(experiment).info.run_id for _ in range(2))
    real_log_input, calls = mlflow.log_input, []

    def lose_the_race(dataset, context=None, **kwargs):
        calls.append(mlflow.active_run().info.run_id)
        if len(calls) == 1:  # the winner inserts the same dataset first; this insert collides
            client.log_inputs(
                winner, [DatasetInput(dataset._to_mlflow_entity(), [InputTag("mlflow.data.context", context)])]
            )
            raise MlflowException(
                "(sqlite3.IntegrityError) UNIQUE constraint failed: datasets.experiment_id, "
                "datasets.name, datasets.digest"
            )
        real_log_input(dataset, context=context, **kwargs)

    monkeypatch.setattr(mlflow, "log_input", lose_the_race)
    log_lineage(normalized, run_id)
    assert calls == [run_id] * 4  # training: lost once, then linked; validation and testing: at once
    mine, theirs = dataset_inputs(client, run_id), dataset_inputs(client, winner)
    assert set(mine) == {"training", "validation", "testing"}
    assert mine["training"][0].digest == theirs["training"][0].digest  # the row the winner inserted


def test_lineage_still_fails_when_the_store_keeps_refusing(normalized, monkeypatch):
    client = MlflowClient(normalized.tracking.uri)
    run_id = client.create_run(experiment_id(client, "lineage")).info.run_id
    calls = []

    def refuse(dataset, context=None, **kwargs):
        calls.append(context)
        raise MlflowException("store refuses")

    monkeypatch.setattr(mlflow, "log_input", refuse)
    with pytest.raises(MlflowException, match="store refuses"):
        log_lineage(normalized, run_id)
    assert len(calls) == lineage.DATASET_INSERT_ATTEMPTS


def log_lineage_in_step(cfg, experiments, barrier, failures) -> None:
    """One parallel job: for each experiment, wait for the others, then log the same splits."""
    client = MlflowClient(cfg.tracking.uri)
    for experiment in experiments:
        barrier.wait(timeout=120)
        try:
            log_lineage(cfg, client.create_run(experiment).info.run_id)
        except Exception as error:  # noqa: BLE001 - reported to the test, which names it
            failures.put(f"{type(error).__name__}: {str(error)[:200]}")


@pytest.mark.slow
def test_parallel_jobs_logging_the_same_splits_all_record_them(normalized):
    """8 processes log the same splits into each of 8 fresh experiments at the same moment
    (without the retry, about one experiment in four lost a job to the unique key)."""
    jobs, client = 8, MlflowClient(normalized.tracking.uri)
    experiments = [experiment_id(client, f"race-{i}") for i in range(8)]
    spawn = multiprocessing.get_context("spawn")
    barrier, failures = spawn.Barrier(jobs), spawn.Queue()
    workers = [
        spawn.Process(target=log_lineage_in_step, args=(normalized, experiments, barrier, failures))
        for _ in range(jobs)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
    reported = []
    while not failures.empty():
        reported.append(failures.get())
    assert reported == [] and [worker.exitcode for worker in workers] == [0] * jobs
    for experiment in experiments:
        runs = client.search_runs([experiment])
        assert len(runs) == jobs
        splits = {"training", "validation", "testing"}
        assert all(set(dataset_inputs(client, run.info.run_id)) == splits for run in runs)


def test_train_records_the_lineage_of_its_data(normalized, tmp_path):
    from pipeline.train import train

    run_id = train(normalized, tmp_path / "models")["run_id"]
    client = MlflowClient(normalized.tracking.uri)
    assert set(dataset_inputs(client, run_id)) == {"training", "validation", "testing"}
    assert client.get_run(run_id).data.tags["data.dvc_md5"] == lineage.dvc_md5(read(normalized.paths.normalized).md5)


def recorded_run(claimed: str, trained_on: list[str]):
    datasets = [SimpleNamespace(dataset=SimpleNamespace(name=name)) for name in trained_on]
    return SimpleNamespace(
        data=SimpleNamespace(params={"data.digits": claimed}),
        inputs=SimpleNamespace(dataset_inputs=datasets),
        info=SimpleNamespace(run_id="abc123", run_name="capable-auk-759"),
    )


def test_a_run_whose_datasets_contradict_its_digits_is_refused():
    honest = recorded_run("[3, 7]", [lineage.dataset_name([3, 7], "train"), lineage.dataset_name([3, 7], "valid")])
    lineage.check_recorded_data([honest, recorded_run("[3, 7]", [])])  # no datasets: nothing to contradict
    liar = recorded_run("[3, 7]", ["mnist-4-vs-9-train", "mnist-4-vs-9-valid"])
    with pytest.raises(InputError) as refused:
        lineage.check_recorded_data([honest, liar])
    assert str(refused.value) == (
        "MLflow run abc123 (capable-auk-759) says data.digits=[3, 7] but trained on mnist-4-vs-9-train, "
        "mnist-4-vs-9-valid: its metrics are not of [3, 7]; delete it (mlflow runs delete --run-id abc123) "
        "and train again"
    )
