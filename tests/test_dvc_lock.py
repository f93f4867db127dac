"""The committed dvc.lock describes the committed code, params.yaml and results: the figures in
metrics.json and plots/ are what this checkout's `dvc repro` produces, and `dvc status` on a
reproduced checkout has nothing to rerun. (Editing a stage's module means running `make run`
and committing dvc.lock with it.)"""

import hashlib
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from pipeline.tracking.lineage import dvc_md5
from tests.conftest import REPO

LOCK = yaml.safe_load((REPO / "dvc.lock").read_text())["stages"]
DATA_DIRS = ("data/", "models")  # DVC-cached outputs, not in git


def committed(entries: list[dict]) -> list[dict]:
    return [entry for entry in entries if not entry["path"].startswith(DATA_DIRS)]


def directory_md5(directory: Path) -> str:
    """DVC's hash of a directory, from its files' MD5s."""
    files = [path for path in directory.rglob("*") if path.is_file()]
    return dvc_md5(
        {path.relative_to(directory).as_posix(): hashlib.md5(path.read_bytes()).hexdigest() for path in files}
    )


def md5_of(path: str) -> str:
    target = REPO / path
    return directory_md5(target) if target.is_dir() else hashlib.md5(target.read_bytes()).hexdigest()


@pytest.mark.parametrize("stage", LOCK)
def test_locked_code_and_results_are_the_committed_files(stage):
    entries = committed(LOCK[stage].get("deps", []) + LOCK[stage].get("outs", []))
    stale = [entry["path"] for entry in entries if md5_of(entry["path"]) != entry["md5"]]
    assert stale == [], f"dvc.lock is stale for {stale}: run `make run` and commit dvc.lock"


@pytest.mark.parametrize("stage", LOCK)
def test_locked_params_are_params_yaml(stage):
    params = OmegaConf.to_container(OmegaConf.load(REPO / "params.yaml"))
    for key, value in LOCK[stage].get("params", {}).get("params.yaml", {}).items():
        assert OmegaConf.select(OmegaConf.create(params), key) == value, f"{stage}: {key}"


def test_every_stage_is_locked_with_its_code():
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    assert set(LOCK) == set(stages)
    for stage in LOCK:
        assert any(dep["path"].startswith("pipeline/") for dep in LOCK[stage]["deps"])
