"""The house by role (docs/design.md): pipeline/ holds only the commands a user types; every other
module lives in a folder for its role, and a lower folder never imports a higher one. Checked on
every import in the source, the ones inside functions too."""

import ast
from pathlib import Path

from tests.conftest import REPO

PACKAGE = REPO / "pipeline"
LAYERS = ["config", "data", "model", "tracking", "launch"]  # lowest first; the commands sit above them all
COMMANDS = {"fetch", "filter", "normalize", "train", "evaluate", "compare", "server", "predict", "report"}


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def resolved(name: str) -> str | None:
    """The project module an import names (`pipeline.data` + `normalized` -> pipeline.data.normalized)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports(module: str) -> set[str]:
    """The project modules `module` imports, anywhere in its source."""
    found = set()
    for node in ast.walk(ast.parse(MODULES[module].read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
        found |= {resolved(name) for name in names if name.startswith("pipeline.")}
    return found - {None, module}


def third_party(module: str) -> set[str]:
    """The top-level packages outside the project that `module` imports."""
    found = set()
    for node in ast.walk(ast.parse(MODULES[module].read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found - {"pipeline"}


def closure(module: str) -> set[str]:
    seen, todo = set(), [module]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += imports(name)
    return seen


def place(module: str) -> tuple[int, str]:
    """(layer, the command a module belongs to, or '')."""
    part = module.split(".")[1] if "." in module else ""
    if part in LAYERS:
        return LAYERS.index(part), ""
    return len(LAYERS), part


def test_the_top_level_holds_only_the_commands():
    top = {path.stem for path in PACKAGE.glob("*.py")}
    folders = {path.name for path in PACKAGE.iterdir() if (path / "__init__.py").is_file()}
    assert top == {"__init__", "fetch", "filter", "normalize", "train", "evaluate", "compare"}
    assert folders == {"predict", "report", "server", *LAYERS}
    assert top - {"__init__"} | (folders - set(LAYERS)) == COMMANDS


def test_a_lower_folder_never_imports_a_higher_one_nor_a_command_another():
    upward = []
    for module in MODULES:
        layer, command = place(module)
        for imported in imports(module):
            imported_layer, imported_command = place(imported)
            if imported_layer > layer or (imported_command and imported_command != command):
                upward.append(f"{module} -> {imported}")
    assert upward == []


def test_no_import_cycle():
    cycles, done = [], set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            cycles.append(" -> ".join(path[path.index(module) :] + [module]))
            return
        if module in done:
            return
        for imported in sorted(imports(module)):
            visit(imported, [*path, module])
        done.add(module)

    for module in sorted(MODULES):
        visit(module, [])
    assert cycles == []


def test_the_configuration_imports_nothing_else_of_the_pipeline():
    assert {m for name in MODULES if place(name)[0] == 0 for m in imports(name) if place(m)[0] != 0} == set()


def test_training_never_imports_the_report():
    assert not any(module.startswith("pipeline.report") for module in closure("pipeline.train"))


def test_operations_live_apart_no_other_module_imports_the_server_folder():
    """The tracking server, its accounts and their administration (pipeline/server/) are a room of their own:
    editing them reruns no stage and touches no training."""
    outside = [m for m in MODULES if not m.startswith("pipeline.server")]
    assert {m for m in outside for imported in imports(m) if imported.startswith("pipeline.server")} == set()


def test_the_data_and_the_networks_know_no_mlflow():
    for module in MODULES:
        if module.startswith(("pipeline.data", "pipeline.model")):
            assert "mlflow" not in set().union(*(third_party(m) for m in closure(module))), module


def test_every_exception_class_lives_in_config_errors():
    errors = MODULES["pipeline.config.errors"]
    exceptions = {node.name for node in ast.walk(ast.parse(errors.read_text())) if isinstance(node, ast.ClassDef)}
    elsewhere = []
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and path != errors:
                bases = {getattr(base, "id", getattr(base, "attr", "")) for base in node.bases}
                if bases & (exceptions | {"Exception", "BaseException", "KeyboardInterrupt", "ValueError"}):
                    elsewhere.append(f"{module}.{node.name}")
    assert elsewhere == []
