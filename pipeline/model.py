"""The networks and the LightningModule that trains any of them.

`linear` is fastbook's linear1: logit = pixels @ weights + bias, 784 weights and one bias.
A positive logit means digits[0] (a 3), a negative one digits[1] (a 7).
`pixel_similarity` is fastbook's baseline before any learning: the nearest mean image.
"""

from __future__ import annotations

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.plugins.precision import Precision
from pytorch_lightning.strategies import Strategy
from pytorch_lightning.utilities.model_helpers import is_overridden
from torch import nn
from torch.nn import functional as F

from pipeline.config import LossName, ModelConfig, ModelName, OptimConfig, OptimizerName
from pipeline.datamodule import MiniBatches


class PixelSimilarity(nn.Module):
    """The mean image of each digit as its template; an image is the digit it differs from least.

    Distance = mean |pixel - template pixel|, the learner's abs(value - weight) idea.
    logit = distance to the digits[1] template - distance to the digits[0] template: positive
    when the image is closer to digits[0], like the linear model's logit. No parameters: the
    templates are running means over the training batches seen this epoch (`accumulate`).
    """

    def __init__(self, n_pixels: int = 784):
        super().__init__()
        # Row 0: digits[0] (label 1), row 1: digits[1] (label 0). Saved with the model.
        self.register_buffer("templates", torch.zeros(2, n_pixels))
        self.register_buffer("pixel_sums", torch.zeros(2, n_pixels, dtype=torch.float64), persistent=False)
        self.register_buffer("counts", torch.zeros(2, dtype=torch.float64), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        distance = (x.unsqueeze(1) - self.templates).abs().mean(-1)  # (n, 2)
        return distance[:, 1:] - distance[:, :1]

    def reset(self) -> None:
        self.pixel_sums.zero_()
        self.counts.zero_()

    @torch.no_grad()
    def accumulate(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """Add a batch of (pixels, 0/1 label) to the means."""
        for row, members in enumerate((y > 0.5, y <= 0.5)):
            self.pixel_sums[row] += x[members].sum(0, dtype=torch.float64)
            self.counts[row] += members.sum()
        self.templates.copy_(self.pixel_sums / self.counts.clamp(min=1).unsqueeze(1))


def build_net(cfg: ModelConfig, n_pixels: int = 784) -> nn.Module:
    if cfg.name is ModelName.pixel_similarity:
        return PixelSimilarity(n_pixels)
    if cfg.name is ModelName.linear:
        net = nn.Linear(n_pixels, 1, bias=cfg.bias)
    elif cfg.name is ModelName.mlp:
        net = nn.Sequential(nn.Linear(n_pixels, cfg.hidden, bias=cfg.bias), nn.ReLU(), nn.Linear(cfg.hidden, 1, bias=cfg.bias))
    else:
        raise ValueError(f"model.name={cfg.name}: no network for it")
    if cfg.init_std is not None:  # fastbook: weights and bias drawn from randn * std
        for p in net.parameters():
            nn.init.normal_(p, std=cfg.init_std)
    return net


def mnist_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """fastbook's loss: how far sigmoid(logit) is from the target, averaged."""
    p = logits.sigmoid()
    return torch.where(targets == 1, 1 - p, p).mean()


LOSSES = {LossName.bce: F.binary_cross_entropy_with_logits, LossName.mnist_loss: mnist_loss}

BACKWARD_HOOKS = ("on_before_backward", "on_after_backward")


def backward_is_plain(trainer: pl.Trainer) -> bool:
    """True when Lightning's `manual_backward(loss)` would do nothing but `loss.backward()`.

    That is: the strategy and precision plugin add nothing around the backward (one device, 32-bit:
    no loss scaling, no DDP preparation) and neither the module nor any callback has a backward hook.
    Lightning still dispatches every hook to every callback (~60 us a step, a fifth of this model's
    step), so in that case the module calls `loss.backward()` itself: the same computation.
    """
    for plugin, base in ((trainer.strategy, Strategy), (trainer.precision_plugin, Precision)):
        if any(getattr(type(plugin), name) is not getattr(base, name)
               for name in ("backward", "pre_backward", "post_backward")):
            return False
    module = trainer.lightning_module
    if module._fabric is not None or any(is_overridden(name, module) for name in (*BACKWARD_HOOKS, "backward")):
        return False
    return not any(is_overridden(name, callback, Callback) for callback in trainer.callbacks for name in BACKWARD_HOOKS)


class DigitClassifier(pl.LightningModule):
    """Trains a net on (pixels, 0/1 label) batches; logs loss, accuracy and bias per epoch."""

    def __init__(self, model: dict, optim: dict):
        super().__init__()
        # Plain dicts so checkpoints load with torch.load(weights_only=True).
        self.save_hyperparameters()
        self.model_cfg = ModelConfig(**{**model, "name": ModelName(model["name"])})
        self.optim_cfg = OptimConfig(**{**optim, "name": OptimizerName(optim["name"]), "loss": LossName(optim["loss"])})
        self.net = build_net(self.model_cfg)
        self.loss_fn = LOSSES[self.optim_cfg.loss]
        # pixel_similarity has nothing to optimise: no optimizer, no backward.
        self.trainable = any(p.requires_grad for p in self.net.parameters())
        self.history: list[dict] = []  # one row per epoch, for DVC plots
        self._loss_sum = torch.zeros(())
        self._seen = 0
        self._plain_backward = False  # decided when training starts (backward_is_plain)
        # The SGD step written out in training_step (fastbook's loop: gradients, step, zero).
        # Lightning's automatic optimization wraps each step in a closure and extra hooks that
        # cost more than this model's whole step (bench/RESULTS.md).
        self.automatic_optimization = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)

    def model_step(self, batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x, y = batch
        logits = self(x)
        return self.loss_fn(logits, y), logits, y

    def on_train_start(self) -> None:
        self._plain_backward = backward_is_plain(self.trainer)

    def on_train_epoch_start(self) -> None:
        if isinstance(self.net, PixelSimilarity):
            self.net.reset()  # each epoch recomputes the means over the whole training set
        self._loss_sum = torch.zeros((), device=self.device)
        self._seen = 0

    def training_step(self, batch, batch_idx):
        """One (x, y) mini-batch, or a chunk of them (pipeline/datamodule.py MiniBatches): each
        mini-batch gets its own optimizer step, so a chunk is only fewer calls from Lightning."""
        optimizer = self.optimizers() if self.trainable else None
        backward = torch.Tensor.backward if self._plain_backward else self.manual_backward
        # Accumulate on the device; logging per step would cost more than the step itself.
        loss_sum, seen = self._loss_sum, 0  # loss_sum is the epoch's tensor, added to in place
        for x, y in batch if isinstance(batch, MiniBatches) else (batch,):
            if isinstance(self.net, PixelSimilarity):
                self.net.accumulate(x, y)
            loss, _, _ = self.model_step((x, y))
            if optimizer is not None:
                optimizer.zero_grad()
                backward(loss)  # Lightning's manual_backward unless it would only call loss.backward()
                optimizer.step()  # counted in trainer.global_step: one per mini-batch
            loss_sum += loss.detach() * len(y)
            seen += len(y)
        self._seen += seen

    def validation_step(self, batch, batch_idx):
        loss, logits, y = self.model_step(batch)
        # sync_dist: under DDP, the mean over the processes (a no-op on one process).
        self.log("val_loss", loss, batch_size=len(y), sync_dist=True)
        self.log("val_acc", ((logits > 0) == (y > 0.5)).float().mean(), batch_size=len(y), sync_dist=True)

    def pixel_weights(self) -> np.ndarray | None:
        """The linear model's 784 weights (None for the other models)."""
        if self.model_cfg.name is ModelName.linear:
            return self.net.weight.detach().cpu().numpy().ravel()
        return None

    def templates(self) -> np.ndarray | None:
        """pixel_similarity's two mean images, (2, 784), digits[0] first (None for the other models)."""
        if isinstance(self.net, PixelSimilarity):
            return self.net.templates.detach().cpu().numpy()
        return None

    def bias(self) -> float | None:
        """The linear model's bias (None for the other models)."""
        if self.model_cfg.name is ModelName.linear and self.net.bias is not None:
            return float(self.net.bias.detach()[0])
        return None

    def on_train_epoch_end(self) -> None:
        self.log("train_loss", self._loss_sum / max(self._seen, 1), sync_dist=True)
        row = {"epoch": self.current_epoch}
        bias = self.bias()
        if bias is not None:
            self.log("bias", bias, sync_dist=True)
        row.update({k: float(v) for k, v in self.trainer.callback_metrics.items()})
        self.history.append(row)

    def configure_optimizers(self):
        cfg = self.optim_cfg
        if not self.trainable:
            return []  # no optimizer (returning None would make Lightning warn)
        if cfg.name is OptimizerName.sgd:
            return torch.optim.SGD(self.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
        return torch.optim.Adam(self.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
