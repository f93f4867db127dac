"""Stage `evaluate`: the trained model on the validation images.

Writes the metrics file (loss, accuracy overall and per digit, confusion matrix) and the
DVC plots: per-image predictions (for the confusion matrix) and the weights heatmap.
"""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.startup import long_lived_imports

with long_lived_imports():  # pipeline/startup.py
    import numpy as np
    import torch
    from torchmetrics.functional.classification import binary_accuracy, binary_confusion_matrix

    from pipeline import inputs
    from pipeline.atomic import atomic_directory, atomic_file
    from pipeline.config import Config, load_params, run_stage
    from pipeline.writable import check_writable

CHECKPOINT = "model.ckpt"


@torch.no_grad()
def score(module, x: torch.Tensor, y: torch.Tensor, digits: list[int]) -> tuple[dict, np.ndarray]:
    """Loss, accuracy (overall and per digit), confusion matrix of `module` on (x, y); and the logits."""
    module.eval()
    logits = module(x)
    probs, target = logits.sigmoid(), y.long()
    confusion = binary_confusion_matrix(probs, target).cpu().numpy()  # rows: true 0, 1
    positive, negative = digits
    return {
        "count": int(len(y)),
        "loss": float(module.loss_fn(logits, y)),
        "acc": float(binary_accuracy(probs, target)),
        f"acc_{positive}": float(binary_accuracy(probs[target == 1], target[target == 1])),
        f"acc_{negative}": float(binary_accuracy(probs[target == 0], target[target == 0])),
        # confusion[true digit][predicted digit]
        "confusion": {
            str(positive): {str(positive): int(confusion[1, 1]), str(negative): int(confusion[1, 0])},
            str(negative): {str(positive): int(confusion[0, 1]), str(negative): int(confusion[0, 0])},
        },
    }, logits.cpu().numpy()


def evaluate(cfg: Config) -> dict:
    """Every input read and checked, and the outputs' places checked, before anything is written."""
    from pipeline.figures import weights_heatmap

    identity = inputs.check_identity(cfg)  # the digits asked for, every split readable
    module = inputs.load_model(Path(cfg.paths.model) / CHECKPOINT)
    x, y, digits = inputs.read_split(cfg.paths.normalized, "valid.npz")
    for key in ("metrics", "plots"):
        path = Path(getattr(cfg.paths, key))
        check_writable(path.parent, f"paths.{key}={path}", f"set paths.{key} elsewhere")
    train_count = identity.counts["train"]
    valid, logits = score(module, torch.tensor(x), torch.tensor(y), digits)
    metrics = {"train": {"count": train_count}, "valid": valid}

    with atomic_directory(cfg.paths.plots) as plots:
        truth = np.where(y > 0.5, digits[0], digits[1])
        predicted = np.where(logits > 0, digits[0], digits[1])
        rows = "\n".join(f"{t},{p}" for t, p in zip(truth, predicted))
        (plots / "predictions.csv").write_text("actual,predicted\n" + rows + "\n")
        weights = module.pixel_weights()
        if weights is not None:
            weights_heatmap(weights, plots / "weights.png", digits, module.bias())
    with atomic_file(cfg.paths.metrics) as tmp:
        tmp.write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def main() -> None:
    metrics = evaluate(load_params())
    print(f"evaluate: {json.dumps(metrics['valid'])}")


if __name__ == "__main__":
    run_stage(main)
