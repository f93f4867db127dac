"""What a trained model is measured by: the metric names every module uses, and `score`."""

from __future__ import annotations

import numpy as np
import torch
from torchmetrics.functional.classification import binary_accuracy, binary_confusion_matrix

# Logged once per epoch (the step is the epoch).
TRAIN_LOSS, VAL_LOSS, VAL_ACC, BIAS = "train_loss", "val_loss", "val_acc", "bias"
# Logged once, at the end of training: the final model on the validation set.
FINAL_VAL_ACC, FINAL_VAL_LOSS = "final_val_acc", "final_val_loss"
# What the model cost: seconds in Trainer.fit, and its trainable parameters (0 for pixel_similarity).
FIT_SECONDS, N_PARAMETERS = "fit_seconds", "n_parameters"


def final_val_acc_of(digit: int) -> str:
    return f"{FINAL_VAL_ACC}_{digit}"


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
