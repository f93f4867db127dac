"""Every file, module, test and command the docs name exists.

Scans README.md, docs/*.md, bench/RESULTS.md and pyproject.toml for:
- repository paths under pipeline/, hydra_plugins/, tests/, bench/, conf/, docker/, docs/ (a path
  ending in / is a directory); `tests/x.py::test_name` also needs test_name defined in that file;
- paths of a pipeline subpackage written from inside pipeline/ (`tracking/store.py`);
- test functions named on their own (`test_name`): defined in some tests/test_*.py (not the
  metrics of the split `test`: `test_acc`, `test_loss`, `test_acc_first`, `test_acc_second`; nor a
  file such as `test_predictions.csv`);
- `python -m pipeline.X` / `python -m bench.X`: a module or a package with __main__.py;
- `make X` in backticks, or starting a line of a code block: a target of the Makefile;
- Markdown links to files of the repository, and their #anchors: a heading of the target.
Generated paths (data/, models/, outputs/, mlruns, report/, ...) are outside these patterns. A glob
(`conf/model/*.yaml`) or a placeholder (`<name>`, `{train,valid}`) is skipped; a test name written
as a prefix (`test_a_sqlite_store_*`) must match at least one test.
"""

from __future__ import annotations

import fnmatch
import re
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DOCS = ["README.md", *sorted(p.relative_to(REPO).as_posix() for p in (REPO / "docs").glob("*.md")), "bench/RESULTS.md"]
SCANNED = [*DOCS, "pyproject.toml"]

TOP = "pipeline|hydra_plugins|tests|bench|conf|docker|docs"
SUBPACKAGES = "config|data|model|tracking|launch|predict|report"
# A path: not inside another path, URL or dotted name; its characters include the placeholders'
# and globs' so that those are seen whole (and skipped).
PATH = re.compile(rf"(?<![\w./~$-])((?:{TOP})/[\w./*<>{{}},-]*)(#[\w-]+)?(::[\w\[\]*.,-]+)?")
SUBPATH = re.compile(rf"(?<![\w./~$-])((?:{SUBPACKAGES})/[\w/]*\w\.py)\b")
TEST_NAME = re.compile(r"(?<![\w/:.])(test_\w+)(\*|\.\.\.)?(?!\w|\.[a-z])")  # not a file: test_predictions.csv
MODULE = re.compile(r"python -m ((?:pipeline|bench)(?:\.\w+)*)(?!\.\*)\b")
MAKE = re.compile(r"`make ([a-z][\w-]*)")  # in prose: quoted
MAKE_LINE = re.compile(r"^make ([a-z][\w-]*)", re.MULTILINE)  # in a code block: a command line
FENCED = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"\]\(([^)\s#]*)(#[^)\s]*)?\)")
NOT_IN_GIT = {"docker/.env"}  # made by the user (the passwords: docs/scaling.md)
TEST_SPLIT_METRIC = re.compile(r"test_(acc|loss)(_first|_second)?")  # metrics of the split `test`, not tests


def placeholder(path: str) -> bool:
    return any(c in path for c in "*<>{},")


@cache
def defined_tests(path: Path) -> frozenset[str]:
    return frozenset(re.findall(r"^\s*(?:async )?def (test_\w+)\(", path.read_text(), re.MULTILINE))


@cache
def all_defined_tests() -> frozenset[str]:
    return frozenset().union(*(defined_tests(p) for p in (REPO / "tests").rglob("test_*.py")))


def names_a_test(name: str, defined: frozenset[str]) -> bool:
    """`name` is a defined test, or a prefix (`test_x_...`) or glob (`test_x_*`) of one."""
    if name.endswith("..."):
        return any(test.startswith(name[:-3]) for test in defined)
    return bool(fnmatch.filter(defined, name)) if "*" in name else name in defined


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", lambda m: "_" if m.group() == "_" else "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    text = FENCED.sub("", path.read_text())
    seen: dict[str, int] = {}
    found = set()
    for heading in re.findall(r"^#{1,6} (.+)$", text, re.MULTILINE):
        base = slug(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return frozenset(found)


def check_anchor(target: Path, anchor: str | None, where: str) -> list[str]:
    if not anchor or anchor == "#" or target.suffix != ".md" or not target.is_file():
        return []
    return [] if anchor[1:] in anchors(target) else [f"{where}: no heading for {anchor} in {target.relative_to(REPO)}"]


def stale(doc: str, text: str | None = None) -> list[str]:
    """What `doc` (its text: `text`, else the file's) names that does not exist, one line each."""
    text = (REPO / doc).read_text() if text is None else text
    problems = []
    for match in PATH.finditer(text):
        path, anchor, test = match.group(1).rstrip(".,:;"), match.group(2), match.group(3)
        if placeholder(path) or path in NOT_IN_GIT:
            continue
        target = REPO / path
        if not (target.is_dir() if path.endswith("/") else target.exists()):
            problems.append(f"{doc}: {path}: no such file or directory")
            continue
        problems += check_anchor(target, anchor, doc)
        if test:
            name = re.sub(r"\[.*$", "", test[2:])  # a parametrised id: the function's name
            if not names_a_test(name, defined_tests(target)):
                problems.append(f"{doc}: {path}{test}: no test {name} in {path}")
    for match in SUBPATH.finditer(text):
        if not (REPO / "pipeline" / match.group(1)).is_file():
            problems.append(f"{doc}: {match.group(1)}: no pipeline/{match.group(1)}")
    for match in TEST_NAME.finditer(text):
        name = match.group(1) + (match.group(2) or "")
        if TEST_SPLIT_METRIC.fullmatch(name):
            continue
        if not names_a_test(name, all_defined_tests()):
            problems.append(f"{doc}: {name}: no such test in tests/")
    for match in MODULE.finditer(text):
        module = REPO / match.group(1).replace(".", "/")
        if not (module.with_suffix(".py").is_file() or (module / "__main__.py").is_file()):
            problems.append(f"{doc}: python -m {match.group(1)}: no such module (or package with __main__.py)")
    targets = set(re.findall(r"^([\w-]+):", (REPO / "Makefile").read_text(), re.MULTILINE))
    code = "\n".join(FENCED.findall(text))
    for match in [*MAKE.finditer(text), *MAKE_LINE.finditer(code)]:
        if match.group(1) not in targets:
            problems.append(f"{doc}: make {match.group(1)}: no such Makefile target")
    if doc.endswith(".md"):
        for match in LINK.finditer(text):
            link, anchor = match.group(1), match.group(2)
            if re.match(r"\w+:", link):  # http:, https:, mailto:
                continue
            target = (REPO / doc).parent / link if link else REPO / doc
            if not target.exists():
                problems.append(f"{doc}: link ({link}): no such file")
                continue
            problems += check_anchor(target.resolve(), anchor, doc)
    return list(dict.fromkeys(problems))  # a link is also a path: one line for both


@pytest.mark.parametrize("doc", SCANNED)
def test_every_path_module_test_and_command_the_doc_names_exists(doc):
    assert stale(doc) == []


def test_the_patterns_find_what_they_must_and_skip_what_is_generated():
    """The scanner on a made-up page: stale names found, real and generated ones let be."""
    page = "\n".join(
        [
            "`pipeline/model.py` and `tests/test_safety.py`, `pipeline/train.py` (real), `conf/model/*.yaml`,",
            "`conf/model/<name>.yaml`, `data/normalized`, `models/`, `outputs/sweeps/<time>/`, `mlruns/`,",
            "`tests/test_docs_paths.py::test_nothing_here`, `test_no_such_test`, `tracking/nowhere.py`,",
            "`test_predictions.csv` (a run's file) and `test_acc` (a metric), not tests,",
            "`python -m pipeline.nowhere`, `python -m pipeline.train`, `python -m bench.tricks`, `make nothing`,",
            "[a link](docs/faults.md#no-such-section), [real](docs/design.md#tests), /work/x/tests/foo.py",
            "`tests/test_docs_paths.py::test_every_path_module_test_and_command_the_doc_names_exists[README.md]`",
            "make the two accounts (prose), and a block:",
            "```",
            "make run",
            "make nothing-either",
            "```",
        ]
    )
    found = "\n".join(stale("README.md", page))
    for name in (
        "pipeline/model.py:",
        "tests/test_safety.py:",
        "::test_nothing_here",
        "test_no_such_test:",
        "tracking/nowhere.py",
        "pipeline.nowhere",
        "make nothing:",
        "make nothing-either:",
        "#no-such-section",
    ):
        assert name in found
    for name in ("pipeline/train.py", "conf/model", "data/normalized", "models/", "outputs/", "mlruns", "#tests"):
        assert name not in found
    assert "python -m pipeline.train" not in found and "bench.tricks" not in found
    assert "make the" not in found and "make run" not in found and "test_predictions" not in found
    assert found.count("\n") == 8  # the nine above, nothing else
