"""Objects built from a config section with Hydra's `hydra.utils.instantiate` (its `_target_` class
called with the section's other keys): the networks (`model`) and the optimizer (`optim`). What
instantiate would report in several lines (a class that is not there, an argument the class does
not take or misses, a value it refuses) is one ConfigError line naming the key."""

from __future__ import annotations

import importlib
import re
from typing import Any

from pipeline.config.errors import ConfigError


def find_class(target: str, key: str) -> type:
    """The class a dotted path `module.Class` names, its module imported. Where there is none, a
    ConfigError of one line naming `key` (Hydra's own lookup logs an ERROR and raises several lines)."""
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


def refusal(err: Exception, config: dict, section: str, who: str) -> ConfigError:
    """The call of `config`'s class failing with `err`, as one line naming the key: an argument it
    does not take, one it needs and is not given, or (a class's own range check) its ConfigError."""
    if isinstance(err, ConfigError):
        return err
    text = " ".join(str(err).split())
    if isinstance(err, TypeError) and (unexpected := re.search(r"unexpected keyword argument '(\w+)'", text)):
        key = unexpected[1]
        return ConfigError(f"{section}.{key}={config.get(key)}: {who} takes no '{key}'")
    if isinstance(err, TypeError) and (missing := re.search(r"missing \d+ required .*?arguments?: '(\w+)'", text)):
        return ConfigError(f"{section}.{missing[1]}: missing; {who} needs it")
    return ConfigError(f"{section}._target_={config['_target_']}: {who} refused its arguments: {text}")


def instantiated(config: dict, section: str, who: str) -> Any:
    """hydra.utils.instantiate(config), with plain Python values for the arguments; a refusal
    (see `refusal`) as one ConfigError line."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    find_class(config["_target_"], f"{section}._target_")
    try:
        return instantiate(config, _convert_="all")
    except InstantiationException as err:  # the class's own exception, wrapped by Hydra
        raise refusal(err.__cause__ or err, config, section, who) from None
    except (TypeError, ValueError) as err:
        raise refusal(err, config, section, who) from None
