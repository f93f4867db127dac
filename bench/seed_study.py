"""Seed study behind the default fit.epochs=40 (conf/fit/default.yaml): validation accuracy of
the bare loop (the project's training without the framework: same init, batches, loss, SGD)
over seeds 40-49, for a few (epochs, lr) pairs.

    python -m bench.seed_study                 # data/normalized
    python -m bench.seed_study --data DIR --seeds 40 41 42
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

from bench import bare_loop

SETTINGS = [(20, 1.0), (40, 1.0), (20, 2.0), (40, 2.0), (40, 0.5)]  # (epochs, lr)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("data/normalized"), help="normalized MNIST directory")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(40, 50)))
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args(argv)
    if not (args.data / "train_x.npy").is_file():
        sys.exit(f"error: {args.data / 'train_x.npy'}: not found; expected normalized MNIST (or pass --data DIR)")
    data = bare_loop.load(args.data, torch.device("cpu"))
    print(f"seed_study: linear, BCE, SGD, batch {args.batch_size}, shuffled, seeds {args.seeds[0]}-{args.seeds[-1]}")
    print("  epochs   lr    min acc   max acc   mean acc")
    for epochs, lr in SETTINGS:
        accs = [bare_loop.train(data, epochs, args.batch_size, lr, seed)[1] for seed in args.seeds]
        print(f"  {epochs:6d}  {lr:4.1f}   {min(accs):7.2%}   {max(accs):7.2%}   {statistics.mean(accs):8.2%}")


if __name__ == "__main__":
    main()
