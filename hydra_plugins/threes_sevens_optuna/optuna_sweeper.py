"""A Hydra sweeper that searches with Optuna (`hydra/sweeper=optuna`).

The published `hydra-optuna-sweeper` (1.2.0 and 1.3.0) requires optuna < 3 and uses
distribution classes that Optuna 3 deprecated; it cannot install beside our optuna 5 pin.
This one is Optuna's ask/tell loop around Hydra's launcher, with the same search-space
syntax (Hydra's sweep overrides):

    choice(a, b, c) or a,b,c      -> categorical
    range(start, stop, step)      -> categorical over the range's values
    interval(low, high)           -> float
    tag(int, interval(low, high)) -> int
    tag(log, interval(low, high)) -> on a log scale (tag(int, log, ...) too)

Each trial is one Hydra job; the task function's return value is the objective. Up to
`n_jobs` trials are launched together, so a parallel launcher (joblib) runs them at once.
"""

# No `from __future__ import annotations`: Hydra loads plugin modules outside sys.modules,
# where dataclasses cannot resolve string annotations.
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import optuna
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn, JobStatus
from hydra.plugins.sweeper import Sweeper
from omegaconf import OmegaConf
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState

log = logging.getLogger(__name__)


@dataclass
class OptunaSweeperConf:
    _target_: str = "hydra_plugins.threes_sevens_optuna.optuna_sweeper.OptunaSweeper"
    direction: str = "maximize"  # or minimize: what to do with the task function's return value
    n_trials: int = 20
    n_jobs: int = 1  # trials launched together
    seed: Optional[int] = None  # the TPE sampler's seed: the same seed asks the same trials
    storage: Optional[str] = None  # an Optuna storage URL to keep the study; None: in memory
    study_name: Optional[str] = None
    params: Dict[str, str] = field(default_factory=dict)  # key -> search space, e.g. "interval(0.1, 1)"


ConfigStore.instance().store(group="hydra/sweeper", name="optuna", node=OptunaSweeperConf, provider="threes-sevens")


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


def job_error(job: JobReturn) -> BaseException:
    """A failed job's exception. Hydra 1.3's public `JobReturn.return_value` re-raises it (after
    printing "Error executing job ..."): catching it is the public way to get it."""
    try:
        job.return_value  # noqa: B018 - the property re-raises the job's exception
    except Exception as err:
        return err
    raise AssertionError(f"job {job.overrides} did not fail")


def first_best(completed: List[FrozenTrial], direction: str) -> FrozenTrial:
    """The best completed trial; on a tie the first in trial order (Optuna's `study.best_trial` leaves
    ties to the storage). The sweep's parent run names the same one: pipeline/launch/sweep.py orders
    tied child runs by start time, which is trial order when trials run one at a time."""
    sign = 1 if direction == "maximize" else -1
    return max(sorted(completed, key=lambda trial: trial.number), key=lambda trial: sign * trial.value)


class OptunaSweeper(Sweeper):
    def __init__(
        self,
        direction: str,
        n_trials: int,
        n_jobs: int,
        seed: Optional[int],
        storage: Optional[str],
        study_name: Optional[str],
        params: Dict[str, str],
    ) -> None:
        self.direction = direction
        self.n_trials = n_trials
        self.n_jobs = n_jobs
        self.seed = seed
        self.storage = storage
        self.study_name = study_name
        self.params = dict(params or {})

    def setup(self, *, hydra_context, task_function, config) -> None:
        self.config = config
        self.hydra_context = hydra_context  # validate_batch_is_legal needs it
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: List[str]) -> optuna.trial.FrozenTrial:
        space, fixed = search_space(self.params, arguments)
        if not space:
            raise ValueError("optuna sweeper: nothing to search; set hydra.sweeper.params or give key=interval(...)")
        study = optuna.create_study(
            direction=self.direction,
            sampler=optuna.samplers.TPESampler(seed=self.seed),
            storage=self.storage,
            study_name=self.study_name,
            load_if_exists=True,
        )
        launched = 0
        while launched < self.n_trials:
            trials = [study.ask(space) for _ in range(min(self.n_jobs, self.n_trials - launched))]
            batch = [tuple(fixed + [f"{key}={value}" for key, value in trial.params.items()]) for trial in trials]
            self.validate_batch_is_legal(batch)
            for trial, job in zip(trials, self.launcher.launch(batch, initial_job_idx=launched)):
                if job.status == JobStatus.COMPLETED:
                    study.tell(trial, float(job.return_value))
                else:  # a failed trial is recorded as failed; the search goes on
                    log.warning(f"trial {trial.number} failed: {job_error(job)!r}")
                    study.tell(trial, state=TrialState.FAIL)
            launched += len(trials)

        completed = study.get_trials(states=[TrialState.COMPLETE])
        if not completed:
            raise RuntimeError(f"optuna sweeper: all {launched} trials failed")
        best = first_best(completed, self.direction)
        results = {
            "direction": self.direction,
            "best_value": best.value,
            "best_params": best.params,
            "n_trials": launched,
            "n_complete": len(completed),
        }
        OmegaConf.save(OmegaConf.create(results), Path(self.config.hydra.sweep.dir) / "optimization_results.yaml")
        log.info(f"Best trial {best.number}: value {best.value} with {best.params}")
        return best
