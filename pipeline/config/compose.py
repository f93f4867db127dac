"""The configuration: conf/ composed by Hydra, validated against the schema (schema.py).

`make params` and `dvc exp run` compose `conf/` into `params.yaml`; the DVC stages read that
file (`load_params`), the Hydra app reads `conf/` directly, both through `validate`.

The models conf/ offers: one YAML file each in conf/model/, naming its network class and bringing
its recipe (the optimizer, batch size and epochs it trains well with). Everything that lists the
models (the report, messages, tests) reads them from here (`model_names`, `recipe`; the learner
sweep globs conf/model/), so adding a model is a network class and one YAML file.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from pipeline.config.errors import ConfigError
from pipeline.config.project import in_project, project_dir
from pipeline.config.schema import Config
from pipeline.config.secrets import refuse_in_tracking_uri

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
RECIPE_KEYS = ("name", "lr", "momentum", "weight_decay", "loss", "batch_size", "epochs", "shuffle")


def resolve_paths(cfg: Config) -> Config:
    """cfg with its paths (paths.*, tracking.run_file) resolved against the project directory
    (project.py says why)."""
    paths = replace(cfg.paths, **{key: in_project(value) for key, value in vars(cfg.paths).items()})
    run_file = cfg.tracking.run_file and in_project(cfg.tracking.run_file)
    return replace(cfg, paths=paths, tracking=replace(cfg.tracking, run_file=run_file))


def _check_values(cfg: Config) -> None:
    checks = [
        ("optim.lr", cfg.optim.lr > 0, "a number > 0"),
        ("optim.batch_size", cfg.optim.batch_size >= 1, "an integer >= 1"),
        ("optim.epochs", cfg.optim.epochs >= 1, "an integer >= 1"),
        ("optim.momentum", cfg.optim.momentum >= 0, "a number >= 0"),
        ("optim.weight_decay", cfg.optim.weight_decay >= 0, "a number >= 0"),
        ("data.valid_last", cfg.data.valid_last >= 1, "an integer >= 1"),
        ("fetch.timeout_s", cfg.fetch.timeout_s is None or cfg.fetch.timeout_s > 0, "a number > 0"),
    ]
    for key, ok, expected in checks:
        if not ok:
            raise ConfigError(f"{key}={OmegaConf.select(OmegaConf.structured(cfg), key)}: expected {expected}")
    digits = list(cfg.data.digits)
    if len(digits) != 2 or len(set(digits)) != 2 or not all(0 <= d <= 9 for d in digits):
        raise ConfigError(f"data.digits={digits}: expected two distinct digits in 0..9")
    for key in ("_target_", "name"):
        if not isinstance(cfg.model.get(key), str) or not cfg.model[key]:
            raise ConfigError(f"model.{key}: expected a string (conf/model/*.yaml gives one)")
    refuse_in_tracking_uri(cfg.tracking.uri)


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
    _check_values(typed)
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
    if isinstance(section, dict):
        return dict(section)
    return OmegaConf.to_container(OmegaConf.structured(section), enum_to_str=True)


def to_flat_dict(cfg: Config | dict) -> dict[str, Any]:
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
    """conf/ composed by Hydra, as `dvc exp run` composes it into params.yaml. Inside a running Hydra
    app, with that app's search path (conf/ and any --config-dir it was given)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    if GlobalHydra.instance().is_initialized():
        return hydra_compose("config", overrides=overrides or [])
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return hydra_compose("config", overrides=overrides or [])


def model_names(conf_dir: Path = CONF_DIR) -> list[str]:
    """Every model of conf/model/, by its file's name."""
    return sorted(path.stem for path in (conf_dir / "model").glob("*.yaml"))


def recipe(name: str) -> dict:
    """What `model=name` trains with when nothing else is asked for: its optim section (ConfigError
    for a model conf/ does not have)."""
    from hydra.errors import HydraException

    try:
        optim = as_dict(validate(compose([f"model={name}"])).optim)
    except HydraException as err:
        raise ConfigError(f"model={name}: {str(err).splitlines()[0]}") from None
    return {key: optim[key] for key in RECIPE_KEYS}


def recipe_overrides(name: str, optim: dict) -> list[str]:
    """The overrides that take `optim` (a run's optim section) back to the model's own recipe."""
    own = recipe(name)
    changed = [key for key in RECIPE_KEYS if str(optim.get(key)) != str(own[key])]
    return ([f"optim={own['name']}"] if "name" in changed else []) + [
        f"optim.{key}={own[key]}" for key in changed if key != "name"
    ]
