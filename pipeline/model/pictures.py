"""Pictures of what a trained model learned, written by every training run (matplotlib, to PNG files):
the weights, weight x pixel on real images, the bias per epoch, the templates. Also the two helpers
every figure of the project is drawn with (`subplots`, `save`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure


def subplots(*args, figsize: tuple[float, float], dpi: int = 100, **kwargs):
    """A figure and its axes, like pyplot.subplots but without pyplot: no backend, no global state
    (matplotlib's own advice for figures that only go to files)."""
    fig = Figure(figsize=figsize, dpi=dpi)
    return fig, fig.subplots(*args, **kwargs)


def save(fig: Figure, path: str | Path) -> Path:
    """Write the figure to `path` (its directory created if needed)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return Path(path)


def weights_heatmap(weights: np.ndarray, path: str | Path, digits: list[int], bias: float | None = None) -> Path:
    """The 784 weights as a 28x28 image on a diverging scale centred on 0.

    Red (positive) pixels: ink there raises the logit, evidence for digits[0].
    Blue (negative) pixels: ink there lowers it, evidence for digits[1]. White: ignored.
    """
    weights = np.asarray(weights, np.float64).reshape(28, 28)
    limit = float(np.abs(weights).max()) or 1.0
    fig, ax = subplots(figsize=(4.2, 3.6), dpi=100)
    image = ax.imshow(weights, cmap="RdBu_r", vmin=-limit, vmax=limit)
    fig.colorbar(image, ax=ax, label="weight")
    title = f"red: ink says {digits[0]}, blue: ink says {digits[1]}"
    if bias is not None:
        title += f"\nbias {bias:+.3f}"
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.subplots_adjust(left=0.02, right=0.88, bottom=0.04, top=0.86)  # fixed: tight_layout costs a third of the figure
    return save(fig, path)


def _blank_axes(ax) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


TILE_GAP = 6  # pixels between the tiles of a montage


def montage(tiles: np.ndarray) -> np.ndarray:
    """28x28 tiles side by side in one image, NaN (drawn blank) between them."""
    step = 28 + TILE_GAP
    strip = np.full((28, len(tiles) * step - TILE_GAP), np.nan)
    for i, tile in enumerate(tiles):
        strip[:, i * step : i * step + 28] = tile.reshape(28, 28)
    return strip


def contribution_maps(
    images: np.ndarray, weights: np.ndarray, bias: float | None, labels: np.ndarray, digits: list[int], path: str | Path
) -> Path:
    """Why multiplying works: for each image, its pixels (top) and w * x per pixel (bottom).

    The logit is the sum of the bottom map plus the bias: red pixels push it up (towards
    digits[0]), blue ones down (towards digits[1]); blank pixels (x = 0) contribute nothing.
    Each row is one image strip: matplotlib's cost is per axes, and a sweep draws this every run.
    """
    images = np.asarray(images, np.float64).reshape(len(images), 784)
    contributions = images * np.asarray(weights, np.float64).reshape(1, 784)
    limit = float(np.abs(contributions).max()) or 1.0
    bias_value = 0.0 if bias is None else bias
    bias_text = "no bias" if bias is None else f"bias {bias_value:+.2f}"
    fig, (top, bottom) = subplots(2, 1, figsize=(2.1 * len(images), 5.0), dpi=100)
    top.imshow(montage(images), cmap="gray_r", vmin=0, vmax=1)
    shown = bottom.imshow(montage(contributions), cmap="RdBu_r", vmin=-limit, vmax=limit)
    for column, (contribution, label) in enumerate(zip(contributions, labels)):
        centre = column * (28 + TILE_GAP) + 13.5
        truth = digits[0] if label > 0.5 else digits[1]
        logit = float(contribution.sum()) + bias_value
        said = digits[0] if logit > 0 else digits[1]
        top.text(centre, -1.5, f"a real {truth}", ha="center", va="bottom", fontsize=9)
        bottom.text(
            centre,
            -1.5,
            f"sum w*x {contribution.sum():+.2f}\n{bias_text}\nlogit {logit:+.2f}: says {said}",
            ha="center",
            va="bottom",
            fontsize=8,
        )
    top.set_axis_off()
    bottom.set_axis_off()
    fig.colorbar(shown, ax=[top, bottom], label="w * x", shrink=0.5, anchor=(0.0, 0.1))  # both rows keep one width
    fig.suptitle(f"pixels (top) and weight * pixel (bottom): red says {digits[0]}, blue says {digits[1]}", fontsize=10)
    return save(fig, path)


def bias_trajectory(epochs: list[int], biases: list[float], path: str | Path) -> Path:
    """The bias after each training epoch."""
    fig, ax = subplots(figsize=(4.5, 3.0), dpi=100)
    ax.plot(epochs, biases, marker="o", markersize=3)
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_xlabel("epoch")
    ax.set_ylabel("bias")
    ax.set_title("bias after each epoch", fontsize=9)
    fig.subplots_adjust(left=0.2, right=0.96, bottom=0.17, top=0.9)
    return save(fig, path)


def templates_figure(templates: np.ndarray, digits: list[int], path: str | Path) -> Path:
    """pixel_similarity's "weights": the mean image of each digit and their difference."""
    templates = np.asarray(templates, np.float64).reshape(2, 28, 28)
    difference = templates[0] - templates[1]
    limit = float(np.abs(difference).max()) or 1.0
    fig, axes = subplots(1, 3, figsize=(9.0, 3.2), dpi=100)
    for ax, template, digit in zip(axes, templates, digits):
        ax.imshow(template, cmap="gray_r", vmin=0, vmax=1)
        ax.set_title(f"mean {digit}", fontsize=9)
    shown = axes[2].imshow(difference, cmap="RdBu_r", vmin=-limit, vmax=limit)
    axes[2].set_title(f"mean {digits[0]} - mean {digits[1]}", fontsize=9)
    fig.colorbar(shown, ax=axes[2])
    for ax in axes:
        _blank_axes(ax)
    fig.tight_layout()
    return save(fig, path)
