"""Sweep overhead: an N-job Hydra multirun of the real training app against N bare trainings.

    python -m bench.sweep_overhead                          # N=4, data/normalized, conf/ defaults
    python -m bench.sweep_overhead --runs 4,8 --repeats 3    # several N; medians of 3 repeats
    python -m bench.sweep_overhead --runs 8 --data DIR fit.epochs=20

The multirun is `python -m pipeline.train -m seed=1,...,N` (Hydra's basic launcher, one MLflow
run per job, into a sqlite store created beforehand, as a user's store already exists), timed
from the shell. The bare side is bench/bare_loop.py trained N times in this process with the
same data, epochs and batch size, after one warm-up training (torch's first-use costs, ~1 s, are
left out of the bare side: the comparison is the stricter for it). Goal: multirun <= 2 x (N bare
trainings) + one interpreter start, the start being a Python process that imports
pipeline.train (torch, Lightning, MLflow, Hydra) and exits, measured too.

With two or more N, the multirun's cost is split into a fixed part, paid once per sweep, and a
part per job (least squares over the N): what a sweep pays beyond the start, and what each job
costs against one bare training.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bench import bare_loop
from bench.tricks import TRICKS
from pipeline.config.compose import compose, validate


def timed(cmd: list[str], **kwargs) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if done.returncode != 0 or "database is locked" in done.stdout + done.stderr:  # a job's writes were refused
        sys.exit(f"error: {' '.join(cmd[:4])} ... failed:\n{done.stderr[-2000:]}")
    return time.perf_counter() - start


def jobs_env(data: Path, threads: int | None) -> dict[str, str]:
    """The environment the benchmark's commands run in: no MLFLOW_* of the caller, OMP_NUM_THREADS
    when `threads` is given; exits with one line when `data` holds no normalized MNIST."""
    if not (data / "train_x.npy").is_file():
        sys.exit(f"error: {data / 'train_x.npy'}: not found; expected normalized MNIST (or pass --data DIR)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    return env


def multirun_seconds(jobs: int, data_dir: Path, overrides: list[str], env: dict, trick: str | None = None) -> float:
    with tempfile.TemporaryDirectory(prefix="sweep_overhead-") as tmp:
        store = f"sqlite:///{tmp}/mlflow.db"
        timed(
            [sys.executable, "-c", "import mlflow, sys; mlflow.MlflowClient(sys.argv[1]).search_experiments()", store],
            env=env,
        )
        seeds = ",".join(str(seed) for seed in range(1, jobs + 1))
        command = ["-m", "bench.tricks", trick] if trick else ["-m", "pipeline.train"]
        return timed(
            [
                sys.executable,
                *command,
                "-m",
                f"seed={seeds}",
                f"paths.normalized={data_dir}",
                f"tracking.uri={store}",
                f"hydra.sweep.dir={tmp}/sweep",
                *overrides,
            ],
            env=env,
        )


def bare_seconds(data, cfg, jobs: int) -> list[float]:
    """Seconds of each of `jobs` bare trainings, after one warm-up training."""
    o = cfg.fit
    bare_loop.train(data, o.epochs, o.batch_size, cfg.optim["lr"], 0, o.shuffle)
    times = []
    for seed in range(1, jobs + 1):
        start = time.perf_counter()
        bare_loop.train(data, o.epochs, o.batch_size, cfg.optim["lr"], seed, o.shuffle)
        times.append(time.perf_counter() - start)
    return times


def job_counts(text: str) -> list[int]:
    """`4` or `4,8`: the N of each multirun."""
    counts = [int(n) for n in text.split(",")]
    if any(n < 1 for n in counts):
        raise ValueError(text)
    return counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("data/normalized"), help="normalized MNIST directory")
    parser.add_argument(
        "--runs",
        type=job_counts,
        default=[4],
        help="N: jobs in the sweep; several, comma-separated (4,8): one line each and the split",
    )
    parser.add_argument("--repeats", type=int, default=1, help="repeats of every measure (median)")
    parser.add_argument("--threads", type=int, help="torch threads, here and in the jobs (OMP_NUM_THREADS)")
    parser.add_argument("--trick", choices=TRICKS, help="also time each sweep with this trick (bench/tricks.py)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every job, e.g. fit.epochs=20")
    args = parser.parse_args(argv)
    data_dir = args.data.resolve()
    env = jobs_env(args.data, args.threads)
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = validate(compose([f"paths.normalized={data_dir}", *args.overrides]))
    data = bare_loop.load(data_dir, torch.device("cpu"))
    runs = sorted(set(args.runs))

    starts, sweeps, bares = [], {n: [] for n in runs}, {n: [] for n in runs}
    tricked = {n: [] for n in runs}
    for _ in range(args.repeats):  # interleaved, so a busy spell on the shared machine hits every measure
        starts.append(timed([sys.executable, "-c", "import pipeline.train"], env=env))
        for n in runs:
            sweeps[n].append(multirun_seconds(n, data_dir, args.overrides, env))
            if args.trick:
                tricked[n].append(multirun_seconds(n, data_dir, args.overrides, env, args.trick))
        each = bare_seconds(data, cfg, max(runs))
        for n in runs:
            bares[n].append(sum(each[:n]))
    start_s = statistics.median(starts)
    sweep_s = {n: statistics.median(v) for n, v in sweeps.items()}
    bare_s = {n: statistics.median(v) for n, v in bares.items()}

    o = cfg.fit
    print(
        f"sweep_overhead: {o.epochs} epochs, batch {o.batch_size}, torch threads {torch.get_num_threads()}, "
        f"{args.repeats} repeat(s) (median), load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    print(
        f"  one interpreter start (python -c 'import pipeline.train'): {start_s:.2f} s  "
        f"(runs: {' '.join(f'{s:.2f}' for s in starts)})"
    )
    print("     N  multirun (s)  N bare (s)  (multirun - start) / bare  goal: multirun <= 2 x bare + start")
    for n in runs:
        budget = 2 * bare_s[n] + start_s
        print(
            f"  {n:>4}  {sweep_s[n]:12.2f}  {bare_s[n]:10.2f}  {(sweep_s[n] - start_s) / bare_s[n]:25.2f}  "
            f"{budget:6.2f} s: {'met' if sweep_s[n] <= budget else 'NOT met'}"
        )
    for n in runs if args.trick else []:
        with_trick = statistics.median(tricked[n])
        print(
            f"  {n:>4}  with {args.trick}: {with_trick:.2f} s, {(with_trick - start_s) / bare_s[n]:.2f}x: "
            f"{100 * (with_trick - sweep_s[n]) / sweep_s[n]:+.1f}% of the sweep"
        )
    if len(runs) >= 2:
        per_job, fixed = np.polyfit(runs, [sweep_s[n] for n in runs], 1)
        per_bare = np.polyfit(runs, [bare_s[n] for n in runs], 1)[0]
        print(
            f"  split: fixed {fixed:.2f} s per sweep (start {start_s:.2f} s + {fixed - start_s:.2f} s), "
            f"{per_job:.2f} s per job against {per_bare:.2f} s per bare training: {per_job / per_bare:.2f}x"
        )


if __name__ == "__main__":
    main()
