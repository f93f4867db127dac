"""The normalized splits as tensors on the training device, batched by index slicing.

The training split is 10,276 x 784 floats (32 MB): it fits on any device, so there is no per-sample
__getitem__ and no collate (a DataLoader over a TensorDataset makes an epoch of this model several
times slower: bench/RESULTS.md), only one slice per batch. `TensorBatches` is a plain iterable,
which Lightning takes as a dataloader.
"""

from __future__ import annotations

import math

import pytorch_lightning as pl
import torch

from pipeline.data.normalized import NormalizedData


class TensorBatches:
    """(x, y) batches sliced from device tensors; a new seeded permutation every epoch.

    Under DDP, process `shard` of `shards` takes every shards-th sample of each batch: all
    processes draw the same permutation (same seed), so together they train on exactly the
    batches one process would, and DDP's averaged gradient is that batch's gradient.
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_size: int,
        shuffle: bool,
        seed: int,
        shard: int = 0,
        shards: int = 1,
    ):
        self.x, self.y, self.batch_size, self.shuffle, self.seed = x, y, batch_size, shuffle, seed
        self.shard, self.shards = shard, shards
        self.epoch = 0

    def __len__(self) -> int:
        return math.ceil(len(self.y) / self.batch_size)

    def __iter__(self):
        order = None
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(len(self.y), generator=generator).to(self.x.device)
        self.epoch += 1
        for start in range(0, len(self.y), self.batch_size):
            stop = min(start + self.batch_size, len(self.y))
            mine = slice(start + self.shard, stop, self.shards)
            if (
                start + self.shard >= stop
            ):  # a last batch smaller than `shards`: repeat a sample, as DistributedSampler pads
                mine = slice(start, start + 1)
            if order is None:
                yield self.x[mine], self.y[mine]
            else:
                rows = order[mine]
                yield self.x.index_select(0, rows), self.y.index_select(0, rows)


class NormalizedMNIST(pl.LightningDataModule):
    """The splits of `data` (read once, pipeline/data/normalized.py): train and valid moved to the
    device at setup, for fit and its validation; test only by `test_tensors`, after every choice."""

    def __init__(self, data: NormalizedData, batch_size: int, shuffle: bool, seed: int):
        super().__init__()
        self.data, self.batch_size, self.shuffle, self.seed = data, batch_size, shuffle, seed
        self.digits = data.digits

    def setup(self, stage: str | None = None) -> None:
        device = self.trainer.strategy.root_device if self.trainer else torch.device("cpu")
        (train_x, train_y), (valid_x, valid_y) = self.data.arrays["train"], self.data.arrays["valid"]
        self.train_x, self.train_y = torch.tensor(train_x, device=device), torch.tensor(train_y, device=device)
        self.valid_x, self.valid_y = torch.tensor(valid_x, device=device), torch.tensor(valid_y, device=device)

    def transfer_batch_to_device(self, batch, device, dataloader_idx):
        return batch  # sliced from tensors already on the training device: nothing to move

    def train_dataloader(self) -> TensorBatches:
        shard, shards = (self.trainer.global_rank, self.trainer.world_size) if self.trainer else (0, 1)
        return TensorBatches(self.train_x, self.train_y, self.batch_size, self.shuffle, self.seed, shard, shards)

    def val_dataloader(self) -> TensorBatches:
        # The whole validation set as one batch: one pass, one metric per epoch.
        return TensorBatches(self.valid_x, self.valid_y, len(self.valid_y), shuffle=False, seed=self.seed)

    def test_tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The test split on the validation data's device: scored once, when training and every choice are done."""
        return tuple(torch.tensor(array, device=self.valid_x.device) for array in self.data.arrays["test"])
