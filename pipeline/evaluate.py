"""Stage `evaluate`: the trained model on the test images, with the validation images beside them.

Writes the metrics file: `test` and `valid`, each the loss, accuracy overall and on each digit
(`acc_first` and `acc_second`, the digits of params.yaml's data.digits, so experiments on several
pairs share their columns in `dvc exp show`), and each split's image count; and the test images'
predictions, which DVC draws as the confusion matrix. Every choice was made on `valid` before
(pipeline/filter.py): `test` is the record.
"""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.config.cli import long_lived_imports

with long_lived_imports():  # what it saves: pipeline/config/cli.py
    import numpy as np
    import torch

    from pipeline.config.atomic import atomic_directory, atomic_file, check_writable
    from pipeline.config.cli import no_arguments, run_command
    from pipeline.config.compose import load_params
    from pipeline.config.schema import Config
    from pipeline.data import normalized
    from pipeline.model.classifier import CHECKPOINT, load_checkpoint
    from pipeline.model.metrics import score


def evaluate(cfg: Config) -> dict:
    """Every input read and checked, and the outputs' places checked, before anything is written."""
    data = normalized.read_for(cfg)  # the digits asked for, every split readable
    module = load_checkpoint(Path(cfg.paths.model) / CHECKPOINT)
    digits = data.digits
    for key in ("metrics", "plots"):
        path = Path(getattr(cfg.paths, key))
        check_writable(path.parent, f"paths.{key}={path}", f"set paths.{key} elsewhere")
    valid, _ = score(module, *(torch.as_tensor(a) for a in data.arrays["valid"]))
    (x, y) = data.arrays["test"]
    test, logits = score(module, torch.as_tensor(x), torch.as_tensor(y))
    metrics = {"train": {"count": data.counts["train"]}, "valid": valid, "test": test}

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
    for split, name in (("test", "test"), ("valid", "validation")):
        figures = metrics[split]
        print(f"evaluate: {name} accuracy {figures['acc']:.4f} on {figures['count']:,} images: {json.dumps(figures)}")


if __name__ == "__main__":
    run_command(main)
