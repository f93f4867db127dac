"""The bare PyTorch loop the benchmarks measure the project against.

It does the project's work per epoch with no framework: the same data on the same device,
the same seeded per-epoch permutation and index-sliced batches (pipeline/data/datamodule.py), the
same initial weights (nn.Linear after seeding), BCE on the logit, SGD, one validation pass, and
the four per-epoch figures read back to the host (train_loss, val_loss, val_acc, bias).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


def load(directory: str | Path, device: torch.device, scale: int = 1):
    """(train_x, train_y, valid_x, valid_y) on `device`; the training set repeated `scale` times."""
    tensors = []
    for split in ("train", "valid"):
        path = Path(directory) / f"{split}_x.npy"
        if not path.is_file():
            raise SystemExit(f"error: {path}: not found; expected normalized MNIST (run `dvc repro normalize`)")
        x, y = np.load(path), np.load(Path(directory) / f"{split}_y.npy")
        if split == "train" and scale > 1:
            x, y = np.tile(x, (scale, 1)), np.tile(y, scale)
        tensors += [torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)]
    return tuple(tensors)


def train(data, epochs: int, batch_size: int, lr: float, seed: int, shuffle: bool = True):
    """Train the linear model; return (wall and CPU seconds at the end of each epoch, final
    validation accuracy, the trained net)."""
    x, y, valid_x, valid_y = data
    torch.manual_seed(seed)
    net = nn.Linear(x.shape[1], 1).to(x.device)
    optimizer = torch.optim.SGD(net.parameters(), lr=lr)
    ends, accuracy = [], None
    for epoch in range(epochs):
        order = None
        if shuffle:
            order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed + epoch)).to(x.device)
        loss_sum = torch.zeros((), device=x.device)
        for start in range(0, len(y), batch_size):
            if order is None:
                xb, yb = x[start : start + batch_size], y[start : start + batch_size]
            else:
                rows = order[start : start + batch_size]
                xb, yb = x.index_select(0, rows), y.index_select(0, rows)
            loss = F.binary_cross_entropy_with_logits(net(xb).squeeze(-1), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach() * len(yb)
        with torch.no_grad():
            logits = net(valid_x).squeeze(-1)
            val_loss = F.binary_cross_entropy_with_logits(logits, valid_y)
            val_acc = ((logits > 0) == (valid_y > 0.5)).float().mean()
        # Read the epoch's figures back to the host, as the project does to log them.
        _, _, accuracy, _ = float(loss_sum / len(y)), float(val_loss), float(val_acc), float(net.bias.detach()[0])
        ends.append((time.perf_counter(), time.process_time()))
    return ends, accuracy, net


def main(argv: list[str] | None = None) -> None:
    """As a whole process: load, train, save the weights (what `python -m pipeline.train` does,
    without a framework, a configuration or a record)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench.bare_loop", description=main.__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("data/normalized"))
    parser.add_argument("--out", type=Path, required=True, help="directory for weights.npy")
    parser.add_argument("--epochs", type=int, default=40)
    args = parser.parse_args(argv)
    data = load(args.data, torch.device("cpu"))
    _, accuracy, net = train(data, args.epochs, batch_size=256, lr=1.0, seed=42)
    args.out.mkdir(parents=True, exist_ok=True)
    np.save(args.out / "weights.npy", net.weight.detach().cpu().numpy().ravel())
    print(f"bare_loop: validation accuracy {accuracy:.4f}")


if __name__ == "__main__":
    main()
