"""The Optuna sweeper plugin: search spaces from Hydra's sweep syntax, and the ask/tell loop
around a launcher (here a stand-in that scores overrides without training)."""

import math

import optuna
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from hydra_plugins.threes_sevens_optuna.optuna_sweeper import OptunaSweeper
from hydra_plugins.threes_sevens_optuna.search_space import search_space
from pipeline.config.compose import CONF_DIR, validate
from pipeline.config.compose import compose as pipeline_compose
from pipeline.config.errors import TrialPruned


def test_search_space_from_hydra_sweep_syntax():
    params = {
        "optim.lr": "tag(log, interval(0.1, 10.0))",
        "fit.batch_size": "choice(128, 256)",
        "optim.momentum": "interval(0.0, 0.9)",
    }
    space, fixed = search_space(
        params,
        [
            "fit.epochs=5",
            "optim.momentum=0.0,0.5",
            "model.hidden=tag(int, interval(8, 64))",
            "optim.weight_decay=range(0, 3)",
        ],
    )
    assert space["optim.lr"] == FloatDistribution(0.1, 10.0, log=True)
    assert space["fit.batch_size"] == CategoricalDistribution([128, 256])
    assert space["optim.momentum"] == CategoricalDistribution([0.0, 0.5])  # the command line wins
    assert space["model.hidden"] == IntDistribution(8, 64)
    assert space["optim.weight_decay"] == CategoricalDistribution([0, 1, 2])
    assert fixed == ["fit.epochs=5"]


class ScoringLauncher:
    """Scores each job from its overrides: -(log10 lr)^2, best at lr = 1; jobs with fail=True fail."""

    def __init__(self):
        self.calls = []

    def launch(self, batch, initial_job_idx):
        self.calls.append((len(batch), initial_job_idx))
        returns = []
        for overrides in batch:
            values = dict(override.split("=") for override in overrides)
            assert values["fit.epochs"] == "3"  # fixed overrides reach every trial
            if values["fail"] == "True":
                returns.append(JobReturn(status=JobStatus.FAILED, _return_value=RuntimeError("diverged")))
            else:
                returns.append(
                    JobReturn(status=JobStatus.COMPLETED, _return_value=-(math.log10(float(values["lr"])) ** 2))
                )
        return returns


def make_sweeper(tmp_path, n_trials, params):
    sweeper = OptunaSweeper(
        direction="maximize", n_trials=n_trials, n_jobs=3, seed=0, storage=None, study_name=None, params=params
    )
    sweeper.config = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}})
    sweeper.launcher = ScoringLauncher()
    sweeper.validate_batch_is_legal = lambda batch: None  # needs Hydra's config loader; the launcher checks here
    return sweeper


def test_sweep_asks_launches_in_batches_and_tells(tmp_path):
    sweeper = make_sweeper(tmp_path, 14, {"lr": "tag(log, interval(0.01, 100.0))", "fail": "choice(true, false)"})
    best = sweeper.sweep(["fit.epochs=3"])
    assert sweeper.launcher.calls == [(3, 0), (3, 3), (3, 6), (3, 9), (2, 12)]
    results = OmegaConf.load(tmp_path / "optimization_results.yaml")
    assert results.n_trials == 14 and 0 < results.n_complete < 14  # failed trials are recorded as failed
    assert results.best_value == best.value == pytest.approx(-(math.log10(best.params["lr"]) ** 2))
    assert best.params["fail"] is False
    assert best.value > -0.5  # TPE got within a factor ~5 of lr = 1 in 14 trials


def test_sweep_with_every_trial_failing_raises(tmp_path):
    sweeper = make_sweeper(tmp_path, 3, {"lr": "interval(0.1, 1.0)", "fail": "choice(true)"})
    with pytest.raises(RuntimeError, match="all 3 trials failed"):
        sweeper.sweep(["fit.epochs=3"])


def test_conf_wires_the_sweep_callback_and_the_optuna_search():
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        plain = compose("config", return_hydra_config=True)
        search = compose("config", overrides=["hparams_search=linear_optuna"], return_hydra_config=True)
    assert plain.hydra.callbacks.mlflow_sweep._target_ == "pipeline.launch.sweep.MlflowSweep"
    assert plain.hydra.sweeper._target_.endswith("GridSweeper")
    assert search.hydra.sweeper._target_ == "hydra_plugins.threes_sevens_optuna.optuna_sweeper.OptunaSweeper"
    assert search.hydra.sweeper.direction == "maximize"
    assert set(search.hydra.sweeper.params) == {"optim.lr", "fit.batch_size", "optim.momentum"}
    assert validate(pipeline_compose(["hparams_search=linear_optuna"])) == validate(pipeline_compose())  # only hydra.*


class TieLauncher:
    """Every trial scores the same: the best is a tie between all of them."""

    def launch(self, batch, initial_job_idx):
        return [JobReturn(status=JobStatus.COMPLETED, _return_value=0.9853) for _ in batch]


def test_on_a_tie_the_first_trial_in_trial_order_is_the_best(tmp_path, caplog):
    sweeper = make_sweeper(tmp_path, 6, {"optim.lr": "interval(0.1, 1.0)"})
    sweeper.launcher = TieLauncher()
    with caplog.at_level("INFO"):
        best = sweeper.sweep([])
    assert best.number == 0
    results = OmegaConf.load(tmp_path / "optimization_results.yaml")
    assert results.best_params == best.params
    assert f"Best trial 0: value 0.9853 with {best.params}" in caplog.text


def test_a_failed_trial_is_logged_with_its_exception(tmp_path, caplog):
    sweeper = make_sweeper(tmp_path, 3, {"lr": "choice(1.0)", "fail": "choice(true, false)"})
    with caplog.at_level("WARNING"):
        sweeper.sweep(["fit.epochs=3"])
    assert "failed: RuntimeError('diverged')" in caplog.text


class InterruptedLauncher(ScoringLauncher):
    """Scores like ScoringLauncher; the `stop_at`-th batch is interrupted (a sweep's SIGINT)."""

    def __init__(self, stop_at: int | None = None):
        super().__init__()
        self.stop_at = stop_at

    def launch(self, batch, initial_job_idx):
        if len(self.calls) == self.stop_at:
            raise SystemExit(130)
        return super().launch(batch, initial_job_idx)


def test_a_resumed_search_runs_again_the_interrupted_trials_and_only_those_missing(tmp_path):
    params = {"lr": "tag(log, interval(0.01, 100.0))", "fail": "choice(false)"}
    first = make_sweeper(tmp_path, 9, params)
    first.launcher = InterruptedLauncher(stop_at=2)  # two batches of 3 told, the third interrupted
    with pytest.raises(SystemExit):
        first.sweep(["fit.epochs=3"])
    study = optuna.load_study(study_name=tmp_path.name, storage=f"sqlite:///{tmp_path}/optuna.db")
    interrupted = {t.number: t.params for t in study.trials if t.state == TrialState.RUNNING}
    assert len(interrupted) == 3 and len(study.trials) == 9

    resumed = make_sweeper(tmp_path, 10, params)  # and one trial more than the first asked for
    resumed.resume = "latest"
    resumed.sweep(["fit.epochs=3"])
    assert resumed.launcher.calls == [(3, 0), (1, 3)]  # 10 - 6 told before: 4 trials
    study = optuna.load_study(study_name=tmp_path.name, storage=f"sqlite:///{tmp_path}/optuna.db")
    retried = {t.user_attrs["retry_of"]: t.params for t in study.trials if "retry_of" in t.user_attrs}
    assert retried == interrupted  # the interrupted values run again
    assert sum(t.state == TrialState.COMPLETE for t in study.trials) == 10
    results = OmegaConf.load(tmp_path / "optimization_results.yaml")
    assert results.n_trials == 10 == results.n_complete


class PruningLauncher:
    """Every job after the first two stopped by its pruner (the job raises TrialPruned)."""

    def launch(self, batch, initial_job_idx):
        return [
            JobReturn(status=JobStatus.COMPLETED, _return_value=0.9)
            if initial_job_idx + i < 2
            else JobReturn(status=JobStatus.FAILED, _return_value=TrialPruned("Optuna trial pruned after epoch 1"))
            for i, _ in enumerate(batch)
        ]


def test_a_job_its_pruner_stopped_is_told_pruned_without_an_error_line(tmp_path, capsys, caplog):
    sweeper = make_sweeper(tmp_path, 5, {"lr": "interval(0.1, 1.0)"})
    sweeper.launcher = PruningLauncher()
    with caplog.at_level("INFO"):
        sweeper.sweep([])
    study = optuna.load_study(study_name=tmp_path.name, storage=f"sqlite:///{tmp_path}/optuna.db")
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2 + [TrialState.PRUNED] * 3
    assert OmegaConf.load(tmp_path / "optimization_results.yaml").n_pruned == 3
    assert "Optuna trial pruned after epoch 1" in caplog.text
    assert "Error executing job" not in capsys.readouterr().err
