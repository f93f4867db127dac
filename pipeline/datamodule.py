"""The normalized split as tensors on the training device, batched by index slicing.

The data is 12,396 x 784 floats (39 MB): it fits on any device, so there is no
per-sample __getitem__ and no collate, only one slice per batch.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytorch_lightning as pl
import torch

from pipeline.normalize import load_split


class TensorBatches:
    """(x, y) batches sliced from device tensors; a new seeded permutation every epoch.

    Under DDP, process `shard` of `shards` takes every shards-th sample of each batch: all
    processes draw the same permutation (same seed), so together they train on exactly the
    batches one process would, and DDP's averaged gradient is that batch's gradient.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, shuffle: bool, seed: int,
                 shard: int = 0, shards: int = 1):
        self.x, self.y, self.batch_size, self.shuffle, self.seed = x, y, batch_size, shuffle, seed
        self.shard, self.shards = shard, shards
        self.epoch = 0

    def __len__(self) -> int:
        return math.ceil(len(self.y) / self.batch_size)

    def __iter__(self):
        order = self.epoch_order()
        for start in self.starts():
            yield self.batch(order, start)

    def epoch_order(self) -> torch.Tensor | None:
        """This epoch's permutation (None when not shuffling); the next call draws the next epoch's."""
        order = None
        if self.shuffle:
            order = torch.randperm(len(self.y), generator=torch.Generator().manual_seed(self.seed + self.epoch))
            order = order.to(self.x.device)
        self.epoch += 1
        return order

    def starts(self) -> range:
        return range(0, len(self.y), self.batch_size)

    def batch(self, order: torch.Tensor | None, start: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The mini-batch at `start` of the epoch's order (this process's shard of it)."""
        stop = min(start + self.batch_size, len(self.y))
        mine = slice(start + self.shard, stop, self.shards)
        if start + self.shard >= stop:  # a last batch smaller than `shards`: repeat a sample, as DistributedSampler pads
            mine = slice(start, start + 1)
        if order is None:
            return self.x[mine], self.y[mine]
        rows = order[mine]  # one gather per batch: it stays in cache, a permuted copy of all rows would not
        return self.x.index_select(0, rows), self.y.index_select(0, rows)


class MiniBatches:
    """Consecutive mini-batches of one epoch, gathered one at a time as they are iterated.

    It holds only the epoch's order and the batches' starts: Lightning fetches the next item
    before the current one is trained on, so each chunk must own its indices.
    """

    def __init__(self, batches: TensorBatches, order: torch.Tensor | None, starts: range):
        self.batches, self.order, self.starts = batches, order, starts

    def __len__(self) -> int:
        return len(self.starts)

    def __iter__(self):
        for start in self.starts:
            yield self.batches.batch(self.order, start)


class Chunked:
    """TensorBatches handed to Lightning `per_chunk` mini-batches at a time (0: the whole epoch).

    The training_step trains on each mini-batch of a chunk in turn (one optimizer step each),
    so the SGD steps are exactly those of one mini-batch per Lightning batch, while Lightning's
    fixed cost per batch (hooks, progress counters: ~0.1 ms) is paid once per chunk.
    """

    def __init__(self, batches: TensorBatches, per_chunk: int):
        self.batches = batches
        self.per_chunk = per_chunk or len(batches)

    def __len__(self) -> int:
        return math.ceil(len(self.batches) / self.per_chunk)

    def __iter__(self):
        order, starts = self.batches.epoch_order(), self.batches.starts()
        for first in range(0, len(starts), self.per_chunk):
            yield MiniBatches(self.batches, order, starts[first : first + self.per_chunk])


class NormalizedMNIST(pl.LightningDataModule):
    def __init__(self, directory: str | Path, batch_size: int, shuffle: bool, seed: int, batches_per_step: int = 1):
        super().__init__()
        self.directory, self.batch_size, self.shuffle, self.seed = Path(directory), batch_size, shuffle, seed
        self.batches_per_step = batches_per_step

    def setup(self, stage: str | None = None) -> None:
        device = self.trainer.strategy.root_device if self.trainer else torch.device("cpu")
        # torch.tensor copies: the arrays are the process's shared, read-only copy (load_split)
        x, y, self.digits = load_split(self.directory, "train.npz")
        self.train_x, self.train_y = torch.tensor(x, device=device), torch.tensor(y, device=device)
        x, y, _ = load_split(self.directory, "valid.npz")
        self.valid_x, self.valid_y = torch.tensor(x, device=device), torch.tensor(y, device=device)

    def transfer_batch_to_device(self, batch, device, dataloader_idx):
        return batch  # sliced from tensors already on the training device: nothing to move

    def train_dataloader(self) -> Chunked:
        shard, shards = (self.trainer.global_rank, self.trainer.world_size) if self.trainer else (0, 1)
        batches = TensorBatches(self.train_x, self.train_y, self.batch_size, self.shuffle, self.seed, shard, shards)
        return Chunked(batches, self.batches_per_step)

    def val_dataloader(self) -> TensorBatches:
        # The whole validation set as one batch: one pass, one metric per epoch.
        return TensorBatches(self.valid_x, self.valid_y, len(self.valid_y), shuffle=False, seed=self.seed)
