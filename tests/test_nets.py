"""The networks (pipeline/model/nets.py): built from a `model` config, each class checking its own
arguments, a `_target_` that names no class refused in one line; the shapes and parameter counts the
report quotes."""

import os
import subprocess
import sys

import pytest
import torch

from pipeline.config.compose import as_dict, compose, validate
from pipeline.config.errors import ConfigError
from pipeline.model.nets import build
from tests.conftest import REPO

MYNETS = """from torch import nn


class Logistic(nn.Linear):
    def __init__(self):
        super().__init__(784, 1)
"""


def net_for(overrides=()):
    return build(as_dict(validate(compose(list(overrides))).model))


def test_linear_has_784_weights_and_one_bias():
    net = net_for()
    assert net.weight.shape == (1, 784) and net.bias.shape == (1,)
    assert sum(p.numel() for p in net.parameters()) == 785


def test_linear_without_bias():
    net = net_for(["model.bias=false"])
    assert net.bias is None and sum(p.numel() for p in net.parameters()) == 784


def test_init_std_draws_from_normal():
    torch.manual_seed(0)
    net = net_for(["model.init_std=1.0"])
    assert 0.9 < float(net.weight.detach().std()) < 1.1  # PyTorch's default would give ~0.02


def test_mlp_forward_shape():
    assert net_for(["model=mlp", "model.hidden=16"])(torch.rand(5, 784)).shape == (5, 1)


def test_cnn_has_two_conv_layers_a_linear_head_and_6369_parameters():
    net = net_for(["model=cnn"])
    sizes = {name: p.numel() for name, p in net.named_parameters()}
    assert sizes == {
        "features.0.weight": 16 * 9,
        "features.0.bias": 16,
        "features.3.weight": 32 * 16 * 9,
        "features.3.bias": 32,
        "head.weight": 32 * 7 * 7,
        "head.bias": 1,
    }
    assert sum(sizes.values()) == 6369


def test_a_value_for_an_argument_the_network_does_not_take_is_refused():
    with pytest.raises(ConfigError, match="model.hidden=16: model linear .* takes no 'hidden'"):
        net_for(["+model.hidden=16"])


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["model=mlp", "model.hidden=0"], "model.hidden=0: expected an integer >= 1"),
        (["model=cnn", "model.channels=0"], "model.channels=0: expected an integer >= 1"),
        (["model.init_std=-1"], "model.init_std=-1: expected null or a number > 0"),
        (["model=mlp", "model.hidden=wide"], "model.hidden='wide': expected an integer >= 1"),
        (["model=mlp", "~model.hidden"], "model.hidden: missing; model mlp (pipeline.model.nets.MLP) needs it"),
        (
            ["model._target_=pipeline.model.nets.Nothing"],
            "model._target_=pipeline.model.nets.Nothing: no class Nothing in module pipeline.model.nets",
        ),
    ],
)
def test_a_bad_argument_is_refused_naming_the_key(overrides, message):
    with pytest.raises(ConfigError) as refused:
        net_for(overrides)
    assert str(refused.value).startswith(message)


def test_a_network_of_a_model_logged_before_the_move_is_built_from_its_new_home():
    """Logged models keep their config, which named pipeline.nets.* with every argument (null where unused)."""
    old = {"_target_": "pipeline.nets.Linear", "name": "linear", "bias": True, "init_std": None, "hidden": None}
    assert type(build(old)).__module__ == "pipeline.model.nets"


def test_the_cnn_width_is_its_first_layers_channels():
    net = net_for(["model=cnn", "model.channels=8"])
    assert net.features[0].out_channels == 8 and net.features[3].out_channels == 16
    assert net(torch.rand(2, 784)).shape == (2, 1)


@pytest.fixture
def mynets(tmp_path, monkeypatch):
    """A user's own networks on the path: mynets.py (Logistic, no Logistic3), and two modules that
    fail to import: brokennets.py (a module that is not there), circularnets.py (a name from itself)."""
    code = tmp_path / "code"
    code.mkdir()
    (code / "mynets.py").write_text(MYNETS)
    (code / "brokennets.py").write_text("import nosuchdependency\n")
    (code / "circularnets.py").write_text("from circularnets import Net\n")
    monkeypatch.syspath_prepend(code)
    yield code
    sys.modules.pop("mynets", None)


MISSING = [
    ("mynets.Logistic3", "no class Logistic3 in module mynets"),
    ("nosuchmodule.Net", "no module named nosuchmodule"),
]


@pytest.mark.parametrize(
    "target, message",
    [
        *MISSING,
        ("mynets.nosuchsubmodule.Net", "no module named mynets.nosuchsubmodule"),
        ("brokennets.Net", "importing module brokennets failed: No module named 'nosuchdependency'"),
        ("Logistic3", "expected a class as module.Class"),
    ],
)
def test_a_target_that_names_no_class_is_refused_in_one_line(mynets, target, message):
    with pytest.raises(ConfigError) as refused:
        build({"_target_": target, "name": "mine"})
    assert str(refused.value) == f"model._target_={target}: {message}"


def test_a_module_that_fails_on_a_name_of_its_own_is_not_called_missing(mynets):
    with pytest.raises(ConfigError) as refused:
        build({"_target_": "circularnets.Net", "name": "mine"})
    assert str(refused.value).startswith(
        "model._target_=circularnets.Net: importing module circularnets failed: cannot import name 'Net'"
    )


def test_a_class_of_ones_own_module_is_built(mynets):
    assert type(build({"_target_": "mynets.Logistic", "name": "mine"})).__name__ == "Logistic"


@pytest.mark.slow
@pytest.mark.parametrize("target, message", MISSING)
def test_the_real_command_refuses_a_missing_class_in_one_line_leaving_nothing(
    mynets, normalized, tmp_path, target, message
):
    """Not Hydra's ERROR log line and its multi-line text: one line, exit 1, no run directory, no store."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline.train",
            f"model._target_={target}",
            "fit.epochs=1",
            f"paths.normalized={normalized.paths.normalized}",
            f"tracking.uri={normalized.tracking.uri}",
            f"hydra.run.dir={tmp_path}/run",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(mynets), str(REPO)])},
    )
    assert (done.returncode, done.stderr, done.stdout) == (1, f"error: model._target_={target}: {message}\n", "")
    assert not (tmp_path / "run").exists() and not (tmp_path / "mlflow.db").exists()
