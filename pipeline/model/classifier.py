"""The LightningModule that trains any network of nets.py to tell two digits apart.

A positive logit means digits[0] (a 3, label 1), a negative one digits[1] (a 7, label 0).
Lightning's automatic optimisation: `training_step` returns the loss of one mini-batch and
Lightning does the backward pass and the optimizer step.
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import EarlyStopping
from pytorch_lightning.callbacks.early_stopping import EarlyStoppingReason
from torch.nn import functional as F

from pipeline.config.errors import Diverged
from pipeline.config.instantiate import instantiated, refusal
from pipeline.config.schema import LossName
from pipeline.data.normalized import unreadable
from pipeline.model.nets import build


def mnist_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """fastbook's loss: how far sigmoid(logit) is from the target, averaged."""
    p = logits.sigmoid()
    return torch.where(targets == 1, 1 - p, p).mean()


LOSSES = {LossName.bce.value: F.binary_cross_entropy_with_logits, LossName.mnist_loss.value: mnist_loss}

CHECKPOINT = "model.ckpt"  # the trained module, as `train` saves it and `evaluate` reads it


def make_optimizer(optim: dict, params) -> torch.optim.Optimizer:
    """The optimizer an `optim` section (conf/optim/<name>.yaml) names: hydra.utils.instantiate
    gives its `_target_` class with the section's arguments (`_partial_: true`), called here with
    the parameters to optimise. An argument the class does not take, or a value it refuses, is one
    ConfigError line naming the key."""
    who = f"optimizer {optim['_target_']}"
    with_arguments = instantiated(optim, "optim", who)
    try:
        return with_arguments(params)
    except (TypeError, ValueError) as err:
        raise refusal(err, optim, "optim", who) from None


def check_optimizer(optim: dict) -> None:
    """`optim` makes an optimizer (made once, for a stand-in parameter): checked before any data is read."""
    make_optimizer(optim, [torch.nn.Parameter(torch.zeros(1))])


class DigitClassifier(pl.LightningModule):
    """Trains a net on (pixels, 0/1 label) batches; logs train_loss, val_loss, val_acc (and a
    linear model's bias) once per epoch, and keeps them in `history` for DVC's plots."""

    def __init__(self, model: dict, optim: dict, loss: str):
        super().__init__()
        self.save_hyperparameters()  # plain dicts: checkpoints load with torch.load(weights_only=True)
        self.net = build(model)
        # A network without parameters (pixel_similarity: it `observe`s the batches) leaves
        # Lightning nothing to optimise: its optimisation loop is switched off.
        self.automatic_optimization = any(p.requires_grad for p in self.net.parameters())
        self.loss_fn = LOSSES[loss]
        self.history: list[dict] = []  # one row per epoch
        # The epoch's summed loss stays on the device: logging every step would cost more than the step.
        self.loss_sum = torch.zeros(())
        self.seen = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)

    def model_step(self, batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x, y = batch
        logits = self(x)
        return self.loss_fn(logits, y), logits, y

    def on_train_epoch_start(self) -> None:
        if hasattr(self.net, "start_epoch"):
            self.net.start_epoch()
        self.loss_sum = torch.zeros((), device=self.device)
        self.seen = 0

    def training_step(self, batch, batch_idx):
        if hasattr(self.net, "observe"):
            self.net.observe(*batch)
        loss, _, y = self.model_step(batch)
        self.loss_sum += loss.detach() * len(y)
        self.seen += len(y)
        return loss

    def on_train_epoch_end(self) -> None:
        self.log("train_loss", self.loss_sum / max(self.seen, 1), sync_dist=True)
        if self.bias() is not None:
            self.log("bias", self.bias(), sync_dist=True)
        self.history.append(
            {"epoch": self.current_epoch, **{k: float(v) for k, v in self.trainer.callback_metrics.items()}}
        )

    def validation_step(self, batch, batch_idx):
        loss, logits, y = self.model_step(batch)
        # sync_dist: under DDP, the mean over the processes (a no-op on one process).
        self.log("val_loss", loss, batch_size=len(y), sync_dist=True)
        self.log("val_acc", ((logits > 0) == (y > 0.5)).float().mean(), batch_size=len(y), sync_dist=True)

    def configure_optimizers(self):
        if not self.automatic_optimization:
            return []  # nothing to optimise (None would make Lightning warn)
        return make_optimizer(dict(self.hparams.optim), self.parameters())

    def pixel_weights(self) -> np.ndarray | None:
        """The 784 weights of a network with one weight per pixel (None for the others)."""
        return self.net.pixel_weights() if hasattr(self.net, "pixel_weights") else None

    def bias(self) -> float | None:
        """That network's bias (None for the others, and for a linear model without one)."""
        return self.net.bias_value() if hasattr(self.net, "bias_value") else None

    def templates(self) -> np.ndarray | None:
        """A template model's mean images, (2, 784), digits[0] first (None for the others)."""
        return self.net.templates.detach().cpu().numpy() if hasattr(self.net, "templates") else None


class StopOnNonFiniteLoss(EarlyStopping):
    """Lightning's EarlyStopping reduced to its finiteness check: stops at the end of the first
    epoch whose loss is NaN or infinite (one bad batch is enough: the epoch's loss is their sum)."""

    def __init__(self, monitor: str = "train_loss"):
        super().__init__(monitor=monitor, check_finite=True, patience=math.inf, check_on_train_epoch_end=True)

    def raise_if_stopped(self) -> None:
        if self.stopping_reason is EarlyStoppingReason.NON_FINITE_METRIC:
            raise Diverged(
                f"diverged at epoch {self.stopped_epoch}: {self.stopping_reason_message.split('.')[0]}"
                " (try a smaller optim.lr); no model written"
            )


def load_checkpoint(path: str | Path) -> DigitClassifier:
    """The trained DigitClassifier in `path` (a Lightning checkpoint), on the CPU."""
    path = Path(path)
    if not path.is_file():
        raise unreadable(path, "is a directory, expected a file" if path.is_dir() else "missing", path.parent)
    try:
        return DigitClassifier.load_from_checkpoint(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise unreadable(path, f"not a readable model checkpoint ({first_line})") from None
