"""Issue 31's proof that every choice is made on the validation split and `test` only records.

Two worlds of the same small data that differ only in the test split's labels (3 and 7 swapped in
MNIST's test label file, so each test image's label is flipped). In both: a single run, then a grid
sweep and an Optuna search, each sweep's best through the registry gate. Every run's validation
figures, each sweep's best, Optuna's best trial and every gate decision are the same in both
worlds; the test metrics are not (each is 1 - the other), and the runs' test accuracies differ, so
a choice made on them would have differed between the worlds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient
from omegaconf import OmegaConf

from pipeline.data import idx
from pipeline.data import normalized as normalized_data
from pipeline.tracking import registry
from pipeline.tracking.sweep_runs import PARENT_TAG, SWEEP_FILE
from tests.conftest import make_config, write_idx_dir
from tests.test_sweep import multirun

pytestmark = pytest.mark.slow
# Short of perfect on this easy data (1 epoch, small rates): the runs' accuracies differ.
SMALL = ["fit.epochs=1", "trainer.accelerator=cpu"]
GRID = "optim.lr=0.001,0.003,0.01,0.03"
SEARCH = ["hparams_search=linear_optuna", "hydra.sweeper.n_trials=3", "optim.lr=tag(log, interval(0.001, 0.03))"]
WORLDS = ("honest", "flipped")


def build(root: Path, flip: bool):
    """fetch, filter, normalize on the synthetic data; `flip`: 3 and 7 swapped in the test labels."""
    from pipeline.fetch import fetch
    from pipeline.filter import filter_digits
    from pipeline.normalize import normalize

    write_idx_dir(root / "idx")
    if flip:
        path = root / "idx/t10k-labels-idx1-ubyte"
        labels = idx.read(path)
        path.write_bytes(idx.encode(np.where(labels == 3, 7, np.where(labels == 7, 3, labels)).astype(np.uint8)))
    cfg = make_config(root, SMALL)
    fetch(cfg), filter_digits(cfg), normalize(cfg)
    return cfg


def sweep(cfg, name: str, *overrides: str) -> dict:
    """A multirun in this world's store; its parent and children by run name, and its sweep dir."""
    root = Path(cfg.paths.normalized).parent.parent
    world = [f"paths.normalized={cfg.paths.normalized}", f"tracking.uri={cfg.tracking.uri}", *SMALL]
    multirun(root, *overrides, *world, f"hydra.sweep.dir={root}/{name}")
    published = json.loads((root / name / SWEEP_FILE).read_text())
    client = MlflowClient(cfg.tracking.uri)
    parent = client.get_run(published["parent_run_id"])
    found = client.search_runs([published["experiment_id"]], f"tags.`{PARENT_TAG}` = '{parent.info.run_id}'")
    return {"parent": parent, "children": {run.info.run_name: run for run in found}, "dir": root / name}


@pytest.fixture(scope="module")
def worlds(tmp_path_factory) -> dict:
    from pipeline.train import train

    out = {}
    for world in WORLDS:
        root = tmp_path_factory.mktemp(world)
        cfg = build(root, flip=world == "flipped")
        single = train(make_config(root, [*SMALL, "optim.lr=0.003"]), root / "single")  # the first champion
        out[world] = {
            "cfg": cfg,
            "single": single,
            "grid": sweep(cfg, "grid", "-m", GRID),
            "search": sweep(cfg, "search", "-m", *SEARCH),
            "versions": MlflowClient(cfg.tracking.uri).search_model_versions(f"name = '{registry.model_name(cfg)}'"),
        }
    return out


def test_the_worlds_differ_only_in_the_test_labels(worlds):
    honest, flipped = (normalized_data.read(worlds[w]["cfg"].paths.normalized) for w in WORLDS)
    for split in ("train", "valid"):
        assert honest.digest(split) == flipped.digest(split)
    (x, y), (flipped_x, flipped_y) = honest.arrays["test"], flipped.arrays["test"]
    assert np.array_equal(x, flipped_x) and np.array_equal(flipped_y, 1 - y) and 0 < y.sum() < len(y)


def same_validation_other_test(honest, flipped) -> None:
    """Two runs of the same job in the two worlds: validation the same, test each other's complement."""
    for metric in ("final_val_acc", "final_val_loss", "final_val_acc_first", "final_val_acc_second"):
        assert honest.data.metrics[metric] == flipped.data.metrics[metric], metric
    assert flipped.data.metrics["test_acc"] == pytest.approx(1 - honest.data.metrics["test_acc"], abs=1e-6)
    assert flipped.data.metrics["test_loss"] != honest.data.metrics["test_loss"]


@pytest.mark.parametrize("kind", ["grid", "search"])
def test_a_sweep_chooses_the_same_best_child_whatever_the_test_labels(worlds, kind):
    honest, flipped = (worlds[w][kind] for w in WORLDS)
    assert sorted(honest["children"]) == sorted(flipped["children"]) and len(honest["children"]) >= 3
    for name, run in honest["children"].items():
        same_validation_other_test(run, flipped["children"][name])
    assert honest["parent"].data.tags["best_run_name"] == flipped["parent"].data.tags["best_run_name"]
    test_acc = {name: run.data.metrics["test_acc"] for name, run in honest["children"].items()}
    assert len(set(test_acc.values())) > 1  # so a choice by test accuracy would differ between the worlds
    by_test = {
        w: max(worlds[w][kind]["children"].items(), key=lambda i: i[1].data.metrics["test_acc"])[0] for w in WORLDS
    }
    assert by_test["honest"] != by_test["flipped"]
    if kind == "search":  # Optuna's own record of the best trial, and the trials it sampled
        results = [OmegaConf.load(worlds[w][kind]["dir"] / "optimization_results.yaml") for w in WORLDS]
        assert results[0].best_params == results[1].best_params and results[0].best_value == results[1].best_value


def test_the_registry_gate_decides_the_same_and_each_version_records_its_test_accuracy(worlds):
    honest, flipped = (sorted(worlds[w]["versions"], key=lambda v: int(v.version)) for w in WORLDS)
    assert len(honest) == len(flipped) == 3  # the single run, the grid's best, the search's best
    for mine, theirs in zip(honest, flipped):
        decided, also = (json.loads(v.tags[registry.DECISION_TAG]) for v in (mine, theirs))
        assert (decided["alias"], decided["promoted"], decided["reason"]) == (
            also["alias"],
            also["promoted"],
            also["reason"],
        )
        assert mine.tags["val_acc"] == theirs.tags["val_acc"] and mine.tags["data.digest"] == theirs.tags["data.digest"]
        test_acc = float(mine.tags[registry.TEST_ACC_TAG])
        assert float(theirs.tags[registry.TEST_ACC_TAG]) == pytest.approx(1 - test_acc, abs=1e-6)
    assert worlds["honest"]["single"]["registry"]["reason"] == "no champion yet"
