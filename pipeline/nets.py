"""The networks: each maps (N, 784) pixels in 0..1 to (N, 1) logits, positive for digits[0].

conf/model/<name>.yaml names one of these classes in `_target_` with its arguments; adding a
model is a class here and a YAML file there.
"""

from __future__ import annotations

import inspect

import torch
from torch import nn

N_PIXELS = 28 * 28


def init_normal(net: nn.Module, std: float | None) -> nn.Module:
    """fastbook's init: every weight and bias drawn from randn * std (None: PyTorch's default)."""
    if std is not None:
        for p in net.parameters():
            nn.init.normal_(p, std=std)
    return net


class Linear(nn.Linear):
    """fastbook's linear1: logit = pixels @ weights + bias, one weight per pixel and one bias."""

    def __init__(self, bias: bool, init_std: float | None):
        super().__init__(N_PIXELS, 1, bias=bias)
        init_normal(self, init_std)


class MLP(nn.Sequential):
    """One hidden layer of ReLU units between the pixels and the logit."""

    def __init__(self, hidden: int, bias: bool, init_std: float | None):
        super().__init__(nn.Linear(N_PIXELS, hidden, bias=bias), nn.ReLU(), nn.Linear(hidden, 1, bias=bias))
        init_normal(self, init_std)


class SmallCNN(nn.Module):
    """Two 3x3 convolutions (16 then 32 channels, padding 1, each followed by ReLU and a 2x2
    max-pool: 28 -> 14 -> 7) and a linear head from the 32 x 7 x 7 features to the logit: 6,369
    parameters, fewer than the MLP's 100,609, because each filter is shared by every position.
    Reads the flat pixels as (N, 1, 28, 28) images."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.head = nn.Linear(32 * 7 * 7, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x.reshape(-1, 1, 28, 28)).flatten(1))


class PixelSimilarity(nn.Module):
    """The mean image of each digit as its template; an image is the digit it differs from least.

    Distance = mean |pixel - template pixel|, the learner's abs(value - weight) idea.
    logit = distance to the digits[1] template - distance to the digits[0] template: positive
    when the image is closer to digits[0], like the linear model's logit. No parameters: the
    templates are running means over the training batches seen this epoch (`accumulate`).
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


def build(model: dict) -> nn.Module:
    """The network a `model` config names: its `_target_` class, called with the config's keys
    that the class takes. A value set for a key the class does not take is refused."""
    from hydra.utils import get_class

    from pipeline.config import ConfigError

    try:
        net_class = get_class(model["_target_"])
    except (ImportError, ValueError) as err:
        raise ConfigError(f"model._target_={model['_target_']}: no such class ({err})") from None
    takes = inspect.signature(net_class).parameters
    for key, value in model.items():
        if key not in takes and key not in ("_target_", "name") and value is not None:
            raise ConfigError(f"model.{key}={value}: model {model['name']} ({model['_target_']}) takes no '{key}'")
    return net_class(**{key: model[key] for key in takes if key in model})
