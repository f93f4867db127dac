"""Pictures of what the model learned (matplotlib, written to PNG files)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def weights_heatmap(weights: np.ndarray, path: str | Path, digits: list[int], bias: float | None = None) -> Path:
    """The 784 weights as a 28x28 image on a diverging scale centred on 0.

    Red (positive) pixels: ink there raises the logit, evidence for digits[0].
    Blue (negative) pixels: ink there lowers it, evidence for digits[1]. White: ignored.
    """
    weights = np.asarray(weights, np.float64).reshape(28, 28)
    limit = float(np.abs(weights).max()) or 1.0
    fig, ax = plt.subplots(figsize=(4.2, 3.6), dpi=100)
    image = ax.imshow(weights, cmap="RdBu_r", vmin=-limit, vmax=limit)
    fig.colorbar(image, ax=ax, label="weight")
    title = f"red: ink says {digits[0]}, blue: ink says {digits[1]}"
    if bias is not None:
        title += f"\nbias {bias:+.3f}"
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
