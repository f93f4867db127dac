"""The CNN search with and without its pruner: wall time and best validation accuracy.

    python -m bench.sweep_pruning --data data/normalized                # as committed: 12 trials, seed 42
    python -m bench.sweep_pruning --data DIR --threads 2 hydra.sweeper.n_trials=6

Runs `python -m pipeline.train -m hparams_search=cnn_optuna` twice, each into a fresh sqlite store:
with the search's pruner (conf/hparams_search/cnn_optuna.yaml), then with `~hydra/sweeper/pruner`
(every trial to its last epoch); same TPE seed, same number of trials. Prints for each its wall
time, its CPU seconds and the epochs its trials ran (both less at the mercy of a busy machine than
wall time), its best accuracy and the trials pruned, and the ratios. The two searches' trials
differ once a trial is pruned (TPE learns from it). Goal (issue 26): the pruned search in <= 60% of
the unpruned one's time, its best within the seed spread of the CNN (99.64 +- 0.07%,
bench/RESULTS.md, "Learner sweeps and the report").
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
from pathlib import Path

from mlflow import MlflowClient
from omegaconf import OmegaConf

from bench.sweep_overhead import jobs_env, timed

SEARCH = "hparams_search=cnn_optuna"
VARIANTS = {"pruned": [], "unpruned": ["~hydra/sweeper/pruner"]}


def epochs_trained(store: str) -> int:
    """The epochs every trial of the search ran (their runs' val_acc histories)."""
    client = MlflowClient(store)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    return sum(len(client.get_metric_history(run.info.run_id, "val_acc")) for run in runs)


def search(data_dir: Path, overrides: list[str], env: dict) -> tuple[float, float, int, dict]:
    """Wall and CPU seconds of one search (from the shell: the sweep and its jobs), the epochs its
    trials ran, and its optimization_results.yaml."""
    with tempfile.TemporaryDirectory(prefix="sweep_pruning-") as tmp:
        cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
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
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu_s = after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime
        results = OmegaConf.to_container(OmegaConf.load(f"{tmp}/sweep/optimization_results.yaml"))
        return seconds, cpu_s, epochs_trained(f"sqlite:///{tmp}/mlflow.db"), results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("data/normalized"), help="normalized MNIST directory")
    parser.add_argument("--threads", type=int, help="torch threads of every job (OMP_NUM_THREADS); default: torch's")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for both searches, e.g. hydra.sweeper.n_trials=6")
    args = parser.parse_args(argv)
    env = jobs_env(args.data, args.threads)
    loads = [os.getloadavg()[0]]
    measured = {}
    for name, variant in VARIANTS.items():
        measured[name] = search(args.data.resolve(), [*variant, *args.overrides], env)
        loads.append(os.getloadavg()[0])
    print(
        f"sweep_pruning: {SEARCH} {' '.join(args.overrides)}; threads {args.threads or 'torch default'}; "
        f"load average {min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} CPUs"
    )
    print("  search     wall (s)  CPU (s)  epochs  best val acc  trials  complete  pruned  best params")
    for name, (seconds, cpu_s, epochs, results) in measured.items():
        print(
            f"  {name:<9} {seconds:9.1f}  {cpu_s:7.1f}  {epochs:6}  {results['best_value']:12.4f}  "
            f"{results['n_trials']:6}  {results['n_complete']:8}  {results['n_pruned']:6}  {results['best_params']}"
        )
    (pruned_s, pruned_cpu, pruned_epochs, pruned), (unpruned_s, unpruned_cpu, unpruned_epochs, unpruned) = (
        measured["pruned"],
        measured["unpruned"],
    )
    ratio = pruned_s / unpruned_s
    print(
        f"  pruned / unpruned: wall {ratio:.2f} (goal <= 0.60: {'met' if ratio <= 0.60 else 'NOT met'}), "
        f"CPU {pruned_cpu / unpruned_cpu:.2f}, epochs {pruned_epochs / unpruned_epochs:.2f}; "
        f"best accuracy pruned - unpruned: {100 * (pruned['best_value'] - unpruned['best_value']):+.2f} points"
    )


if __name__ == "__main__":
    main()
