"""The networks: each maps (N, 784) pixels in 0..1 to (N, 1) logits, positive for digits[0].

conf/model/<name>.yaml names one of these classes in `_target_` with its arguments and its recipe;
adding a model is a class here (or an existing one) and a YAML file there. A class checks its own
arguments' ranges (ConfigError naming the key); `build` checks their names and types against its
signature. Optional hooks a class may define, used where they exist:
`pixel_weights()` / `bias_value()` (one weight per pixel: the weight pictures), `templates` (mean
images), `start_epoch()` / `observe(x, y)` (a model that learns from the batches without gradients).
"""

from __future__ import annotations

import importlib
import inspect
import typing

import numpy as np
import torch
from torch import nn

from pipeline.config.errors import ConfigError

N_PIXELS = 28 * 28
# Models logged before the networks moved to pipeline/model/ name their class by its old path (in the
# model's config.json): built from the class's new home (see tests/fixtures/logged_model/).
MOVED = {"pipeline.nets.": "pipeline.model.nets."}


def init_normal(net: nn.Module, std: float | None) -> nn.Module:
    """fastbook's init: every weight and bias drawn from randn * std (None: PyTorch's default)."""
    if std is not None and std <= 0:
        raise ConfigError(f"model.init_std={std}: expected null or a number > 0")
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
        if hidden < 1:
            raise ConfigError(f"model.hidden={hidden}: expected an integer >= 1")
        super().__init__(nn.Linear(N_PIXELS, hidden, bias=bias), nn.ReLU(), nn.Linear(hidden, 1, bias=bias))
        init_normal(self, init_std)


class SmallCNN(nn.Module):
    """Two 3x3 convolutions (`channels`, then twice as many; padding 1, each followed by ReLU and a
    2x2 max-pool: 28 -> 14 -> 7) and a linear head from the features to the logit. With 16 channels:
    6,369 parameters, fewer than the MLP's 100,609, because each filter is shared by every position.
    Reads the flat pixels as (N, 1, 28, 28) images."""

    def __init__(self, channels: int = 16):
        if channels < 1:
            raise ConfigError(f"model.channels={channels}: expected an integer >= 1")
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


def fits(value, annotation) -> bool:
    """Whether a config value has the type an argument is annotated with (no annotation: any)."""
    if annotation is inspect.Parameter.empty:
        return True
    kinds = typing.get_args(annotation) or (annotation,)
    if value is None or isinstance(value, bool):
        return type(value) in kinds
    if isinstance(value, int):
        return int in kinds or float in kinds
    return any(isinstance(value, kind) for kind in kinds if isinstance(kind, type))


def find_class(target: str, key: str = "model._target_") -> type:
    """The class a dotted path `module.Class` names, its module imported. Where there is none, a
    ConfigError of one line naming `key` (Hydra's get_class logs an ERROR and raises several lines)."""
    module_name, _, class_name = target.rpartition(".")
    if not module_name or not all(part.isidentifier() for part in target.split(".")):
        raise ConfigError(f"{key}={target}: expected a class as module.Class")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:  # the module itself is missing, or it fails to import
        missing = err.name if isinstance(err, ModuleNotFoundError) else None
        if missing and (module_name == missing or module_name.startswith(f"{missing}.")):
            raise ConfigError(f"{key}={target}: no module named {missing}") from None
        detail = " ".join(str(err).split())  # one line
        raise ConfigError(f"{key}={target}: importing module {module_name} failed: {detail}") from None
    found = getattr(module, class_name, None)
    if not isinstance(found, type):
        raise ConfigError(f"{key}={target}: no class {class_name} in module {module_name}")
    return found


def build(model: dict) -> nn.Module:
    """The network a `model` config names: its `_target_` class, called with the config's keys.
    A key the class does not take, a value of the wrong type, or an argument missing is refused."""
    target = model["_target_"]
    for old, new in MOVED.items():
        target = new + target.removeprefix(old) if target.startswith(old) else target
    net_class = find_class(target)
    takes = inspect.signature(net_class, eval_str=True).parameters
    # A null argument the class does not take is left out: models logged before the model section
    # became open carry every network's arguments, null where they did not apply.
    args = {k: v for k, v in model.items() if k not in ("_target_", "name") and (k in takes or v is not None)}
    for key, value in args.items():
        if key not in takes:
            raise ConfigError(f"model.{key}={value}: model {model['name']} ({target}) takes no '{key}'")
        if not fits(value, takes[key].annotation):
            raise ConfigError(f"model.{key}={value!r}: expected {takes[key].annotation} ({target})")
    for key, parameter in takes.items():
        if key not in args and parameter.default is inspect.Parameter.empty:
            raise ConfigError(f"model.{key}: missing; model {model['name']} ({target}) needs it")
    return net_class(**args)
