"""What a training writes to its output directory (`models/` under DVC): the checkpoint, the
per-epoch history, each validation and test image's logit, and the pictures of what the model learned
(linear: the weights as data and as a picture, weight x pixel on real images, the bias per epoch;
pixel_similarity: its templates). All of it is written before any record that can fail (MLflow):
the model is on disk whatever happens to the store afterwards."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytorch_lightning as pl

from pipeline.config.atomic import atomic_directory
from pipeline.model.classifier import CHECKPOINT, DigitClassifier
from pipeline.model.pictures import bias_trajectory, contribution_maps, templates_figure, weights_heatmap
from pipeline.model.predictions import FILE as PREDICTIONS
from pipeline.model.predictions import TEST_FILE as TEST_PREDICTIONS
from pipeline.model.predictions import write_predictions

EXAMPLES_PER_DIGIT = 3
HISTORY = "history.csv"


def example_indices(labels: np.ndarray, per_digit: int = EXAMPLES_PER_DIGIT) -> np.ndarray:
    """The first `per_digit` images of digits[0] (label 1), then of digits[1]: the same every run."""
    first = np.flatnonzero(labels > 0.5)[:per_digit]
    second = np.flatnonzero(labels <= 0.5)[:per_digit]
    return np.concatenate([first, second])


def write_history(module: DigitClassifier, path: Path) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, list(dict.fromkeys(key for row in module.history for key in row)))
        writer.writeheader()
        writer.writerows(module.history)
    return path


def write_pictures(
    module: DigitClassifier, valid_x: np.ndarray, valid_y: np.ndarray, digits: list[int], out_dir: Path
) -> list[Path]:
    """What the model learned, as data and pictures (only what this kind of model has)."""
    written: list[Path] = []
    weights = module.pixel_weights()
    if weights is not None:
        np.save(out_dir / "weights.npy", weights)
        written += [out_dir / "weights.npy", weights_heatmap(weights, out_dir / "weights.png", digits, module.bias())]
        chosen = example_indices(valid_y)
        written.append(
            contribution_maps(
                valid_x[chosen], weights, module.bias(), valid_y[chosen], digits, out_dir / "contributions.png"
            )
        )
        biases = [row for row in module.history if "bias" in row]
        if biases:
            epochs, values = [row["epoch"] for row in biases], [row["bias"] for row in biases]
            written.append(bias_trajectory(epochs, values, out_dir / "bias.png"))
    templates = module.templates()
    if templates is not None:
        np.save(out_dir / "templates.npy", templates)
        written += [out_dir / "templates.npy", templates_figure(templates, digits, out_dir / "templates.png")]
    return written


def write_outputs(
    trainer: pl.Trainer, module: DigitClassifier, out_dir: Path, *, digits: list[int], valid: tuple, test: tuple
) -> list[Path]:
    """Write everything to out_dir; return the files a run records as artifacts (all but the
    checkpoint: the run records the model in its served form). `valid` and `test`: each split's
    (images, labels, logits); the test split scored once, after every choice."""
    out_dir.mkdir(parents=True, exist_ok=True)
    trainer.save_checkpoint(out_dir / CHECKPOINT, weights_only=True)
    (valid_x, valid_y, valid_logits), (_, test_y, test_logits) = valid, test
    return [
        write_history(module, out_dir / HISTORY),
        write_predictions(out_dir / PREDICTIONS, valid_logits, valid_y),
        write_predictions(out_dir / TEST_PREDICTIONS, test_logits, test_y),
        *write_pictures(module, valid_x, valid_y, digits, out_dir),
    ]


@contextmanager
def replaced_outputs(out_dir: Path) -> Iterator[Path]:
    """A scratch directory that replaces out_dir, and so the previous training's outputs, all at once
    when the block succeeds. DVC keeps `models/` while the train stage runs (`persist: true` in
    dvc.yaml): a refused value or a failed training leaves the previous model whole, and a model
    without weights.npy (mlp) leaves none behind. Hydra's own files of this run (`.hydra/`, the job
    log, open for writing: a rename keeps the handle) move into the new directory."""
    with atomic_directory(out_dir) as scratch:
        yield scratch
        for entry in [*out_dir.glob(".hydra"), *out_dir.glob("*.log")]:
            entry.rename(scratch / entry.name)
