"""Stage `evaluate`: the trained model on the validation images.

Writes the metrics file (validation loss, accuracy overall and on each digit: `acc_first` and
`acc_second`, the digits of params.yaml's data.digits, so experiments on several pairs share their
columns in `dvc exp show`) and the per-image predictions DVC draws as the confusion matrix.
"""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.config.startup import long_lived_imports

with long_lived_imports():  # what it saves: pipeline/config/startup.py
    import numpy as np
    import torch

    from pipeline.config.atomic import atomic_directory, atomic_file
    from pipeline.config.cli import no_arguments, run_command
    from pipeline.config.compose import load_params
    from pipeline.config.schema import Config
    from pipeline.config.writable import check_writable
    from pipeline.data import normalized
    from pipeline.model.classifier import CHECKPOINT, load_checkpoint
    from pipeline.model.metrics import score


def evaluate(cfg: Config) -> dict:
    """Every input read and checked, and the outputs' places checked, before anything is written."""
    data = normalized.read_for(cfg)  # the digits asked for, every split readable
    module = load_checkpoint(Path(cfg.paths.model) / CHECKPOINT)
    (x, y), digits = data.arrays["valid"], data.digits
    for key in ("metrics", "plots"):
        path = Path(getattr(cfg.paths, key))
        check_writable(path.parent, f"paths.{key}={path}", f"set paths.{key} elsewhere")
    train_count = data.counts["train"]
    valid, logits = score(module, torch.as_tensor(x), torch.as_tensor(y))
    metrics = {"train": {"count": train_count}, "valid": valid}

    with atomic_directory(cfg.paths.plots) as plots:
        truth = np.where(y > 0.5, digits[0], digits[1])
        predicted = np.where(logits > 0, digits[0], digits[1])
        rows = "\n".join(f"{t},{p}" for t, p in zip(truth, predicted))
        (plots / "predictions.csv").write_text("actual,predicted\n" + rows + "\n")
    with atomic_file(cfg.paths.metrics) as tmp:
        tmp.write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def main(argv: list[str] | None = None) -> None:
    no_arguments("python -m pipeline.evaluate", __doc__, argv)
    metrics = evaluate(load_params())
    print(f"evaluate: {json.dumps(metrics['valid'])}")


if __name__ == "__main__":
    run_command(main)
