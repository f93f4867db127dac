"""Data lineage in MLflow: dataset inputs with digests and sources, DVC's hash of the data."""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml
from mlflow import MlflowClient

from pipeline import tracking


def dataset_inputs(client, run_id) -> dict:
    """context -> (dataset, tags) of a run's dataset inputs."""
    inputs = {}
    for item in client.get_run(run_id).inputs.dataset_inputs:
        tags = {tag.key: tag.value for tag in item.tags}
        inputs[tags["mlflow.data.context"]] = (item.dataset, tags)
    return inputs


def write_lock(tmp_path, md5):
    lock = {"schema": "2.0", "stages": {"normalize": {"cmd": "python -m pipeline.normalize",
                                                      "outs": [{"path": "data/normalized", "hash": "md5", "md5": md5}]}}}
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump(lock))


def test_dvc_md5_is_the_hash_dvc_itself_records(normalized, tmp_path):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    for cmd in (["dvc", "init", "--no-scm", "-q"], ["dvc", "add", "-q", "data/normalized"]):
        subprocess.run(cmd, cwd=tmp_path, env=env, check=True, capture_output=True)
    [out] = yaml.safe_load((tmp_path / "data/normalized.dvc").read_text())["outs"]
    assert tracking.dvc_md5(tmp_path / "data/normalized") == out["md5"]


def test_lineage_records_datasets_dvc_hash_and_origin(normalized, tmp_path):
    cfg = normalized
    write_lock(tmp_path, tracking.dvc_md5(cfg.paths.normalized))
    client = MlflowClient(cfg.tracking.uri)
    run_id = client.create_run(tracking.experiment_id(client, "lineage")).info.run_id
    tracking.log_data_lineage(client, run_id, cfg)

    inputs = dataset_inputs(client, run_id)
    assert set(inputs) == {"training", "validation"}
    for context, split in (("training", "train"), ("validation", "valid")):
        dataset, _ = inputs[context]
        path = tmp_path / f"data/normalized/{split}.npz"
        assert dataset.name == f"mnist-3-vs-7-{split}"
        assert dataset.digest == hashlib.md5(path.read_bytes()).hexdigest()
        assert dataset.source_type == "local" and json.loads(dataset.source) == {"uri": str(path)}
        assert json.loads(dataset.profile)["features_shape"] == [{"train": 80, "valid": 40}[split], 784]
    tags = client.get_run(run_id).data.tags
    assert tags["data.dvc_md5"] == tracking.dvc_md5(cfg.paths.normalized) and tags["data.dvc_md5"].endswith(".dir")
    assert tags["data.dvc_lock"] == "matches"
    assert tags["data.origin"] == f"local: {tmp_path}/idx"


def test_lock_tag_says_whether_dvc_lock_describes_this_data(normalized, tmp_path):
    client = MlflowClient(normalized.tracking.uri)
    experiment = tracking.experiment_id(client, "lineage")

    def lock_tag():
        run_id = client.create_run(experiment).info.run_id
        tracking.log_data_lineage(client, run_id, normalized)
        return client.get_run(run_id).data.tags.get("data.dvc_lock")

    assert lock_tag() is None  # no dvc.lock: nothing to compare with
    write_lock(tmp_path, "0" * 32 + ".dir")
    assert lock_tag() == f"differs: dvc.lock has {'0' * 32}.dir"


def test_train_records_the_lineage_of_its_data(normalized, tmp_path):
    from pipeline.train import train

    run_id = train(normalized, tmp_path / "models")["run_id"]
    client = MlflowClient(normalized.tracking.uri)
    assert set(dataset_inputs(client, run_id)) == {"training", "validation"}
    assert client.get_run(run_id).data.tags["data.dvc_md5"] == tracking.dvc_md5(normalized.paths.normalized)


def test_file_md5_is_cached_but_follows_every_change_of_the_file(tmp_path):
    path = tmp_path / "split.npz"
    path.write_bytes(b"a" * 1000)
    assert tracking.file_md5(path) == hashlib.md5(b"a" * 1000).hexdigest()
    assert tracking.file_md5(path) == hashlib.md5(b"a" * 1000).hexdigest()  # from the cache
    path.write_bytes(b"b" * 1000)  # same size: the mtime tells
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1))
    assert tracking.file_md5(path) == hashlib.md5(b"b" * 1000).hexdigest()
    replacement = tmp_path / "new.npz"
    replacement.write_bytes(b"c" * 1000)
    os.utime(replacement, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns))
    replacement.replace(path)  # an atomic rewrite (as the stages write): same size and mtime, new inode
    assert tracking.file_md5(path) == hashlib.md5(b"c" * 1000).hexdigest()
