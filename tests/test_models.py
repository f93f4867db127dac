"""Adding a model is a network class (or an existing one) and one YAML file (pipeline/config/compose.py):
the YAML, in a config directory of its own, trains through the real command with its own recipe,
and the learner sweep and the report pick up every model of conf/model/."""

import subprocess
import sys

from hydra.core.override_parser.overrides_parser import OverridesParser
from mlflow import MlflowClient
from omegaconf import OmegaConf

from pipeline.config.compose import CONF_DIR, model_names
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
  epochs: 5
  batch_size: 32
"""


def test_a_model_added_as_one_yaml_trains_with_its_own_recipe(normalized, tmp_path):
    (tmp_path / "more_conf/model").mkdir(parents=True)
    (tmp_path / "more_conf/model/two_layers.yaml").write_text(NEW_MODEL)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline.train",
            "--config-dir",
            str(tmp_path / "more_conf"),
            "model=two_layers",
            f"paths.normalized={normalized.paths.normalized}",
            f"tracking.uri={normalized.tracking.uri}",
            f"hydra.run.dir={tmp_path}/run",
            "trainer.accelerator=cpu",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    [run] = MlflowClient(normalized.tracking.uri).search_runs(["0", "1"], max_results=5)
    params = run.data.params
    assert params["model.name"] == "two_layers" and params["model.width"] == "8"
    assert (params["optim.name"], params["optim.lr"], params["optim.epochs"]) == ("adam", "0.01", "5")
    assert run.data.metrics["n_parameters"] == 784 * 8 + 8 + 8 + 1 and run.data.metrics["final_val_acc"] > 0.9
    assert "collapsed" not in run.data.tags
    assert (tmp_path / "run/model.ckpt").is_file()


def test_the_learner_sweep_takes_every_model_of_conf_model():
    [sweep] = OverridesParser.create().parse_overrides(
        [f"model={OmegaConf.load(CONF_DIR / 'experiment/learner.yaml').hydra.sweeper.params.model}"]
    )
    assert sweep.value().filter(model_names()) == model_names()
    assert model_names() == sorted(path.stem for path in (CONF_DIR / "model").glob("*.yaml"))
