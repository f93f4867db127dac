"""Explainer artifacts logged with each run: what the model computes, on real validation images.

linear: the contribution map w * x of a few validation images of each digit, with the
resulting logit and the bias (why multiplying works), and the bias after each epoch.
pixel_similarity: its two templates (the mean images) as data and as a picture.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from pipeline.report.figures import bias_trajectory, contribution_maps, templates_figure

EXAMPLES_PER_DIGIT = 3


def example_indices(labels: np.ndarray, per_digit: int = EXAMPLES_PER_DIGIT) -> np.ndarray:
    """The first `per_digit` images of digits[0] (label 1), then of digits[1]: the same every run."""
    first = np.flatnonzero(labels > 0.5)[:per_digit]
    second = np.flatnonzero(labels <= 0.5)[:per_digit]
    return np.concatenate([first, second])


def write_explainers(
    module, valid_x: torch.Tensor, valid_y: torch.Tensor, digits: list[int], out_dir: Path
) -> list[Path]:
    """Write the model's explainer files to out_dir; return their paths (to log as artifacts)."""
    written: list[Path] = []
    weights = module.pixel_weights()
    if weights is not None:
        labels = valid_y.cpu().numpy()
        chosen = example_indices(labels)
        images = valid_x.cpu().numpy()[chosen]
        written.append(
            contribution_maps(images, weights, module.bias(), labels[chosen], digits, out_dir / "contributions.png")
        )
        history = [row for row in module.history if "bias" in row]
        if history:
            written.append(
                bias_trajectory(
                    [row["epoch"] for row in history], [row["bias"] for row in history], out_dir / "bias.png"
                )
            )
    templates = module.templates()
    if templates is not None:
        np.save(out_dir / "templates.npy", templates)
        written += [out_dir / "templates.npy", templates_figure(templates, digits, out_dir / "templates.png")]
    return written
