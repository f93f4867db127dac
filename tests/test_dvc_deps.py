"""dvc.yaml: each stage depends on every project module its code imports (`dvc repro` reruns it
when any of them changes), found by following the imports in the source."""

import ast
import json
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO
from tests.test_pipeline_e2e import project_copy, run


def module_path(name: str):
    """pipeline.x.y -> pipeline/x/y.py or pipeline/x/y/__init__.py (None: not a project module)."""
    base = REPO.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def imported_modules(path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}  # `from pipeline import idx`
    return {name for name in names if name.split(".")[0] == "pipeline"}


def only_a_docstring(path) -> bool:
    """A package's __init__.py that holds nothing but its docstring: no code a stage could depend on."""
    body = ast.parse(path.read_text()).body
    return len(body) == 1 and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)


def closure(module: str) -> set[str]:
    """Files of the project that `module` imports, directly or through other project modules
    (a package's __init__.py too: importing pipeline.tracking.store runs it)."""
    seen, todo = set(), [module]
    while todo:
        name = todo.pop()
        parts = name.split(".")
        for i in range(1, len(parts) + 1):
            path = module_path(".".join(parts[:i]))
            if path is not None and path not in seen:
                seen.add(path)
                todo += imported_modules(path)
    return {str(path.relative_to(REPO)) for path in seen}


def stage_module(cmd: str) -> str:
    """The module a stage's command runs: `[VAR=value ...] python -m pipeline.<stage> ...`."""
    words = cmd.split()
    return words[words.index("-m") + 1]


def test_every_stage_depends_on_every_module_it_imports():
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    missing = {}
    for name, stage in stages.items():
        module = stage_module(stage["cmd"])
        needed = {path for path in closure(module) if not only_a_docstring(REPO / path)}
        absent = needed - set(stage["deps"])
        if absent:
            missing[name] = sorted(absent)
    assert missing == {}, "add these to the stages' deps in dvc.yaml"


def test_no_stage_depends_on_a_module_it_does_not_import():
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    extra = {}
    for name, stage in stages.items():
        listed = {dep for dep in stage["deps"] if dep.startswith("pipeline/") and dep.endswith(".py")}
        stale = listed - closure(stage_module(stage["cmd"]))
        if stale:
            extra[name] = sorted(stale)
    assert extra == {}, "remove these from the stages' deps in dvc.yaml: a change to them reruns nothing it uses"


def test_the_closure_follows_imports_through_other_modules():
    assert {
        "pipeline/train.py",
        "pipeline/model/classifier.py",
        "pipeline/model/nets.py",
        "pipeline/config/compose.py",
        "pipeline/tracking/store.py",
    } <= closure("pipeline.train")
    assert "pipeline/data/idx.py" in closure("pipeline.filter") and "torch" not in str(closure("pipeline.filter"))


def stages_with_changed_code(repo: Path) -> set[str]:
    """The stages that `dvc status` finds a changed project module among the dependencies of."""
    status = json.loads(run(repo, str(Path(sys.executable).parent / "dvc"), "status", "--json").splitlines()[-1])
    return {
        stage.split(":")[-1]
        for stage, changes in status.items()
        for change in changes
        if isinstance(change, dict) and any(path.startswith("pipeline/") for path in change.get("changed deps", {}))
    }


@pytest.mark.slow
def test_editing_the_server_or_its_accounts_reruns_no_stage(tmp_path):
    repo = project_copy(tmp_path / "repo")
    before = stages_with_changed_code(repo)  # none in a clean checkout; whatever a work in progress changed
    for module in sorted((repo / "pipeline/server").glob("*.py")):
        module.write_text(module.read_text() + "# an edit of the operations room\n")
    assert stages_with_changed_code(repo) == before
    nets = repo / "pipeline/model/nets.py"
    nets.write_text(nets.read_text() + "# an edit of the networks\n")
    assert stages_with_changed_code(repo) - before == {"train", "evaluate"} - before
