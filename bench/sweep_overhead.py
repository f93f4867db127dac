"""Sweep overhead: an N-job Hydra multirun of the real training app against N bare trainings.

    python -m bench.sweep_overhead                     # N=4, data/normalized, conf/ defaults
    python -m bench.sweep_overhead --runs 8 --data DIR optim.epochs=20

The multirun is `python -m pipeline.train -m seed=1,...,N` (Hydra's basic launcher, one MLflow
run per job, a throwaway sqlite store), timed from the shell. The bare side is bench/bare_loop.py
trained N times in this process with the same data, epochs and batch size. Goal: multirun <=
2 x (N bare trainings) + one interpreter start (Python importing pipeline.train: torch,
Lightning, MLflow, Hydra), which is measured too.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from bench import bare_loop
from pipeline.config import compose, validate


def timed(cmd: list[str], **kwargs) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        sys.exit(f"error: {' '.join(cmd[:4])} ... failed:\n{done.stderr[-2000:]}")
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("data/normalized"), help="normalized MNIST directory")
    parser.add_argument("--runs", type=int, default=4, help="N: jobs in the sweep")
    parser.add_argument("--threads", type=int, help="torch threads, here and in the jobs (OMP_NUM_THREADS)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every job, e.g. optim.epochs=20")
    args = parser.parse_args(argv)
    if not (args.data / "train.npz").is_file():
        sys.exit(f"error: {args.data / 'train.npz'}: not found; expected normalized MNIST (or pass --data DIR)")
    data_dir = args.data.resolve()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    if args.threads:
        torch.set_num_threads(args.threads)
        env["OMP_NUM_THREADS"] = str(args.threads)

    with tempfile.TemporaryDirectory(prefix="sweep_overhead-") as tmp:
        seeds = ",".join(str(seed) for seed in range(1, args.runs + 1))
        common = [f"paths.normalized={data_dir}", f"tracking.uri=sqlite:///{tmp}/mlflow.db", *args.overrides]
        # The store is created once beforehand, as a user's store already exists (a one-off ~2 s).
        timed([sys.executable, "-c", "import mlflow, sys; mlflow.MlflowClient(sys.argv[1]).search_experiments()",
               f"sqlite:///{tmp}/mlflow.db"], env=env)
        start_s = timed([sys.executable, "-c", "import pipeline.train"], env=env)
        sweep_s = timed([sys.executable, "-m", "pipeline.train", "-m", f"seed={seeds}", *common,
                         f"hydra.sweep.dir={tmp}/sweep"], env=env)

    cfg = validate(compose([f"paths.normalized={data_dir}", *args.overrides]))
    o = cfg.optim
    data = bare_loop.load(data_dir, torch.device("cpu"))
    start = time.perf_counter()
    for seed in range(1, args.runs + 1):
        bare_loop.train(data, o.epochs, o.batch_size, o.lr, seed, o.shuffle)
    bare_s = time.perf_counter() - start

    budget = 2 * bare_s + start_s
    print(f"sweep_overhead: {args.runs} jobs, {o.epochs} epochs, batch {o.batch_size}, "
          f"torch threads {torch.get_num_threads()}, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"  Hydra multirun (python -m pipeline.train -m)  {sweep_s:6.2f} s  ({sweep_s / args.runs:.2f} s per job)")
    print(f"  {args.runs} bare trainings                             {bare_s:6.2f} s  ({bare_s / args.runs:.2f} s each)")
    print(f"  one interpreter start (import pipeline.train)  {start_s:6.2f} s")
    print(f"  (multirun - start) / bare = {(sweep_s - start_s) / bare_s:.2f}; "
          f"goal multirun <= 2 x bare + start = {budget:.2f} s: {'met' if sweep_s <= budget else 'NOT met'}")


if __name__ == "__main__":
    main()
