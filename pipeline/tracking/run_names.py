"""Run names chosen by the project, never by MLflow's random names (which `seed_everything`
makes the same for every run): what a run is, short enough for the UI's runs table.

- `tracking.run_name` when set;
- under DVC (`dvc exp run` / `dvc repro` set DVC_STAGE): the DVC experiment's name (DVC_EXP_NAME),
  else `dvc-repro` and the values params.yaml changes from conf/ (`dvc-repro digits=4,9`);
- a direct run: its command-line overrides (`model.bias=false,optim.lr=0.5`), or `defaults`;
- a sweep's job: its swept values (sweep_runs.join).
`tracking.*` never appears in a name (nor in a sweep's `sweep.overrides` tag): a URI may carry
credentials and says nothing about the run.
"""

from __future__ import annotations

import os

from hydra.core.override_parser.overrides_parser import OverridesParser

from pipeline.config.compose import to_flat_dict
from pipeline.config.schema import Config

UNNAMED = "defaults"  # a direct run without overrides
MAX_KEYS = 4  # a name lists at most this many changed values


def untracked(overrides: list[str]) -> list[str]:
    """The overrides without those of the `tracking` section."""
    parsed = OverridesParser.create().parse_overrides(list(overrides))
    return [o.input_line for o in parsed if o.key_or_group.split(".")[0] != "tracking"]


def short_value(value) -> str:
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


def changes(cfg: Config, base: dict) -> str:
    """`key=value` for each value (outside tracking) that differs from `base` (flat, as to_flat_dict
    gives), by the key's last part unless two changed keys share it; at most MAX_KEYS, then `+N`."""
    changed = {k: v for k, v in to_flat_dict(cfg).items() if base.get(k) != v and not k.startswith("tracking.")}
    leaves = [key.split(".")[-1] for key in changed]
    words = [
        f"{leaf if leaves.count(leaf) == 1 else key}={short_value(value)}"
        for leaf, (key, value) in zip(leaves, changed.items())
    ]
    more = f" +{len(words) - MAX_KEYS}" if len(words) > MAX_KEYS else ""
    return " ".join(words[:MAX_KEYS]) + more


def dvc_defaults() -> dict:
    """conf/ as it is, composed in the running Hydra app (which `dvc repro` starts on params.yaml),
    flat, its paths resolved as a validated configuration's are. Not validated: conf/ is not the
    configuration of this run, which the run validates once."""
    from omegaconf import OmegaConf

    from pipeline.config.compose import compose
    from pipeline.config.project import in_project

    conf = OmegaConf.to_container(compose(), resolve=True)
    flat = to_flat_dict({key: value for key, value in conf.items() if key != "hydra"})
    return {key: in_project(value) if key.startswith("paths.") else value for key, value in flat.items()}


def run_name(cfg: Config, overrides: list[str]) -> str:
    """The name of a single (non-sweep) training run with this configuration and these overrides."""
    if cfg.tracking.run_name:
        return cfg.tracking.run_name
    if os.environ.get("DVC_STAGE"):  # DVC runs the stage (`dvc repro`, `dvc exp run`)
        if os.environ.get("DVC_EXP_NAME"):
            return os.environ["DVC_EXP_NAME"]
        return " ".join(["dvc-repro", changes(cfg, dvc_defaults())]).strip()
    return ",".join(sorted(untracked(overrides))) or UNNAMED
