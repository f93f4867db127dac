"""Parallel against sequential sweeps: the same N-job Hydra multirun of the real training app,
run one job after the other in the sweep's process (Hydra's basic launcher) and two at a time
(`hydra/launcher=joblib hydra.launcher.n_jobs=2`), the parallel one both writing the sqlite file
directly (the default) and through a tracking server started for the sweep
(`hydra.callbacks.mlflow_sweep.server=true`).

    python -m bench.parallel_sweep                              # 4 jobs x 40 epochs, data/normalized
    python -m bench.parallel_sweep --jobs 4 --repeats 2 fit.epochs=40

Each multirun is timed from the shell, into a sqlite store created beforehand (as a user's store
already exists), the variants interleaved so a busy spell on a shared machine hits all of them.
Goal (issue 13): the parallel sweep no slower than the sequential one on a 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

from bench.sweep_overhead import jobs_env, multirun_seconds

VARIANTS = {  # name: the launcher's overrides
    "sequential": [],  # Hydra's basic launcher, jobs in the sweep's process
    "joblib-server": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "hydra.callbacks.mlflow_sweep.server=true"],
    "joblib-direct": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "hydra.callbacks.mlflow_sweep.server=false"],
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("data/normalized"), help="normalized MNIST directory")
    parser.add_argument("--jobs", type=int, default=4, help="jobs in the sweep (seeds 1..N)")
    parser.add_argument("--repeats", type=int, default=1, help="repeats of every variant (median)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="which of them, comma-separated")
    parser.add_argument("--threads", type=int, help="torch threads of every job (OMP_NUM_THREADS); default: torch's")
    parser.add_argument("overrides", nargs="*", default=["fit.epochs=40"], help="Hydra overrides for every job")
    args = parser.parse_args(argv)
    env = jobs_env(args.data, args.threads)
    names = args.variants.split(",")
    if any(name not in VARIANTS for name in names):
        sys.exit(f"error: --variants {args.variants}: expected some of: {','.join(VARIANTS)}")
    times: dict[str, list[float]] = {name: [] for name in names}
    print(
        f"parallel_sweep: {args.jobs} jobs, {' '.join(args.overrides)}, OMP_NUM_THREADS="
        f"{env.get('OMP_NUM_THREADS', 'unset')}, {os.cpu_count()} CPUs",
        flush=True,
    )
    for _ in range(args.repeats):
        for name in names:
            times[name].append(
                multirun_seconds(args.jobs, args.data.resolve(), [*VARIANTS[name], *args.overrides], env)
            )
            print(f"  {name:13} {times[name][-1]:7.1f} s  (load average {os.getloadavg()[0]:.1f})", flush=True)
    median = {name: statistics.median(seconds) for name, seconds in times.items()}
    print(f"medians of {args.repeats}: " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in median.items()))
    if "sequential" in median:
        for name in names:
            print(f"  sequential / {name} = {median['sequential'] / median[name]:.2f}")


if __name__ == "__main__":
    main()
