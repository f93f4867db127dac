"""Every third-party package the code imports is declared in pyproject.toml: the runtime code's in
`dependencies`, the tests' there or in the `test` extra. A package that only arrives as another's
dependency can vanish or change with that package's next release."""

import ast
import importlib.metadata
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import REPO

PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
RUNTIME = {canonicalize_name(Requirement(line).name) for line in PROJECT["dependencies"]}
TEST = RUNTIME | {canonicalize_name(Requirement(line).name) for line in PROJECT["optional-dependencies"]["test"]}
FIRST_PARTY = {path.name for path in REPO.iterdir() if (path / "__init__.py").is_file()} | {"hydra_plugins"}
DISTRIBUTIONS = importlib.metadata.packages_distributions()  # top-level import name -> distributions


def imported(path: Path) -> set[str]:
    """The top-level names of the absolute imports in a module (conditional and local ones included)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def undeclared(path: Path, declared: set[str]) -> list[str]:
    """`import name (distribution)` for each third-party import of `path` that `declared` does not cover."""
    found = []
    for name in sorted(imported(path) - sys.stdlib_module_names - FIRST_PARTY):
        distributions = {canonicalize_name(d) for d in DISTRIBUTIONS.get(name, [])}
        if not distributions & declared:  # one suffices: `mlflow` comes from mlflow, mlflow-skinny and mlflow-tracing
            found.append(f"{name} ({', '.join(sorted(distributions)) or 'not installed'})")
    return found


@pytest.mark.parametrize(
    ("folders", "declared", "where"),
    [
        (("pipeline", "hydra_plugins", "bench"), RUNTIME, "[project] dependencies"),
        (("tests",), TEST, "[project] dependencies or the test extra"),
    ],
)
def test_every_imported_package_is_declared(folders, declared, where):
    modules = [path for folder in folders for path in sorted((REPO / folder).rglob("*.py"))]
    assert modules
    missing = [f"{path.relative_to(REPO)}: {name}" for path in modules for name in undeclared(path, declared)]
    assert not missing, f"imported but not declared in pyproject.toml's {where}:\n" + "\n".join(missing)


def test_an_undeclared_import_is_named(tmp_path):
    module = tmp_path / "uses_pandas.py"
    module.write_text("import os\nfrom pipeline import config\n\ndef f():\n    import pandas.api\n")
    assert imported(module) == {"os", "pipeline", "pandas"}
    assert undeclared(module, RUNTIME - {"pandas"}) == ["pandas (pandas)"]
    assert undeclared(module, RUNTIME) == []
