"""The models conf/ offers: one YAML file each in conf/model/, naming its network class and bringing
its recipe (the optimizer, batch size and epochs it trains well with). Everything that lists the
models (the report, messages, tests) reads them from here (the learner sweep globs conf/model/), so adding a model is
a network class and one YAML file."""

from __future__ import annotations

from pathlib import Path

from pipeline.config.compose import CONF_DIR, as_dict, compose, validate
from pipeline.config.errors import ConfigError

RECIPE_KEYS = ("name", "lr", "momentum", "weight_decay", "loss", "batch_size", "epochs", "shuffle")


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
