"""Every `python -m pipeline.*` command answers --help with its usage and refuses bad input with one line."""

import gc
import importlib
import subprocess
import sys
import weakref

import pytest

from pipeline.config.cli import long_lived_imports, run_command
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


class Node:
    pass


def test_imports_run_without_collection_then_survivors_are_frozen_and_garbage_is_freed():
    assert gc.isenabled()
    frozen_before = gc.get_freeze_count()
    with long_lived_imports():
        assert not gc.isenabled()  # no collections while the heavy modules load
        garbage = Node()
        garbage.self = garbage  # a reference cycle: only the cyclic collector frees it
        gone = weakref.ref(garbage)
        del garbage
    assert gc.isenabled()
    assert gone() is None  # collected before the freeze, not frozen forever
    assert gc.get_freeze_count() > frozen_before
    gc.unfreeze()  # leave the test process as it was


def test_nested_blocks_leave_collection_to_the_outer_one():
    with long_lived_imports():
        with long_lived_imports():
            pass
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.unfreeze()


def test_the_training_app_starts_with_its_imports_frozen_and_collection_on():
    out = subprocess.run(
        [sys.executable, "-c", "import gc, pipeline.train; print(gc.isenabled(), gc.get_freeze_count())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out[0] == "True" and int(out[1]) > 100_000  # torch, Lightning, MLflow, Hydra: ~600k objects
