"""What a trained model is measured by: `score`, and whether it collapsed to one answer (`collapse`,
`collapse_warning`); the names its metrics are recorded under are metric_names.py."""

from __future__ import annotations

import numpy as np
import torch
from torchmetrics.functional.classification import binary_accuracy

from pipeline.config.errors import PipelineError
from pipeline.config.models import recipe_overrides
from pipeline.model.metric_names import ACC_FIRST, ACC_SECOND

COLLAPSED_SHARE = 0.99  # a model answering one digit for this share of the validation images has collapsed


def collapse(logits: np.ndarray, labels: np.ndarray, digits: list[int]) -> str | None:
    """How a model that answers (nearly) always the same digit does so, e.g. "answers 7 for 2,038 of
    2,038 validation images"; None for a model that tells the digits apart. The digit must also be
    far rarer among the truths than among the answers: data of (nearly) one digit is not a collapse."""
    answers_first = np.asarray(logits).reshape(-1) > 0
    count = len(answers_first)
    for digit, answers, truths in (
        (digits[0], answers_first.sum(), (np.asarray(labels) > 0.5).sum()),
        (digits[1], count - answers_first.sum(), (np.asarray(labels) <= 0.5).sum()),
    ):
        if count and answers >= COLLAPSED_SHARE * count and truths < COLLAPSED_SHARE * count:
            return f"answers {digit} for {int(answers):,} of {count:,} validation images"
    return None


@torch.no_grad()
def score(module, x: torch.Tensor, y: torch.Tensor) -> tuple[dict, np.ndarray]:
    """Loss and accuracy of `module` on (x, y), overall and on each digit (label 1: the first of
    data.digits, 0: the second); and the logits (the confusion matrix is DVC's plot of them)."""
    module.eval()
    logits = module(x)
    probs, target = logits.sigmoid(), y.long()
    return {
        "count": int(len(y)),
        "loss": float(module.loss_fn(logits, y)),
        "acc": float(binary_accuracy(probs, target)),
        ACC_FIRST: float(binary_accuracy(probs[target == 1], target[target == 1])),
        ACC_SECOND: float(binary_accuracy(probs[target == 0], target[target == 0])),
    }, logits.cpu().numpy()


def trainable_parameters(net: torch.nn.Module) -> int:
    """What the model costs in weights: 0 for a network that only observes (pixel_similarity)."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


def collapse_warning(name: str, trained: dict, how: str) -> str:
    """One line: model `name` (`trained` with: config.models.trained_with) collapsed, the likely cause,
    and the recipe it trains well with (conf/model/<name>.yaml)."""
    try:
        back = recipe_overrides(name, trained)
    except PipelineError:  # a model composed from elsewhere than conf/: its own file says its recipe
        back = None
    if back:
        remedy = f"{name} trains well with its own recipe: {' '.join(back)} (conf/model/{name}.yaml)"
    else:
        remedy = f"this is {name}'s own recipe (conf/model/{name}.yaml): try a smaller optim.lr or more epochs"
    return (
        f"the model collapsed: it {how}; likely cause: a learning rate too high for this model "
        f"(optim._target_={trained['optim._target_']} optim.lr={trained['optim.lr']:g}), or too little training; "
        f"{remedy}"
    )
