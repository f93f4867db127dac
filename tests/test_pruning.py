"""A sweep's job as its Optuna trial (pipeline/launch/pruning.py): it reports every epoch, stops when
the pruner says so, and its run shows it; end to end with jobs in the sweep's process and in
joblib's workers."""

import json

import mlflow
import optuna
import pytest
from mlflow import MlflowClient
from omegaconf import OmegaConf

from pipeline.config.errors import TrialPruned
from pipeline.launch import pruning
from pipeline.tracking import lifecycle
from pipeline.tracking.sweep_runs import PARENT_TAG, SWEEP_FILE
from tests.test_sweep import common_overrides, multirun, synthetic_normalized


def test_trial_overrides_parse_as_hydra_overrides_of_the_jobs_environment():
    from hydra.core.override_parser.overrides_parser import OverridesParser

    lines = pruning.trial_overrides("sqlite:////tmp/a b/optuna.db", "2026-01-01_10-00-00", 7)
    parsed = OverridesParser.create().parse_overrides(lines)
    assert {o.key_or_group: o.value() for o in parsed} == {
        "hydra.job.env_set.SWEEP_OPTUNA_STORAGE": "sqlite:////tmp/a b/optuna.db",
        "hydra.job.env_set.SWEEP_OPTUNA_STUDY": "2026-01-01_10-00-00",
        "hydra.job.env_set.SWEEP_OPTUNA_TRIAL": "7",
    }


def use_store(tmp_path) -> None:
    """The test's own store and experiment: the fluent API's active experiment may be another
    test's, set earlier in the same worker."""
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    mlflow.set_experiment("trials")


def fit_as_trial(tmp_path, pruner, epochs: int = 4):
    """A short fit of the linear model as trial 1 of a study whose trial 0 scored 1.0 every epoch;
    returns the callback and the run."""
    import pytorch_lightning as pl
    import torch

    from pipeline.config.compose import as_dict, compose, validate
    from pipeline.data.datamodule import TensorBatches
    from pipeline.model.classifier import DigitClassifier

    study = optuna.create_study(direction="maximize", storage=pruning.study_storage(f"sqlite:///{tmp_path}/o.db"))
    best = study.ask()
    for epoch in range(epochs):
        best.report(1.0, epoch)
    study.tell(best, 1.0)
    study.ask()  # trial 1, asked by "the sweeper"
    job_study = optuna.load_study(study_name=study.study_name, storage=study._storage, pruner=pruner)  # as sweep_trial
    trial = pruning.running_trial(job_study, 1)
    callback = pruning.ReportToTrial(trial, pruner)
    cfg = validate(compose([]))
    module = DigitClassifier(model=as_dict(cfg.model), optim=as_dict(cfg.optim), loss=cfg.fit.loss.value)
    x, y = torch.rand(64, 784), torch.randint(0, 2, (64,)).float()
    trainer = pl.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        callbacks=[callback],
    )
    use_store(tmp_path)
    with mlflow.start_run() as run:
        trainer.fit(module, TensorBatches(x, y, 32, False, 0), TensorBatches(x, y, 64, False, 0))
        return callback, trainer, study, run


def test_a_trial_reports_every_epoch_and_stops_when_its_pruner_says_so(tmp_path):
    pruner = optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=1)
    callback, trainer, study, run = fit_as_trial(tmp_path, pruner)
    assert trainer.current_epoch == 2  # epochs 0 and 1 ran: warm-up, then below the median (1.0): stopped
    assert list(study.trials[1].intermediate_values) == [0, 1]
    with (
        pytest.raises(
            TrialPruned, match=r"Optuna trial 1 pruned after epoch 2 of 4 \(val_acc [\d.]+\) by MedianPruner"
        ),
        mlflow.start_run(run_id=run.info.run_id),
    ):
        callback.raise_if_pruned(4)
    tags = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").get_run(run.info.run_id).data.tags
    assert tags[pruning.TRIAL_TAG] == "1" and tags[pruning.PRUNED_TAG].startswith("after epoch 2 of 4")


def test_without_a_pruner_a_trial_runs_to_its_end_and_reports_nothing(tmp_path):
    callback, trainer, study, _ = fit_as_trial(tmp_path, None, epochs=2)
    assert trainer.current_epoch == 2 and study.trials[1].intermediate_values == {}
    callback.raise_if_pruned(2)  # not pruned: nothing raised


def test_a_pruned_run_ends_killed_with_its_reason(tmp_path):
    use_store(tmp_path)
    with pytest.raises(TrialPruned), mlflow.start_run() as run, lifecycle.signals_end_the_run(run.info.run_id):
        raise TrialPruned("Optuna trial 3 pruned after epoch 2 of 8")
    ended = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").get_run(run.info.run_id)
    assert ended.info.status == "KILLED"
    assert ended.data.tags[lifecycle.END_REASON_TAG] == "TrialPruned: Optuna trial 3 pruned after epoch 2 of 8"


@pytest.mark.slow
@pytest.mark.parametrize(
    "launcher",
    [[], ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "hydra.sweeper.n_jobs=2"]],
    ids=["basic", "joblib"],
)
def test_an_optuna_search_prunes_trials_whose_runs_show_it(tmp_path, launcher):
    """Trials with a learning rate 10^5 times too small fall behind the others from the first epoch."""
    normalized = synthetic_normalized(tmp_path)
    multirun(
        tmp_path,
        "hparams_search=linear_optuna",
        "hydra.sweeper.n_trials=6",
        "optim.lr=choice(1.0, 0.00001)",
        "hydra/sweeper/pruner=median",
        "hydra.sweeper.pruner.n_startup_trials=1",
        "hydra.sweeper.pruner.n_warmup_steps=0",
        "fit.epochs=4",
        *launcher,
        *common_overrides(tmp_path, normalized, "search"),
    )
    results = OmegaConf.load(tmp_path / "search/optimization_results.yaml")
    assert results.n_trials == 6 and results.n_pruned >= 1 and results.best_params["optim.lr"] == 1.0
    study = optuna.load_study(study_name="search", storage=f"sqlite:///{tmp_path}/search/optuna.db")
    pruned_trials = {t.number for t in study.trials if t.state == optuna.trial.TrialState.PRUNED}
    assert len(pruned_trials) == results.n_pruned

    published = json.loads((tmp_path / "search" / SWEEP_FILE).read_text())
    client = MlflowClient(published["tracking_uri"])
    parent = client.get_run(published["parent_run_id"])
    children = client.search_runs([published["experiment_id"]], f"tags.`{PARENT_TAG}` = '{parent.info.run_id}'")
    assert len(children) == 6
    pruned = [run for run in children if pruning.PRUNED_TAG in run.data.tags]
    assert {int(run.data.tags[pruning.TRIAL_TAG]) for run in pruned} == pruned_trials
    for run in pruned:
        assert run.info.status == "KILLED" and run.data.params["optim.lr"] == "1e-05"
        assert run.data.tags[lifecycle.END_REASON_TAG].startswith("TrialPruned: Optuna trial")
        epochs = len(client.get_metric_history(run.info.run_id, "val_acc"))
        assert 1 <= epochs < 4  # the epochs it ran, and no more
        assert "final_val_acc" not in run.data.metrics and "model_uri" not in run.data.tags  # never registered
    assert parent.data.tags["best_run_id"] not in {run.info.run_id for run in pruned}
