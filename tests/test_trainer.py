"""The Trainer (pipeline/model/trainer.py): a NaN loss stops the fit as Diverged; under Lightning DDP each
process trains its shard of every batch, and rank 0 alone records the run."""

import os
import subprocess
import sys

import mlflow
import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from mlflow import MlflowClient
from omegaconf import OmegaConf

from pipeline.config.compose import as_dict, compose
from pipeline.config.errors import ConfigError, Diverged
from pipeline.data.datamodule import TensorBatches
from pipeline.model.classifier import DigitClassifier
from pipeline.model.trainer import check_launch, fit, make_trainer
from pipeline.train import train
from tests.conftest import REPO, make_config


def batches(shard, shards, n=10, batch_size=4, epochs=2):
    data = TensorBatches(torch.arange(n), torch.arange(n), batch_size, shuffle=True, seed=7, shard=shard, shards=shards)
    return [[x.tolist() for x, _ in data] for _ in range(epochs)]


def test_shards_together_make_the_single_process_batches():
    single = batches(0, 1)
    first, second = batches(0, 2), batches(1, 2)
    assert single[0] != single[1]  # a new permutation every epoch
    for epoch in range(2):
        assert len(first[epoch]) == len(second[epoch]) == len(single[epoch])  # same number of steps
        for whole, a, b in zip(single[epoch], first[epoch], second[epoch]):
            assert not set(a) & set(b) and sorted(a + b) == sorted(whole)


def test_a_last_batch_smaller_than_the_number_of_processes_is_padded():
    # 9 samples, batches of 4: the last batch has 1 sample; the second process repeats it.
    first, second = batches(0, 2, n=9)[0], batches(1, 2, n=9)[0]
    assert first[-1] == second[-1] and len(second[-1]) == 1
    assert len(first) == len(second) == 3


class Batches(pl.LightningDataModule):
    """One batch of 4 images."""

    def __init__(self, x: torch.Tensor):
        super().__init__()
        self.x, self.y = x, torch.tensor([1.0, 0.0, 1.0, 0.0])

    def train_dataloader(self):
        return TensorBatches(self.x, self.y, 4, shuffle=False, seed=0)

    def val_dataloader(self):
        return TensorBatches(self.x, self.y, 4, shuffle=False, seed=0)


def test_a_nan_loss_is_diverged_whichever_place_the_callbacks_give_the_nan_check(tmp_path):
    cfg = make_config(tmp_path, ["fit.epochs=2", "trainer.progress_bar=false"])
    module = DigitClassifier(model=as_dict(cfg.model), optim=as_dict(cfg.optim), loss=cfg.fit.loss.value)
    trainer = make_trainer(cfg, False, pl.Callback())
    trainer.callbacks.reverse()  # the NaN check is no longer first
    with pytest.raises(Diverged, match="diverged at epoch 0"):
        fit(trainer, module, Batches(torch.full((4, 784), float("nan"))))


def test_ddp_in_a_local_multirun_is_refused(monkeypatch):
    for key in ("SLURM_NTASKS", "SLURM_JOB_NAME", "TORCHELASTIC_RUN_ID"):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(ConfigError, match="trainer.strategy=ddp in a local multirun"):
        check_launch("ddp", multirun=True)
    check_launch("ddp", multirun=False)
    check_launch("auto", multirun=True)


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_matches_one_process_and_records_one_run(synthetic_idx, tmp_path):
    from pipeline.fetch import fetch
    from pipeline.filter import filter_digits
    from pipeline.normalize import normalize

    # 42 training images (the last 200 of 400 validate): an even batch. Of an odd one the two shards
    # differ by an image, and DDP's plain average of their gradients is not the batch's gradient.
    cfg = make_config(tmp_path, ["data.valid_last=200"])
    fetch(cfg), filter_digits(cfg), normalize(cfg)
    assert len(np.load(f"{cfg.paths.normalized}/train_y.npy")) == 42
    single = train(cfg, tmp_path / "single")

    uri = f"sqlite:///{tmp_path}/ddp.db"
    # As the DVC train stage runs it: the composed params.yaml, plus an override on the command
    # line that Lightning must carry over when it re-runs the command for rank 1.
    params = compose(
        [
            "trainer=ddp",
            "trainer.accelerator=cpu",
            f"paths.normalized={cfg.paths.normalized}",
            f"tracking.uri={uri}",
            "tracking.log_model=false",
            "fit.epochs=1",
        ]
    )
    (tmp_path / "params.yaml").write_text(OmegaConf.to_yaml(params, resolve=True))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline.train",
            "--config-dir",
            str(tmp_path),
            "--config-name",
            "params",
            f"hydra.run.dir={tmp_path}/ddp",
            f"fit.epochs={cfg.fit.epochs}",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Starting with 2 processes" in done.stdout + done.stderr
    assert (tmp_path / "ddp/train_ddp_process_1.log").is_file()  # Lightning re-ran the Hydra app for rank 1

    client = MlflowClient(uri)
    mlflow.set_tracking_uri(uri)
    [run] = mlflow.search_runs(experiment_names=[cfg.tracking.experiment], output_format="list")
    assert run.info.status == "FINISHED"
    assert run.data.params["trainer.strategy"] == "ddp" and run.data.params["trainer.devices"] == "2"
    assert len(client.get_metric_history(run.info.run_id, "val_acc")) == cfg.fit.epochs
    assert {"weights.npy", "history.csv"} <= {a.path for a in client.list_artifacts(run.info.run_id)}

    assert abs(run.data.metrics["final_val_acc"] - single["acc"]) <= 0.005
    # Shards of the same batches, gradients averaged: the same model as one process trains.
    ddp_weights, single_weights = np.load(tmp_path / "ddp/weights.npy"), np.load(tmp_path / "single/weights.npy")
    np.testing.assert_allclose(ddp_weights, single_weights, atol=1e-4)
