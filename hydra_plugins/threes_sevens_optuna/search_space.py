"""An Optuna search space from Hydra's sweep syntax (the optuna sweeper's `params` and command line):

choice(a, b, c) or a,b,c      -> categorical
range(start, stop, step)      -> categorical over the range's values
interval(low, high)           -> float
tag(int, interval(low, high)) -> int
tag(log, interval(low, high)) -> on a log scale (tag(int, log, ...) too)
"""

# No `from __future__ import annotations`: Hydra loads plugin modules outside sys.modules.
from typing import Dict, List, Tuple

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution


def distribution(override: Override) -> BaseDistribution:
    """The Optuna distribution for one sweep override."""
    sweep = override.value()
    if isinstance(sweep, ChoiceSweep):
        return CategoricalDistribution(list(sweep.list))
    if isinstance(sweep, RangeSweep):
        return CategoricalDistribution(list(override.sweep_iterator()))
    if isinstance(sweep, IntervalSweep):
        log_scale = "log" in sweep.tags
        if "int" in sweep.tags:  # Hydra's interval() bounds are floats whatever was written
            return IntDistribution(int(sweep.start), int(sweep.end), log=log_scale)
        return FloatDistribution(sweep.start, sweep.end, log=log_scale)
    raise ValueError(f"{override.input_line}: expected choice(...), range(...) or interval(...)")


def search_space(params: Dict[str, str], arguments: List[str]) -> Tuple[Dict[str, BaseDistribution], List[str]]:
    """Distributions from the configured params and the command line's sweep overrides (which win);
    the command line's other overrides, passed to every trial unchanged."""
    parser = OverridesParser.create()
    space = {}
    for override in parser.parse_overrides([f"{key}={value}" for key, value in params.items()]):
        space[override.key_or_group] = distribution(override)
    fixed = []
    for override in parser.parse_overrides(arguments):
        if override.is_sweep_override():
            space[override.key_or_group] = distribution(override)
        else:
            fixed.append(override.input_line)
    return space, fixed
