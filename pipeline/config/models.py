"""The models conf/ offers: one YAML file each in conf/model/, naming its network class and bringing
its recipe (the optimizer, batch size and epochs it trains well with). Everything that lists the
models (the report, messages, tests) reads them from here (the learner sweep globs conf/model/), so adding a model is
a network class and one YAML file."""

from __future__ import annotations

from pathlib import Path

from omegaconf import open_dict

from pipeline.config.compose import CONF_DIR, as_dict, compose, validate
from pipeline.config.errors import ConfigError
from pipeline.config.schema import Config


def model_names(conf_dir: Path = CONF_DIR) -> list[str]:
    """Every model of conf/model/, by its file's name."""
    return sorted(path.stem for path in (conf_dir / "model").glob("*.yaml"))


def trained_with(cfg: Config) -> dict:
    """A configuration's recipe, `key -> value` as an override names it: the optimizer's class and
    arguments (`optim._target_`, `optim.lr`, ...) and the rest of the fit (`fit.epochs`, ...)."""
    optim = {f"optim.{key}": value for key, value in cfg.optim.items() if key != "_partial_"}
    return {**optim, **{f"fit.{key}": value for key, value in as_dict(cfg.fit).items()}}


def recipe(name: str) -> dict:
    """What `model=name` trains with when nothing else is asked for: `trained_with` its composed
    config, and `optim`, its conf/optim/ file (ConfigError for a model conf/ does not have)."""
    from hydra.errors import HydraException

    try:
        cfg = compose([f"model={name}"], return_hydra_config=True)
    except HydraException as err:
        raise ConfigError(f"model={name}: {str(err).splitlines()[0]}") from None
    choice = cfg.hydra.runtime.choices.optim
    with open_dict(cfg):
        del cfg["hydra"]
    return {"optim": choice, **trained_with(validate(cfg))}


def recipe_overrides(name: str, trained: dict) -> list[str]:
    """The overrides that take a run `trained_with` this back to the model's own recipe."""
    own = recipe(name)
    optimizer = [f"optim={own['optim']}"] if str(trained.get("optim._target_")) != str(own["optim._target_"]) else []
    changed = [key for key in own if key not in ("optim", "optim._target_") and str(trained.get(key)) != str(own[key])]
    return optimizer + [f"{key}={own[key]}" for key in changed]
