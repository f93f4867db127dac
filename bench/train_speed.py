"""Training speed: a bare PyTorch loop against the project's real training path, in one process,
on the same data, epochs and batch size.

    python -m bench.train_speed                                  # data/normalized, conf/ defaults
    python -m bench.train_speed --data /path/to/normalized --repeats 5 --threads 1
    python -m bench.train_speed --scales 1 4 16 --scale-epochs 5 # cost per epoch as the data grows
    python -m bench.train_speed fit.batch_size=1024             # any Hydra override of conf/

(a) bench/bare_loop.py: the same work with no framework. (b) pipeline.train.train(): the
LightningModule, Trainer and MLflow run exactly as `python -m pipeline.train` configures them,
into a throwaway sqlite store. (b0) the same module, data and Trainer (pipeline.model.trainer.make_trainer)
with no MLflow logger and no run: Lightning's loop on its own, so (b) - (b0) is what recording
each epoch's metrics in MLflow costs. All are clocked at the end of every epoch (for (b) and
(b0), when Lightning calls the module's on_train_epoch_end, after that epoch's validation), and
the figure per epoch is the mean from the end of the first epoch to the end of the last:
- wall: elapsed time;
- CPU: process CPU time (all threads, the MLflow logging thread too). On a shared machine this
  is the steadier figure; with more than one torch thread it counts spin-waits.
(b)'s fixed per-run cost (Trainer set-up, data loading, MLflow run, checkpoint, figures, model
logging) is reported apart.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import numpy as np
import pytorch_lightning as pl
import torch

from bench import bare_loop
from pipeline.config.compose import as_dict, compose, validate
from pipeline.data import normalized
from pipeline.data.datamodule import NormalizedMNIST
from pipeline.model.classifier import DigitClassifier
from pipeline.model.trainer import make_trainer, quiet_lightning
from pipeline.train import train

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


def per_epoch_ms(ends: list[float]) -> float:
    """Mean time per epoch after the first (end of epoch 1 to end of the last)."""
    return (ends[-1] - ends[0]) / (len(ends) - 1) * 1000


def training_device(cfg) -> torch.device:
    """The device Lightning trains on for this config (accelerator=auto: CUDA when present)."""
    trainer = pl.Trainer(
        accelerator=cfg.trainer.accelerator,
        devices=cfg.trainer.devices,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    return trainer.strategy.root_device


@contextmanager
def clocked_epochs() -> Iterator[list[tuple[float, float]]]:
    """(wall, CPU) at the end of every epoch of the module's trainings within the block."""
    ends = []
    hook = DigitClassifier.on_train_epoch_end

    def clocked(module):
        hook(module)
        ends.append((time.perf_counter(), time.process_time()))

    with mock.patch.object(DigitClassifier, "on_train_epoch_end", clocked):
        yield ends


def per_epoch(ends: list[tuple[float, float]]) -> dict:
    return {"wall_ms": per_epoch_ms([w for w, _ in ends]), "cpu_ms": per_epoch_ms([c for _, c in ends])}


def project_run(cfg, work: Path) -> dict:
    """(b) One real training run: wall and CPU ms per epoch, whole wall seconds, validation accuracy."""
    out = work / f"run-{time.monotonic_ns()}"
    wall = time.perf_counter()
    with clocked_epochs() as ends:
        results = train(cfg, out)
    wall = time.perf_counter() - wall
    shutil.rmtree(out)
    return {**per_epoch(ends), "wall_s": wall, "acc": results["acc"]}


def lightning_run(cfg) -> dict:
    """(b0) The project's module, data and Trainer settings, fitted with no MLflow logger or run."""
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    data = NormalizedMNIST(normalized.read(cfg.paths.normalized), cfg.fit.batch_size, cfg.fit.shuffle, cfg.seed)
    module = DigitClassifier(model=as_dict(cfg.model), optim=as_dict(cfg.optim), loss=cfg.fit.loss.value)
    with clocked_epochs() as ends:
        make_trainer(cfg, logger=False).fit(module, datamodule=data)
    return per_epoch(ends)


def compare(compose_with, data_dir: Path, work: Path, repeats: int, device: torch.device) -> dict:
    """Interleaved repeats of (a), (b0) and (b); medians. compose_with(overrides) -> Config."""
    cfg = compose_with([])
    o = cfg.fit
    data = bare_loop.load(data_dir, device)
    keys = ("bare_wall", "bare_cpu", "lightning_wall", "lightning_cpu", "wall", "cpu", "wall_s", "fixed_s")
    runs = {key: [] for key in keys}
    for _ in range(repeats):
        ends, bare_acc, _ = bare_loop.train(data, o.epochs, o.batch_size, cfg.optim["lr"], cfg.seed, o.shuffle)
        bare, alone = per_epoch(ends), lightning_run(cfg)
        runs["bare_wall"].append(bare["wall_ms"])
        runs["bare_cpu"].append(bare["cpu_ms"])
        runs["lightning_wall"].append(alone["wall_ms"])
        runs["lightning_cpu"].append(alone["cpu_ms"])
        full = project_run(cfg, work)
        runs["wall"].append(full["wall_ms"])
        runs["cpu"].append(full["cpu_ms"])
        runs["wall_s"].append(full["wall_s"])
        runs["fixed_s"].append(full["wall_s"] - full["wall_ms"] * o.epochs / 1000)
    median = {key: statistics.median(values) for key, values in runs.items()}
    return {**median, "runs": runs, "bare_acc": bare_acc, "project_acc": full["acc"], "n_train": len(data[1])}


def replicated(data_dir: Path, scale: int, dest: Path) -> Path:
    """A normalized directory whose training set is data_dir's repeated `scale` times."""
    dest.mkdir(parents=True, exist_ok=True)
    np.save(dest / "train_x.npy", np.tile(np.load(data_dir / "train_x.npy"), (scale, 1)))
    np.save(dest / "train_y.npy", np.tile(np.load(data_dir / "train_y.npy"), scale))
    for name in ("valid_x.npy", "valid_y.npy", "test_x.npy", "test_y.npy"):
        shutil.copy(data_dir / name, dest / name)
    stats = json.loads((data_dir / "stats.json").read_text())  # the identity train checks: its train count too
    stats["train"]["count"] *= scale
    stats["md5"] = {name: hashlib.md5((dest / name).read_bytes()).hexdigest() for name in stats["md5"]}
    (dest / "stats.json").write_text(json.dumps(stats))
    return dest


def show(values: list[float]) -> str:
    return " ".join(f"{v:.1f}" for v in values)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("data/normalized"), help="normalized MNIST directory")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, help="torch threads for both (default: torch's own choice)")
    parser.add_argument("--scales", type=int, nargs="*", default=[1], help="training-set multiples, e.g. 1 4 16")
    parser.add_argument("--scale-epochs", type=int, default=5, help="epochs per run in the scaling table")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of conf/, e.g. fit.epochs=20")
    args = parser.parse_args(argv)
    for name in ("train_x.npy", "valid_x.npy", "stats.json"):
        if not (args.data / name).is_file():
            sys.exit(
                f"error: {args.data / name}: not found; expected normalized MNIST "
                "(`dvc repro normalize`, or pass --data DIR)"
            )
    if args.threads:
        torch.set_num_threads(args.threads)
    quiet_lightning()

    with tempfile.TemporaryDirectory(prefix="train_speed-") as tmp:
        work = Path(tmp)

        def config_for(data_dir: Path, extra: list[str] = ()):
            base = [
                f"tracking.uri=sqlite:///{work}/mlflow.db",
                "tracking.experiment=train_speed",
                f"paths.normalized={data_dir.resolve()}",
            ]
            return lambda more: validate(compose(base + args.overrides + list(extra) + list(more)))

        cfg = config_for(args.data)([])
        device, o = training_device(cfg), cfg.fit
        print(
            f"train_speed: {args.data}, {o.epochs} epochs, batch {o.batch_size}, model {cfg.model['name']}, "
            f"device {device}, torch threads {torch.get_num_threads()}, {args.repeats} repeats (median), "
            f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
        )
        project_run(config_for(args.data)(["fit.epochs=2"]), work)  # warm-up: creates the sqlite store

        r = compare(config_for(args.data), args.data, work, args.repeats, device)
        print("                                   wall ms/epoch   CPU ms/epoch")
        print(f"  (a) bare PyTorch loop            {r['bare_wall']:13.1f}   {r['bare_cpu']:12.1f}")
        print(f"  (b0) Lightning alone, no MLflow  {r['lightning_wall']:13.1f}   {r['lightning_cpu']:12.1f}")
        print(f"  (b) project: Lightning + MLflow  {r['wall']:13.1f}   {r['cpu']:12.1f}")
        for name, key in (("ratio (b0)/(a)", "lightning_"), ("ratio (b)/(a)", "")):
            wall, cpu = r[f"{key}wall"] / r["bare_wall"], r[f"{key}cpu"] / r["bare_cpu"]
            print(f"  {name:<33}{wall:13.2f}   {cpu:12.2f}")
        runs = r["runs"]
        for side in ("wall", "cpu"):
            print(
                f"  runs, {side + ':':<5} (a) {show(runs['bare_' + side])}  (b0) {show(runs['lightning_' + side])}"
                f"  (b) {show(runs[side])}"
            )
        print(f"  (b) whole train(): {r['wall_s']:.2f} s wall, of which fixed per-run cost {r['fixed_s']:.2f} s")
        print(
            f"  validation accuracy: (a) {r['bare_acc']:.4f}, (b) {r['project_acc']:.4f}; "
            f"load average now {os.getloadavg()[0]:.1f}"
        )

        if args.scales != [1]:
            print(f"scaling: the training set repeated, {args.scale_epochs} epochs per run")
            print(
                "  scale  train rows  (a) wall ms/epoch  (b) wall ms/epoch  (a) CPU  (b) CPU  CPU ratio  (b) CPU us/row"
            )
            for scale in args.scales:
                data_dir = args.data if scale == 1 else replicated(args.data, scale, work / f"x{scale}")
                s = compare(
                    config_for(data_dir, [f"fit.epochs={args.scale_epochs}"]), data_dir, work, args.repeats, device
                )
                print(
                    f"  {scale:>4}x  {s['n_train']:>10}  {s['bare_wall']:17.1f}  {s['wall']:17.1f}  "
                    f"{s['bare_cpu']:7.1f}  {s['cpu']:7.1f}  {s['cpu'] / s['bare_cpu']:9.2f}  "
                    f"{s['cpu'] * 1000 / s['n_train']:14.2f}"
                )


if __name__ == "__main__":
    main()
