"""The cost of the damaged-store check (`store_check.check_sqlite`: sqlite's `PRAGMA quick_check`, read
only), which every training runs once before its run, on stores of growing size.

    python -m bench.store_check                              # stores of 10, 100, 500 recorded trainings
    python -m bench.store_check --runs 10,1000 --repeats 20
    python -m bench.store_check --store mlflow.db            # also a copy of an existing store

Each built store holds `runs` finished runs recorded as a training records them: ~60 params, a
few tags, 4 metrics x `epochs` epochs, the final metrics. An existing store is copied first (the
original is never opened). Prints, per store, its size, and the median (min-max) time of the whole
check (`check_sqlite`: header, quick_check, writable directory) and of quick_check alone.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag

from pipeline.tracking import store_check


def build_store(directory: Path, runs: int, epochs: int) -> Path:
    database = directory / f"runs-{runs}.db"
    client = MlflowClient(f"sqlite:///{database}")
    experiment = client.create_experiment("threes-sevens", artifact_location=(directory / "mlruns").as_uri())
    for number in range(runs):
        run_id = client.create_run(experiment, run_name=f"seed={number}").info.run_id
        params = [Param(f"group{k // 10}.key{k}", str(k * number)) for k in range(60)]
        tags = [RunTag(f"tag{k}", f"value {k} of run {number}") for k in range(8)]
        metrics = [
            Metric(name, 0.5 + epoch / (2 * epochs), 1_700_000_000_000 + epoch, epoch)
            for epoch in range(epochs)
            for name in ("train_loss", "val_loss", "val_acc", "bias")
        ]
        metrics += [Metric(f"final_val_{name}", 0.99, 1_700_000_000_000, 0) for name in ("acc", "loss", "acc_first")]
        for start in range(0, len(metrics), 1000):  # MLflow's log_batch limit
            client.log_batch(
                run_id,
                metrics=metrics[start : start + 1000],
                params=params if start == 0 else [],
                tags=tags if start == 0 else [],
            )
        client.set_terminated(run_id)
    return database


def seconds(call, database: Path, repeats: int) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds of each call (CPU: this process's, less moved by other load on the machine)."""
    wall, cpu = [], []
    for _ in range(repeats):
        started, started_cpu = time.perf_counter(), time.process_time()
        call(database)
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    return wall, cpu


def figure(times: tuple[list[float], list[float]]) -> str:
    wall, cpu = times
    return (
        f"{statistics.median(wall) * 1000:6.1f} ms ({min(wall) * 1000:.1f}-{max(wall) * 1000:.1f}), "
        f"CPU {statistics.median(cpu) * 1000:.1f} ms"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", default="10,100,500", help="comma-separated: one built store per count")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--store", type=Path, help="an existing sqlite store, measured on a copy")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="store_check-") as tmp:
        stores = {}
        if args.store:
            stores[f"copy of {args.store}"] = Path(shutil.copy(args.store, Path(tmp) / "existing.db"))
        for runs in (int(n) for n in args.runs.split(",")):
            stores[f"{runs} runs x {args.epochs} epochs"] = build_store(Path(tmp), runs, args.epochs)
        print(f"{'store':<32} {'MB':>7}  {'check_sqlite: wall median (min-max), CPU':<44} quick_check alone")
        for name, database in stores.items():
            whole = seconds(lambda path: store_check.check_sqlite(path, "bench"), database, args.repeats)
            alone = seconds(store_check.sqlite_damage, database, args.repeats)
            size = database.stat().st_size / 1e6
            print(f"{name:<32} {size:7.2f}  {figure(whole):<44} {figure(alone)}")
            print(f"{'':<32} {'':>7}  quick_check: {statistics.median(alone[1]) * 1000 / size:.1f} CPU ms per MB")


if __name__ == "__main__":
    main()
