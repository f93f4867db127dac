"""A Hydra sweeper that searches with Optuna (`hydra/sweeper=optuna`, conf/hparams_search/).

The published `hydra-optuna-sweeper` (1.2.0 and 1.3.0) requires optuna < 3 and uses
distribution classes that Optuna 3 deprecated; it cannot install beside our optuna 5 pin.
This one is Optuna's ask/tell loop around Hydra's launcher, with the same search-space syntax
(search_space.py). Each trial is one Hydra job; the task function's return value is the
objective. Up to `n_jobs` trials are launched together, so a parallel launcher (joblib) runs
them at once.

The study lives in `storage`, by default the sqlite file `optuna.db` in the sweep's directory,
where every job can open it: the sweeper tells each job its storage, study and trial through
Hydra's `hydra.job.env_set` (pipeline/launch/pruning.py). With a pruner
(`hydra/sweeper/pruner=median`, conf/hydra/sweeper/pruner/) each job reports its validation
accuracy every epoch, and a trial the pruner stops fails with TrialPruned: it is told PRUNED.
A resumed sweep (`hydra.sweeper.resume=latest`, pipeline/launch/resume.py) continues the study
kept in its first directory: the trials its interruption left running are run again with the
same values, and only the trials still missing from n_trials run.
"""

# No `from __future__ import annotations`: Hydra loads plugin modules outside sys.modules,
# where dataclasses cannot resolve string annotations.
import contextlib
import io
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

import optuna
from hydra.core.config_store import ConfigStore
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn, JobStatus
from hydra.plugins.sweeper import Sweeper
from omegaconf import OmegaConf
from optuna.trial import FrozenTrial, TrialState

from hydra_plugins.threes_sevens_optuna.search_space import search_space
from pipeline.config.errors import TrialPruned

log = logging.getLogger(__name__)
STUDY_FILE = "optuna.db"  # the default storage, in the sweep's (first) directory
RETRY_OF = "retry_of"  # a trial's user attribute: the interrupted trial whose values it runs again


@dataclass
class OptunaSweeperConf:
    _target_: str = "hydra_plugins.threes_sevens_optuna.optuna_sweeper.OptunaSweeper"
    defaults: List[Any] = field(default_factory=lambda: ["_self_", {"pruner": None}])  # a pruner replaces None
    direction: str = "maximize"  # or minimize: what to do with the task function's return value
    n_trials: int = 20  # in all: a resumed search runs those still missing
    n_jobs: int = 1  # trials launched together
    seed: Optional[int] = None  # the TPE sampler's seed: the same seed asks the same trials
    storage: Optional[str] = None  # an SQLAlchemy URL every job can reach; None: optuna.db in the sweep's directory
    study_name: Optional[str] = None  # None: the sweep's name (its first directory's)
    pruner: Any = None  # hydra/sweeper/pruner=median|successive_halving|hyperband; None: trials run to the end
    resume: Optional[str] = None  # latest, a sweep's name or its parent run id: continue that sweep
    params: Dict[str, str] = field(default_factory=dict)  # key -> search space, e.g. "interval(0.1, 1)"


ConfigStore.instance().store(group="hydra/sweeper", name="optuna", node=OptunaSweeperConf, provider="threes-sevens")


def job_error(job: JobReturn) -> BaseException:
    """A failed job's exception. Hydra 1.3's public `JobReturn.return_value` re-raises it after
    printing "Error executing job with overrides: ...": catching it is the public way to get it.
    The line is kept for a failure, not for a trial its pruner stopped."""
    printed = io.StringIO()
    try:
        with contextlib.redirect_stderr(printed):
            job.return_value  # noqa: B018 - the property re-raises the job's exception
    except Exception as err:
        if not isinstance(err, TrialPruned):
            sys.stderr.write(printed.getvalue())
        return err
    raise AssertionError(f"job {job.overrides} did not fail")


def first_best(completed: List[FrozenTrial], direction: str) -> FrozenTrial:
    """The best completed trial; on a tie the first in trial order (Optuna's `study.best_trial` leaves
    ties to the storage). The sweep's parent run names the same one: pipeline/launch/sweep.py orders
    tied child runs by start time, which is trial order when trials run one at a time."""
    sign = 1 if direction == "maximize" else -1
    return max(sorted(completed, key=lambda trial: trial.number), key=lambda trial: sign * trial.value)


def retry_interrupted(study: optuna.Study) -> None:
    """The trials an interrupted sweep left RUNNING: told FAIL, and their values queued to run again."""
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study.tell(trial.number, state=TrialState.FAIL)
        study.enqueue_trial(trial.params, user_attrs={RETRY_OF: trial.number})


def counted(study: optuna.Study) -> List[FrozenTrial]:
    """The trials that count toward n_trials: finished (complete, pruned or failed), not interrupted."""
    trials = study.get_trials(deepcopy=False)
    retried = {trial.user_attrs[RETRY_OF] for trial in trials if RETRY_OF in trial.user_attrs}
    return [trial for trial in trials if trial.state.is_finished() and trial.number not in retried]


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
        pruner: Optional[optuna.pruners.BasePruner] = None,  # Hydra instantiates it from its config
        resume: Optional[str] = None,
    ) -> None:
        self.direction = direction
        self.n_trials = n_trials
        self.n_jobs = n_jobs
        self.seed = seed
        self.storage = storage
        self.study_name = study_name
        self.params = dict(params or {})
        self.pruner = pruner
        self.resume = resume

    def setup(self, *, hydra_context, task_function, config) -> None:
        self.config = config
        self.hydra_context = hydra_context  # validate_batch_is_legal needs it
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def study(self) -> optuna.Study:
        """The sweep's study, created or (resuming) loaded; its storage URL and name in `self.where`."""
        from pipeline.launch.pruning import study_storage
        from pipeline.tracking.sweep_runs import published

        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep = published(sweep_dir)  # by the MlflowSweep callback: the sweep's first directory
        home = Path(sweep["home"]) if sweep else sweep_dir
        home.mkdir(parents=True, exist_ok=True)
        self.where = (self.storage or f"sqlite:///{home.resolve() / STUDY_FILE}", self.study_name or home.name)
        study = optuna.create_study(
            direction=self.direction,
            sampler=optuna.samplers.TPESampler(seed=self.seed),
            pruner=self.pruner,
            storage=study_storage(self.where[0]),
            study_name=self.where[1],
            load_if_exists=True,
        )
        if self.resume:
            retry_interrupted(study)
            if self.seed is not None:  # a new random stream: not the values its first trials were asked
                study.sampler = optuna.samplers.TPESampler(seed=self.seed + len(study.trials))
        return study

    def sweep(self, arguments: List[str]) -> optuna.trial.FrozenTrial:
        from pipeline.launch.pruning import trial_overrides

        space, fixed = search_space(self.params, arguments)
        if not space:
            raise ValueError("optuna sweeper: nothing to search; set hydra.sweeper.params or give key=interval(...)")
        study = self.study()
        missing = self.n_trials - len(counted(study)) if self.resume else self.n_trials
        if self.resume:
            log.info(f"Resuming study {self.where[1]}: {self.n_trials - missing} of {self.n_trials} trials done")
        launched = 0
        while launched < missing:
            trials = [study.ask(space) for _ in range(min(self.n_jobs, missing - launched))]
            batch = [
                tuple(
                    fixed
                    + [f"{key}={value}" for key, value in trial.params.items()]
                    + trial_overrides(*self.where, trial.number)
                )
                for trial in trials
            ]
            self.validate_batch_is_legal(batch)
            for trial, job in zip(trials, self.launcher.launch(batch, initial_job_idx=launched)):
                self.tell(study, trial, job)
            launched += len(trials)
        return self.results(study)

    def tell(self, study: optuna.Study, trial: optuna.Trial, job: JobReturn) -> None:
        if job.status == JobStatus.COMPLETED:
            study.tell(trial, float(job.return_value))
            return
        error = job_error(job)
        if isinstance(error, TrialPruned):
            log.info(str(error))
            study.tell(trial, state=TrialState.PRUNED)
        else:  # a failed trial is recorded as failed; the search goes on
            log.warning(f"trial {trial.number} failed: {error!r}")
            study.tell(trial, state=TrialState.FAIL)

    def results(self, study: optuna.Study) -> FrozenTrial:
        """The best trial, also written to optimization_results.yaml in the sweep's directory."""
        trials = counted(study)
        completed = [trial for trial in trials if trial.state == TrialState.COMPLETE]
        if not completed:
            raise RuntimeError(f"optuna sweeper: all {len(trials)} trials failed")
        best = first_best(completed, self.direction)
        results = {
            "direction": self.direction,
            "best_value": best.value,
            "best_params": best.params,
            "n_trials": len(trials),
            "n_complete": len(completed),
            "n_pruned": sum(trial.state == TrialState.PRUNED for trial in trials),
            "study": {"storage": self.where[0], "name": self.where[1]},
        }
        OmegaConf.save(OmegaConf.create(results), Path(self.config.hydra.sweep.dir) / "optimization_results.yaml")
        log.info(f"Best trial {best.number}: value {best.value} with {best.params}")
        return best
