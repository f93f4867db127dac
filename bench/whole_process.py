"""What a user waits for: `python -m pipeline.train` as a whole process against a script that
does the bare loop's training and saves the weights (`python -m bench.bare_loop`), both on the
same data, epochs and batch size; and optionally the same command with a speed trick switched on.

    python -m bench.whole_process --data data/normalized --runs 5
    python -m bench.whole_process --runs 5 --trick no_gc_freeze --trick async_logging
    python -m bench.whole_process --runs 5 --checkout /path/to/older/checkout   # e.g. before a change
    python -m bench.whole_process --runs 5 --checkout OLD --checkout-data OLD/data/normalized   # its own data
    python -m bench.whole_process --runs 5 --checkout OLD --checkout-epochs-key optim.epochs  # before conf/fit/

Runs alternate (bare, project, project with each trick, ...) so a changing load hits all alike;
medians of wall and CPU (user + sys of the process and its children) seconds are printed with
their ratios. A trick is applied by bench/tricks.py around the unchanged project command, so
the pipeline itself carries no trick that has not paid for itself (>= 10% of the whole command).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.tricks import TRICKS

ROOT = Path(__file__).resolve().parent.parent  # where `python -m bench...` and `-m pipeline...` run


def timed(cmd: list[str], env: dict, cwd: Path | None = None) -> tuple[float, float]:
    """(wall s, CPU s of the child processes) of one command, which must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"error: {' '.join(cmd)} failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def commands(data: Path, work: Path, epochs: int, tricks: list[str]) -> dict[str, list[str]]:
    project = [
        "-m",
        "pipeline.train",
        f"paths.normalized={data.resolve()}",
        f"fit.epochs={epochs}",
        f"tracking.uri=sqlite:///{work}/mlflow.db",
        f"hydra.run.dir={work}/run",
        "hydra.output_subdir=null",
        "hydra/job_logging=stdout",
    ]
    runs = {
        "bare": [
            sys.executable,
            "-m",
            "bench.bare_loop",
            "--data",
            str(data),
            "--out",
            str(work / "bare"),
            "--epochs",
            str(epochs),
        ],
        "project": [sys.executable, *project],
    }
    for trick in tricks:
        runs[f"project+{trick}"] = [sys.executable, "-m", "bench.tricks", trick, *project[2:]]
    return runs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.whole_process", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("data/normalized"), help="normalized MNIST directory")
    parser.add_argument("--runs", type=int, default=5, help="runs of each command (medians)")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--trick", action="append", choices=TRICKS, default=[], help="also time the project with it")
    parser.add_argument("--checkout", type=Path, help="also time `python -m pipeline.train` of another checkout")
    parser.add_argument(
        "--checkout-data", type=Path, help="the checkout's own normalized data, where it reads another format"
    )
    parser.add_argument(
        "--checkout-epochs-key",
        default="fit.epochs",
        help="the checkout's key for the epochs (optim.epochs before conf/fit/)",
    )
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error(f"--runs {args.runs}: expected an integer >= 1")
    args.data = args.data.resolve()
    for name in ("train_x.npy", "valid_x.npy"):
        if not (args.data / name).is_file():
            raise SystemExit(f"error: {args.data / name}: not found; expected normalized MNIST (`dvc repro normalize`)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    with tempfile.TemporaryDirectory(prefix="whole_process-") as tmp:
        runs = commands(args.data, Path(tmp), args.epochs, args.trick)
        where = dict.fromkeys(runs, ROOT)
        if args.checkout:
            data = f"paths.normalized={(args.checkout_data or args.data).resolve()}"
            runs["checkout"], where["checkout"] = (
                [runs["project"][0], "-m", "pipeline.train", data, f"{args.checkout_epochs_key}={args.epochs}"]
                + runs["project"][5:-4]
                + [f"tracking.uri=sqlite:///{tmp}/other.db", f"hydra.run.dir={tmp}/other", *runs["project"][-2:]],
                args.checkout.resolve(),
            )
            timed(runs["checkout"], env, where["checkout"])  # its store, created once too
        timed(runs["project"], env)  # warm-up: creates the sqlite store (a one-time cost)
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}
        for _ in range(args.runs):
            for name, cmd in runs.items():
                times[name].append(timed(cmd, env, where[name]))
    print(
        f"whole_process: {args.data}, {args.epochs} epochs, {args.runs} runs each (median), "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    bare_wall = statistics.median(w for w, _ in times["bare"])
    bare_cpu = statistics.median(c for _, c in times["bare"])
    project_wall = statistics.median(w for w, _ in times["project"])
    print("  command                       wall s  CPU s  wall/bare  CPU/bare  wall vs project")
    for name, values in times.items():
        wall, cpu = statistics.median(w for w, _ in values), statistics.median(c for _, c in values)
        print(
            f"  {name:<28} {wall:6.2f}  {cpu:5.2f}  {wall / bare_wall:9.2f}  {cpu / bare_cpu:8.2f}  "
            f"{100 * (wall - project_wall) / project_wall:+14.1f}%"
        )


if __name__ == "__main__":
    main()
