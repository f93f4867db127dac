"""The CNN search with and without its pruner: wall time and best validation accuracy.

    python -m bench.sweep_pruning --data data/normalized                # as committed: 12 trials, seed 42
    python -m bench.sweep_pruning --data DIR --threads 2 hydra.sweeper.n_trials=6

Runs `python -m pipeline.train -m hparams_search=cnn_optuna` twice, each into a fresh sqlite store:
with the search's pruner (conf/hparams_search/cnn_optuna.yaml), then with `~hydra/sweeper/pruner`
(every trial to its last epoch); same TPE seed, same number of trials. Prints the wall time, the
best accuracy and the trials pruned of each, and the ratios. Goal (issue 26): the pruned search in
<= 60% of the unpruned one's time, its best within the seed spread of the CNN (99.64 +- 0.07%,
bench/RESULTS.md section 8).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from omegaconf import OmegaConf

from bench.sweep_overhead import timed

SEARCH = "hparams_search=cnn_optuna"
VARIANTS = {"pruned": [], "unpruned": ["~hydra/sweeper/pruner"]}


def search(data_dir: Path, overrides: list[str], env: dict) -> tuple[float, dict]:
    """Seconds of one search, from the shell, and its optimization_results.yaml."""
    with tempfile.TemporaryDirectory(prefix="sweep_pruning-") as tmp:
        seconds = timed(
            [
                sys.executable,
                "-m",
                "pipeline.train",
                "-m",
                SEARCH,
                f"paths.normalized={data_dir}",
                f"tracking.uri=sqlite:///{tmp}/mlflow.db",
                f"hydra.sweep.dir={tmp}/sweep",
                *overrides,
            ],
            env=env,
        )
        return seconds, OmegaConf.to_container(OmegaConf.load(f"{tmp}/sweep/optimization_results.yaml"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("data/normalized"), help="normalized MNIST directory")
    parser.add_argument("--threads", type=int, help="torch threads of every job (OMP_NUM_THREADS); default: torch's")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for both searches, e.g. hydra.sweeper.n_trials=6")
    args = parser.parse_args(argv)
    if not (args.data / "train_x.npy").is_file():
        sys.exit(f"error: {args.data / 'train_x.npy'}: not found; expected normalized MNIST (or pass --data DIR)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    loads = [os.getloadavg()[0]]
    measured = {}
    for name, variant in VARIANTS.items():
        measured[name] = search(args.data.resolve(), [*variant, *args.overrides], env)
        loads.append(os.getloadavg()[0])
    print(
        f"sweep_pruning: {SEARCH} {' '.join(args.overrides)}; threads {args.threads or 'torch default'}; "
        f"load average {min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} CPUs"
    )
    print("  search     wall (s)  best val acc  trials  complete  pruned  best params")
    for name, (seconds, results) in measured.items():
        print(
            f"  {name:<9} {seconds:9.1f}  {results['best_value']:12.4f}  {results['n_trials']:6}  "
            f"{results['n_complete']:8}  {results.get('n_pruned', 0):6}  {results['best_params']}"
        )
    (pruned_s, pruned), (unpruned_s, unpruned) = measured["pruned"], measured["unpruned"]
    ratio = pruned_s / unpruned_s
    print(
        f"  pruned / unpruned time: {ratio:.2f} (goal <= 0.60: {'met' if ratio <= 0.60 else 'NOT met'}); "
        f"best accuracy pruned - unpruned: {100 * (pruned['best_value'] - unpruned['best_value']):+.2f} points"
    )


if __name__ == "__main__":
    main()
