"""Every `python -m pipeline.*` command answers --help with its usage and refuses bad input with one line."""

import importlib

import pytest

from pipeline.config.cli import run_command
from pipeline.config.models import model_names

# python -m name -> the module holding its main
COMMANDS = {
    "pipeline.fetch": "pipeline.fetch",
    "pipeline.filter": "pipeline.filter",
    "pipeline.normalize": "pipeline.normalize",
    "pipeline.evaluate": "pipeline.evaluate",
    "pipeline.config": "pipeline.config.__main__",
    "pipeline.compare": "pipeline.compare",
    "pipeline.report": "pipeline.report.build",
    "pipeline.server": "pipeline.server.cli",
    "pipeline.predict": "pipeline.predict.cli",
    "pipeline.tracking": "pipeline.tracking.__main__",
}


def ended(call) -> int:
    with pytest.raises(SystemExit) as exited:
        call()
    return exited.value.code


@pytest.mark.parametrize("name", COMMANDS)
def test_help_prints_the_usage_and_a_bad_option_is_one_line(name, capsys):
    main = importlib.import_module(COMMANDS[name]).main
    assert ended(lambda: main(["--help"])) == 0
    assert capsys.readouterr().out.startswith(f"usage: python -m {name} ")
    needed = {"pipeline.predict": ["x.png"], "pipeline.tracking": ["mark-orphans"]}.get(name, [])
    assert ended(lambda: run_command(main, [*needed, "--no-such-option"])) == 1
    [err] = capsys.readouterr().err.splitlines()
    assert err == f"error: unrecognized arguments: --no-such-option (see python -m {name} --help)"


def test_config_refuses_a_missing_config_group_option_with_one_line(capsys):
    from pipeline.config.__main__ import main

    assert ended(lambda: run_command(main, ["model=resnet"])) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"error: In 'config': Could not find 'model/resnet'; available: {', '.join(model_names())}"
    ]


def test_a_refused_value_under_dvc_says_how_to_restore_params_yaml(capsys, monkeypatch):
    from pipeline.config.__main__ import main

    monkeypatch.setenv("DVC_STAGE", "train")
    assert ended(lambda: run_command(main, ["optim.lr=0"])) == 1
    assert capsys.readouterr().err.splitlines() == [
        "error: optim.lr=0.0: expected a number > 0 (params.yaml keeps it; `git checkout params.yaml && dvc checkout` "
        "restores the last commit)"
    ]


def test_config_out_writes_the_file_only_when_the_configuration_is_valid(tmp_path, capsys):
    from pipeline.config.__main__ import main

    params = tmp_path / "params.yaml"
    run_command(main, ["--out", str(params), "optim.lr=0.5"])
    written = params.read_text()
    assert "lr: 0.5" in written
    assert ended(lambda: run_command(main, ["--out", str(params), "optim.lr=0"])) == 1
    assert params.read_text() == written and sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]
