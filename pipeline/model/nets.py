"""The networks: each maps (N, 784) pixels in 0..1 to (N, 1) logits, positive for digits[0].

conf/model/<name>.yaml names one of these classes in `_target_` with its arguments and its recipe;
adding a model is a class here (or an existing one, or one of any module) and a YAML file there.
`build` makes it with hydra.utils.instantiate; a class checks its own arguments' types and ranges
(ConfigError naming the key). Optional hooks a class may define, used where they exist:
`pixel_weights()` / `bias_value()` (one weight per pixel: the weight pictures), `templates` (mean
images), `start_epoch()` / `observe(x, y)` (a model that learns from the batches without gradients).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from pipeline.config.errors import ConfigError
from pipeline.config.instantiate import instantiated

N_PIXELS = 28 * 28
# Models logged before the networks moved to pipeline/model/ name their class by its old path (in the
# model's config.json): built from the class's new home (see tests/fixtures/logged_model/).
MOVED = {"pipeline.nets.": "pipeline.model.nets."}


def at_least_one(key: str, value) -> None:
    """A count a network is built with (model.hidden, model.channels): an integer >= 1."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"model.{key}={value!r}: expected an integer >= 1")


def init_normal(net: nn.Module, std: float | None) -> nn.Module:
    """fastbook's init: every weight and bias drawn from randn * std (None: PyTorch's default)."""
    if std is not None and (not isinstance(std, (int, float)) or isinstance(std, bool) or std <= 0):
        raise ConfigError(f"model.init_std={std!r}: expected null or a number > 0")
    if std is not None:
        for p in net.parameters():
            nn.init.normal_(p, std=std)
    return net


class Linear(nn.Linear):
    """fastbook's linear1: logit = pixels @ weights + bias, one weight per pixel and one bias."""

    def __init__(self, bias: bool, init_std: float | None = None):
        super().__init__(N_PIXELS, 1, bias=bias)
        init_normal(self, init_std)

    def pixel_weights(self) -> np.ndarray:
        return self.weight.detach().cpu().numpy().ravel()

    def bias_value(self) -> float | None:
        return float(self.bias.detach()[0]) if self.bias is not None else None


class MLP(nn.Sequential):
    """One hidden layer of ReLU units between the pixels and the logit."""

    def __init__(self, hidden: int, bias: bool = True, init_std: float | None = None):
        at_least_one("hidden", hidden)
        super().__init__(nn.Linear(N_PIXELS, hidden, bias=bias), nn.ReLU(), nn.Linear(hidden, 1, bias=bias))
        init_normal(self, init_std)


class SmallCNN(nn.Module):
    """Two 3x3 convolutions (`channels`, then twice as many; padding 1, each followed by ReLU and a
    2x2 max-pool: 28 -> 14 -> 7) and a linear head from the features to the logit. With 16 channels:
    6,369 parameters, fewer than the MLP's 100,609, because each filter is shared by every position.
    Reads the flat pixels as (N, 1, 28, 28) images."""

    def __init__(self, channels: int = 16):
        at_least_one("channels", channels)
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, channels, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(channels, 2 * channels, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.head = nn.Linear(2 * channels * 7 * 7, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x.reshape(-1, 1, 28, 28)).flatten(1))


class PixelSimilarity(nn.Module):
    """The mean image of each digit as its template; an image is the digit it differs from least.

    Distance = mean |pixel - template pixel|, the learner's abs(value - weight) idea.
    logit = distance to the digits[1] template - distance to the digits[0] template: positive
    when the image is closer to digits[0], like the linear model's logit. No parameters: the
    templates are running means over the training batches seen this epoch (`observe`).
    """

    def __init__(self):
        super().__init__()
        # Row 0: digits[0] (label 1), row 1: digits[1] (label 0). Saved with the model.
        self.register_buffer("templates", torch.zeros(2, N_PIXELS))
        self.register_buffer("pixel_sums", torch.zeros(2, N_PIXELS, dtype=torch.float64), persistent=False)
        self.register_buffer("counts", torch.zeros(2, dtype=torch.float64), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        distance = (x.unsqueeze(1) - self.templates).abs().mean(-1)  # (n, 2)
        return distance[:, 1:] - distance[:, :1]

    def start_epoch(self) -> None:
        """Each epoch recomputes the means over the whole training set."""
        self.pixel_sums.zero_()
        self.counts.zero_()

    @torch.no_grad()
    def observe(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """Add a batch of (pixels, 0/1 label) to the means."""
        for row, members in enumerate((y > 0.5, y <= 0.5)):
            self.pixel_sums[row] += x[members].sum(0, dtype=torch.float64)
            self.counts[row] += members.sum()
        self.templates.copy_(self.pixel_sums / self.counts.clamp(min=1).unsqueeze(1))


def build(model: dict) -> nn.Module:
    """The network a `model` config names: hydra.utils.instantiate of its `_target_` class with the
    config's other keys but `name`. A class that is not there, a key the class does not take or an
    argument it misses is refused in one line naming the key; the class checks its values itself."""
    target = model["_target_"]
    args = {k: v for k, v in model.items() if k not in ("_target_", "name")}
    for old, new in MOVED.items():
        if target.startswith(old):
            target = new + target.removeprefix(old)
            # Those models carry every network's arguments, null where they did not apply.
            args = {k: v for k, v in args.items() if v is not None}
    who = f"model {model['name']} ({target})"
    return instantiated({"_target_": target, **args}, "model", who)
