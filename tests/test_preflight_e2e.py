"""Failures that come from the world around the configuration, met by the real commands: a
tracking server that is not there, a damaged sqlite store, a GPU that is not there, a truncated data
file, data of another digit pair, nowhere to write, a damaged model. Each: one line, exit 1, no MLflow run,
no output."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient
from omegaconf import OmegaConf

from pipeline.tracking.server import free_port
from tests.conftest import REPO, damaged_copies, make_config, mlflow_store, write_idx_dir

pytestmark = pytest.mark.slow
REMAKE = "remake it with `dvc repro`, or restore the committed version with `dvc checkout {}`"


def normalized_data(tmp: Path, digits: list[int]) -> Path:
    from pipeline.fetch import fetch
    from pipeline.filter import filter_digits
    from pipeline.normalize import normalize

    write_idx_dir(tmp / "idx")
    cfg = make_config(tmp, [f"data.digits=[{digits[0]},{digits[1]}]"])
    fetch(cfg), filter_digits(cfg), normalize(cfg)
    return Path(cfg.paths.normalized)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    """Normalized generated data of two digit pairs, and a copy of the first with train_x.npy truncated."""
    tmp = tmp_path_factory.mktemp("data")
    pairs = {"3-7": normalized_data(tmp / "37", [3, 7]), "4-9": normalized_data(tmp / "49", [4, 9])}
    truncated = shutil.copytree(pairs["3-7"], tmp / "truncated")
    train = truncated / "train_x.npy"
    train.write_bytes(train.read_bytes()[:100_000])
    return {**pairs, "truncated": truncated}


def md5_in_stats(directory: Path, name: str) -> str:
    return json.loads((directory / "stats.json").read_text())["md5"][name]


def env() -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}, "PYTHONPATH": str(REPO)}


def start(cwd: Path, module: str, *args: str) -> subprocess.Popen:
    cwd.mkdir(parents=True, exist_ok=True)
    with open(cwd / "err.txt", "w") as err:
        return subprocess.Popen(
            [sys.executable, "-m", module, *args], cwd=cwd, env=env(), stdout=subprocess.DEVNULL, stderr=err
        )


def finish(proc: subprocess.Popen, timeout: float = 600) -> int:
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise


def cases(data: dict[str, Path], tmp: Path) -> dict[str, tuple[list[str], str]]:
    """case -> (overrides of `python -m pipeline.train`, the one line it must print; `<default store>`
    stands for the default store of the directory it runs in)."""
    port = free_port()
    (tmp / "a-file").write_text("")
    found = {
        "no server": (
            [f"tracking.uri=http://127.0.0.1:{port}"],
            f"error: tracking.uri=http://127.0.0.1:{port}: connection refused: no MLflow server there; "
            f"start it (python -m pipeline.server --port {port}), or leave tracking.uri unset for the "
            "default store <default store>",
        ),
        "truncated data": (
            [f"paths.normalized={data['truncated']}"],
            f"error: {data['truncated']}/train_x.npy: damaged: its MD5 is not the "
            f"{md5_in_stats(data['truncated'], 'train_x.npy')} normalize wrote (stats.json); "
            + REMAKE.format(data["truncated"]),
        ),
        "other digits": (
            [f"paths.normalized={data['4-9']}", "model=fastbook"],
            f"error: {data['4-9']} holds digits [4, 9]; the configuration asks for [3, 7]: run dvc "
            "repro (or dvc exp apply / dvc checkout), or pass data.digits=[4,9]",
        ),
        "run dir under a file": (
            [f"hydra.run.dir={tmp}/a-file/run"],
            f"error: hydra.run.dir={tmp}/a-file/run: {tmp}/a-file is a file, not a directory; "
            "move it away, or set hydra.run.dir to another directory",
        ),
        "store under a file": (
            [f"tracking.uri=sqlite:///{tmp}/a-file/mlflow.db"],
            f"error: tracking.uri=sqlite:///{tmp}/a-file/mlflow.db: {tmp}/a-file is a file, not a "
            "directory; move it away, or leave tracking.uri unset for the default store <default store>",
        ),
    }
    import torch

    if not torch.cuda.is_available():  # where there is a GPU, asking for one is no fault
        found["gpu"] = (
            ["trainer.accelerator=gpu"],
            "error: trainer.accelerator=gpu: no CUDA device on this machine; use trainer.accelerator=auto or cpu",
        )
    return found


def test_faults_outside_the_configuration_are_one_line_exit_1_and_leave_nothing(tmp_path, data):
    runs = {}
    for i, (case, (overrides, line)) in enumerate(cases(data, tmp_path).items()):
        cwd = tmp_path / str(i)
        run_dir = [] if any(o.startswith("hydra.run.dir=") for o in overrides) else [f"hydra.run.dir={cwd}/out"]
        args = [f"paths.normalized={data['3-7']}", "fit.epochs=1", *run_dir, *overrides]
        runs[case] = (cwd, line, start(cwd, "pipeline.train", *args))
    for case, (cwd, line, proc) in runs.items():
        assert finish(proc) == 1, case
        default_store = f"sqlite:///{cwd}/mlflow.db"  # no dvc.yaml above cwd: the store is found there
        assert (cwd / "err.txt").read_text().splitlines() == [line.replace("<default store>", default_store)], case
        assert sorted(p.name for p in cwd.iterdir()) == ["err.txt"], case  # no mlflow.db, mlruns/ or out/
    assert not (tmp_path / "a-file" / "run").exists()


def test_a_damaged_store_is_one_line_exit_1_and_left_as_it_was(tmp_path, data):
    """An MLflow store cut at 20,000 bytes, and one with bytes flipped inside: refused before any run,
    saying how to recover, and the file not written to."""
    stores = damaged_copies(mlflow_store(tmp_path / "stores"))
    before = {name: (path.read_bytes(), path.stat().st_mtime_ns) for name, path in stores.items()}
    procs = {
        name: start(
            tmp_path / name,
            "pipeline.train",
            f"paths.normalized={data['3-7']}",
            "fit.epochs=1",
            f"hydra.run.dir={tmp_path / name}/out",
            f"tracking.uri=sqlite:///{path}",
        )
        for name, path in stores.items()
    }
    for name, proc in procs.items():
        assert finish(proc) == 1, name
        database = stores[name]
        recovered = database.with_name(f"{name}-recovered.db")
        [line] = (tmp_path / name / "err.txt").read_text().splitlines()
        assert line.startswith(f"error: tracking.uri=sqlite:///{database}: {database} is damaged (sqlite: "), line
        assert line.endswith(
            f"sqlite3 {database} .recover | sqlite3 {recovered} and set tracking.uri=sqlite:///{recovered}"
        )
        assert (database.read_bytes(), database.stat().st_mtime_ns) == before[name], name
        assert sorted(p.name for p in (tmp_path / name).iterdir()) == ["err.txt"], name  # no run directory
    assert sorted(p.name for p in (tmp_path / "stores").iterdir()) == ["flipped.db", "mlflow.db", "truncated.db"]


def test_data_of_the_asked_digits_trains_and_the_run_records_what_it_used(tmp_path, data):
    """The way out the refusal names (`data.digits=[4,9]`) works, and the run describes the data it used."""
    proc = start(
        tmp_path,
        "pipeline.train",
        f"paths.normalized={data['4-9']}",
        "model=fastbook",
        "data.digits=[4,9]",
        "fit.epochs=2",
        f"hydra.run.dir={tmp_path}/out",
    )
    assert finish(proc) == 0, (tmp_path / "err.txt").read_text()[-3000:]
    [run] = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").search_runs(["1"])
    stats = json.loads((data["4-9"] / "stats.json").read_text())
    assert run.data.params["data.digits"] == "[4, 9]"
    assert run.data.params["data.raw_sha256"] == stats["raw_sha256"]
    counts = [run.data.params[f"data.count.{split}"] for split in ("train", "valid", "test")]
    assert counts == ["51", "29", "40"]
    assert sorted(i.dataset.name for i in run.inputs.dataset_inputs) == [
        f"mnist-4-vs-9-{split}" for split in ("test", "train", "valid")
    ]


def test_evaluate_names_a_truncated_model_and_writes_nothing(tmp_path, data):
    from pipeline.train import train

    cfg = make_config(tmp_path, [f"paths.normalized={data['3-7']}"])
    train(cfg, Path(cfg.paths.model))
    checkpoint = Path(cfg.paths.model) / "model.ckpt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:1000])
    (tmp_path / "params.yaml").write_text(OmegaConf.to_yaml(OmegaConf.structured(cfg)))
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.evaluate"],
        cwd=tmp_path,
        env=env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1
    [line] = done.stderr.splitlines()
    assert line.startswith(f"error: {checkpoint}: not a readable model checkpoint (")
    assert line.endswith(REMAKE.format(cfg.paths.model))
    assert not Path(cfg.paths.metrics).exists() and not Path(cfg.paths.plots).exists()
