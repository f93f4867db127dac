"""Run names chosen by the project: after the DVC experiment or what differs from conf/ under
DVC, after the overrides (never tracking.*) otherwise."""

import pytest
from hydra import compose as compose_in_app
from hydra import initialize_config_dir

from pipeline.config.compose import CONF_DIR, compose, validate
from pipeline.tracking.run_names import run_name, untracked

URI = "tracking.uri=sqlite:////tmp/private/mlflow.db"


@pytest.fixture
def under_dvc(monkeypatch):
    """The environment DVC gives a stage's command (`dvc repro`), inside the running Hydra app."""
    monkeypatch.setenv("DVC_STAGE", "train")
    monkeypatch.setenv("DVC_ROOT", "/repo")
    monkeypatch.delenv("DVC_EXP_NAME", raising=False)
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        yield


def config(*overrides: str):
    return validate(compose(list(overrides)))


def params(*overrides: str):
    """params.yaml as `dvc exp run -S ...` composes it, read by the running app."""
    return validate(compose_in_app("config", list(overrides)))


def test_a_dvc_repro_run_is_named_after_the_experiment_dvc_names(under_dvc, monkeypatch):
    monkeypatch.setenv("DVC_EXP_NAME", "pair49")
    assert run_name(params("data.digits=[4,9]"), []) == "pair49"


def test_a_dvc_repro_run_without_experiment_is_named_after_what_differs_from_conf(under_dvc):
    assert run_name(params(), []) == "dvc-repro"
    assert run_name(params("data.digits=[4,9]", URI), []) == "dvc-repro digits=4,9"
    assert run_name(params("optim.lr=0.5", "model.bias=false"), []) == "dvc-repro bias=False lr=0.5"


def test_a_direct_run_is_named_after_its_overrides_without_tracking(monkeypatch):
    monkeypatch.delenv("DVC_STAGE", raising=False)
    overrides = ["optim.lr=0.5", URI, "model.bias=false"]
    assert run_name(config(*overrides), overrides) == "model.bias=false,optim.lr=0.5"
    assert run_name(config(URI), [URI]) == "defaults"  # never MLflow's seeded random name
    named = ["tracking.run_name=mine", "optim.lr=0.5"]
    assert run_name(config(*named), named) == "mine"


def test_untracked_drops_every_tracking_override():
    assert untracked(["seed=1,2", URI, "+tracking.extra=1", "optim.lr=0.5"]) == ["seed=1,2", "optim.lr=0.5"]
