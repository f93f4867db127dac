"""A sweep's job as a trial of the Optuna search that launched it: it reports its validation
accuracy to its trial after every epoch, and stops when the search's pruner says it cannot win.

The Optuna sweeper (hydra_plugins/threes_sevens_optuna/) keeps its study in a storage that every
job can open (sqlite in the sweep's directory unless `hydra.sweeper.storage` names another) and
tells each job which storage, study and trial it runs through Hydra's own `hydra.job.env_set`
(`trial_overrides`): the same for a job in the sweep's process, in joblib's workers or under
submitit. `sweep_trial()` is then the job's `ReportToTrial` callback (None outside a search). With
a pruner (`hydra/sweeper/pruner=median`, conf/hydra/sweeper/pruner/) a trial that the pruner stops
ends its fit at the end of that epoch and the training raises TrialPruned: its MLflow run ends
KILLED with the reason and the tag `optuna.pruned` (so it is never the sweep's best, and never
registered), and the sweeper tells the study PRUNED.
"""

from __future__ import annotations

import os

import mlflow
from pytorch_lightning.callbacks import Callback

from pipeline.config.errors import TrialPruned
from pipeline.model.metric_names import VAL_ACC

STORAGE_ENV, STUDY_ENV, TRIAL_ENV = "SWEEP_OPTUNA_STORAGE", "SWEEP_OPTUNA_STUDY", "SWEEP_OPTUNA_TRIAL"
TRIAL_TAG, PRUNED_TAG = "optuna.trial", "optuna.pruned"  # on the trial's MLflow run
SQLITE_TIMEOUT_S = 120  # a job waits this long for the sweep's process or another job writing the study


def study_storage(url: str):
    """The Optuna storage at `url` (an SQLAlchemy URL). On sqlite every connection waits for the
    writer holding the file, as the tracking store's do (pipeline/tracking/store.py)."""
    import optuna

    engine_kwargs = {"connect_args": {"timeout": SQLITE_TIMEOUT_S}} if url.startswith("sqlite:") else {}
    return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)


def trial_overrides(storage: str, study_name: str, number: int) -> list[str]:
    """The Hydra overrides that make a job trial `number` of the study (environment variables of the job)."""
    values = {STORAGE_ENV: storage, STUDY_ENV: study_name, TRIAL_ENV: number}
    return [f"+hydra.job.env_set.{name}='{value}'" for name, value in values.items()]


def running_trial(study, number: int):
    """Trial `number` of `study`, asked by the sweeper in another process, to report to from here.
    Optuna 5.0 offers no public way to get a running trial in a process other than the one that
    asked for it: this takes its id from the storage as Optuna's own Study.tell(number) does
    (optuna/study/_tell.py)."""
    import optuna

    trial_id = study._storage.get_trial_id_from_study_id_trial_number(study._study_id, number)
    return optuna.trial.Trial(study, trial_id)


class ReportToTrial(Callback):
    """Tags the run with its trial number; with a pruner, reports `val_acc` after each epoch's
    validation (the step is the epoch's index, as in the run's metrics) and, when the pruner says
    so, asks Lightning to stop at the end of that epoch."""

    def __init__(self, trial, pruner) -> None:
        self.trial, self.pruner = trial, pruner  # pruner: None when the search has none
        self.pruned: tuple[int, float] | None = None  # the epoch it was stopped after, and its val_acc

    def on_fit_start(self, trainer, pl_module) -> None:
        mlflow.set_tag(TRIAL_TAG, str(self.trial.number))

    def on_validation_end(self, trainer, pl_module) -> None:
        if self.pruner is None or trainer.sanity_checking:
            return
        epoch, value = trainer.current_epoch, float(trainer.callback_metrics[VAL_ACC])
        self.trial.report(value, epoch)
        if self.trial.should_prune():
            self.pruned = (epoch, value)
            trainer.should_stop = True

    def raise_if_pruned(self, epochs: int) -> None:
        """TrialPruned (the run then ends KILLED) when the pruner stopped this trial."""
        if self.pruned is None:
            return
        epoch, value = self.pruned
        why = f"after epoch {epoch + 1} of {epochs} ({VAL_ACC} {value:.4f}) by {type(self.pruner).__name__}"
        mlflow.set_tag(PRUNED_TAG, why)
        raise TrialPruned(f"Optuna trial {self.trial.number} pruned {why}")


def sweep_trial() -> ReportToTrial | None:
    """This job's trial of an Optuna search (its callback), or None when the job is not one."""
    if TRIAL_ENV not in os.environ:
        return None
    import optuna
    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import instantiate

    pruner_cfg = HydraConfig.get().sweeper.get("pruner")  # the search's own, as the sweeper made it
    pruner = instantiate(pruner_cfg) if pruner_cfg else None
    study = optuna.load_study(
        study_name=os.environ[STUDY_ENV], storage=study_storage(os.environ[STORAGE_ENV]), pruner=pruner
    )
    return ReportToTrial(running_trial(study, int(os.environ[TRIAL_ENV])), pruner)
