import pytest
from omegaconf import OmegaConf

from pipeline.config.compose import compose, load_params, to_flat_dict, validate
from pipeline.config.errors import ConfigError
from tests.conftest import REPO


def test_committed_params_yaml_is_conf_composed():
    """params.yaml (what `dvc repro` reads) must not drift from conf/ (the source of truth)."""
    composed = OmegaConf.to_container(compose(), resolve=True)
    assert OmegaConf.to_container(OmegaConf.load(REPO / "params.yaml")) == composed, "run `make params`"


def test_defaults_are_the_fastbook_experiment():
    cfg = validate(compose())
    assert cfg.data.digits == [3, 7]
    assert cfg.model["name"] == "linear" and cfg.model["bias"]
    assert (cfg.fit.batch_size, cfg.optim["lr"]) == (256, 1.0)
    assert cfg.trainer.accelerator == "auto"


def test_overrides_compose():
    cfg = validate(compose(["optim.lr=0.5", "model=mlp", "data.digits=[1,8]", "optim.weight_decay=1"]))
    assert cfg.optim["lr"] == 0.5 and cfg.optim["weight_decay"] == 1.0  # a float, as torch.optim takes it
    assert cfg.model["name"] == "mlp" and cfg.data.digits == [1, 8]


@pytest.mark.parametrize(
    "override, message",
    [
        ("optim.lr=fast", "optim.lr=fast: expected a number > 0"),
        ("optim.momentum=-0.5", "optim.momentum=-0.5: expected a number >= 0"),
        ("optim._partial_=false", "optim._partial_=False: expected true"),
        ("optim._target_=null", "optim._target_: expected a string"),
        ("optim.lr=0", "optim.lr=0.0: expected a number > 0"),
        ("fit.batch_size=0", "fit.batch_size=0: expected an integer >= 1"),
        ("fit.epochs=0", "fit.epochs=0: expected an integer >= 1"),
        ("data.digits=[3,3]", "expected two distinct digits"),
        ("data.digits=[3,10]", "expected two distinct digits"),
        ("data.digits=[3]", "expected two distinct digits"),
    ],
)
def test_bad_values_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        validate(compose(override.split()))


def test_load_params_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml: not found"):
        load_params(tmp_path / "nope.yaml")


def test_flat_dict_uses_enum_names():
    flat = to_flat_dict(validate(compose()))
    assert flat["model.name"] == "linear" and flat["optim.lr"] == 1.0 and flat["data.digits"] == [3, 7]


def test_config_main_prints_composed_yaml(capsys):
    from pipeline.config.__main__ import main

    main(["fit.epochs=5"])
    assert OmegaConf.create(capsys.readouterr().out).fit.epochs == 5


def test_relative_paths_mean_the_project_directory_from_any_subdirectory(tmp_path, monkeypatch):
    (tmp_path / "project/plots").mkdir(parents=True)
    (tmp_path / "project/dvc.yaml").write_text("stages: {}\n")
    monkeypatch.chdir(tmp_path / "project/plots")
    cfg = validate(compose([f"paths.raw={tmp_path}/elsewhere/raw", "tracking.run_file=run.json"]))
    assert cfg.paths.normalized == f"{tmp_path}/project/data/normalized"
    assert cfg.paths.metrics == f"{tmp_path}/project/metrics.json"
    assert cfg.paths.raw == f"{tmp_path}/elsewhere/raw"  # absolute: as given
    assert cfg.tracking.run_file == f"{tmp_path}/project/run.json"
    # params.yaml keeps them relative: dvc.yaml interpolates them, and dvc.lock records them.
    assert OmegaConf.load(REPO / "params.yaml").paths.normalized == "data/normalized"


def test_conf_composes_inside_a_running_hydra_app_and_leaves_it_as_it_was():
    """A training's collapse warning composes conf/ (the model's recipe) while its Hydra app runs."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from pipeline.config.compose import CONF_DIR, compose

    with initialize_config_dir(str(CONF_DIR), job_name="running", version_base="1.3"):
        assert compose(["model=mlp"]).model.name == "mlp"
        assert GlobalHydra.instance().is_initialized()
        assert GlobalHydra.instance().hydra.config_loader is not None
    assert not GlobalHydra.instance().is_initialized()
    assert compose().model.name == "linear"
