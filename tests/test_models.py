"""Adding a model is a network class (or an existing one) and one YAML file (pipeline/config/compose.py):
the YAML, in a config directory of its own, trains through the real command with its own recipe,
and the learner sweep and the report pick up every model of conf/model/."""

import subprocess
import sys

from hydra.core.override_parser.overrides_parser import OverridesParser
from mlflow import MlflowClient
from omegaconf import OmegaConf

from pipeline.config.compose import CONF_DIR
from pipeline.config.models import model_names
from tests.conftest import REPO

NEW_MODEL = """# @package _global_
# A model that is not in conf/model/: a network class of its own, with an argument the schema never heard of.
defaults:
  - override /optim: adam

model:
  _target_: tests.extra_nets.TwoLayers
  name: two_layers
  width: 8
optim:
  lr: 0.01
fit:
  epochs: 5
  batch_size: 32
"""

# An optimizer that is not in conf/optim/: one YAML file, its class named in `_target_`.
NEW_OPTIMIZER = """_target_: torch.optim.Adagrad
_partial_: true
lr: 0.05
lr_decay: 0.001
"""


def train_with_more_conf(normalized, tmp_path, run_dir: str, overrides: list[str]) -> None:
    """`python -m pipeline.train` with tmp_path/more_conf as an extra config dir, on the generated data; exit 0."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline.train",
            "--config-dir",
            str(tmp_path / "more_conf"),
            *overrides,
            f"paths.normalized={normalized.paths.normalized}",
            f"tracking.uri={normalized.tracking.uri}",
            f"hydra.run.dir={tmp_path}/{run_dir}",
            "trainer.accelerator=cpu",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr[-3000:]


def test_a_model_added_as_one_yaml_trains_with_its_own_recipe(normalized, tmp_path):
    (tmp_path / "more_conf/model").mkdir(parents=True)
    (tmp_path / "more_conf/model/two_layers.yaml").write_text(NEW_MODEL)
    train_with_more_conf(normalized, tmp_path, "run", ["model=two_layers"])
    [run] = MlflowClient(normalized.tracking.uri).search_runs(["0", "1"], max_results=5)
    params = run.data.params
    assert params["model.name"] == "two_layers" and params["model.width"] == "8"
    assert (params["optim._target_"], params["optim.lr"], params["fit.epochs"]) == ("torch.optim.Adam", "0.01", "5")
    assert run.data.metrics["n_parameters"] == 784 * 8 + 8 + 8 + 1 and run.data.metrics["final_val_acc"] > 0.9
    assert "collapsed" not in run.data.tags
    assert (tmp_path / "run/model.ckpt").is_file()


def test_an_optimizer_added_as_one_yaml_trains_the_model(normalized, tmp_path):
    """Adagrad is no file of conf/optim/: a YAML of its own, and the model trains with it (rmsprop is a real one)."""
    (tmp_path / "more_conf/optim").mkdir(parents=True)
    (tmp_path / "more_conf/optim/adagrad.yaml").write_text(NEW_OPTIMIZER)
    for optimizer, lr in (("adagrad", "0.05"), ("rmsprop", "0.001")):
        lr_override = ["optim.lr=0.001"] if optimizer == "rmsprop" else []
        train_with_more_conf(normalized, tmp_path, optimizer, [f"optim={optimizer}", *lr_override, "fit.epochs=2"])
        [run] = MlflowClient(normalized.tracking.uri).search_runs(
            ["0", "1"], f"params.optim.lr = '{lr}'", max_results=5
        )
        assert run.data.params["optim._target_"] == f"torch.optim.{'Adagrad' if optimizer == 'adagrad' else 'RMSprop'}"
        assert "fit.epochs" in run.data.params and "optim.epochs" not in run.data.params
        assert run.data.metrics["final_val_acc"] > 0.9 and (tmp_path / optimizer / "model.ckpt").is_file()
    assert run.data.params["optim.alpha"] == "0.99"


def test_the_learner_sweep_takes_every_model_of_conf_model():
    [sweep] = OverridesParser.create().parse_overrides(
        [f"model={OmegaConf.load(CONF_DIR / 'experiment/learner.yaml').hydra.sweeper.params.model}"]
    )
    assert sweep.value().filter(model_names()) == model_names()
    assert model_names() == sorted(path.stem for path in (CONF_DIR / "model").glob("*.yaml"))
