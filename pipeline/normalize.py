"""Stage `normalize`: pixels /255 to float32 in 0..1, flattened to 784 columns.

Writes `train.npz` and `valid.npz` (float32 `x` (N, 784), float32 `y` (N,), `digits`)
and `stats.json`: what the data is (`digits`, `raw_sha256` of the raw files it came from, each
split's `count`: pipeline/inputs.py checks it), class balance, pixel mean and std. NumPy only.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pipeline.atomic import atomic_directory
from pipeline.cli import no_arguments, run_stage
from pipeline.config import Config, load_params
from pipeline.errors import PipelineError

SPLIT_FILES = ("train.npz", "valid.npz")


def scale(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) -> float32 (N, 784) in 0..1."""
    if images.dtype != np.uint8:
        raise PipelineError(f"images are {images.dtype}, expected uint8 pixels")
    return (images.reshape(len(images), -1) / np.float32(255)).astype(np.float32)


def normalize(cfg: Config) -> dict:
    stats = {}
    with atomic_directory(cfg.paths.normalized) as out:
        for name in SPLIT_FILES:
            path = Path(cfg.paths.filtered) / name
            with np.load(path) as split:
                x, y, digits = scale(split["images"]), split["labels"].astype(np.float32), split["digits"]
                stats.update(digits=[int(d) for d in digits], raw_sha256=str(split["raw_sha256"]))
            np.savez(out / name, x=x, y=y, digits=digits)
            stats[name.removesuffix(".npz")] = {
                "count": int(len(y)),
                f"count_{int(digits[0])}": int(y.sum()),
                f"count_{int(digits[1])}": int(len(y) - y.sum()),
                "pixel_mean": float(x.mean(dtype=np.float64)),
                "pixel_std": float(x.std(dtype=np.float64)),
                "pixel_min": float(x.min()),
                "pixel_max": float(x.max()),
            }
        (out / "stats.json").write_text(json.dumps(stats, indent=2) + "\n")
    return stats


def main(argv: list[str] | None = None) -> None:
    no_arguments("python -m pipeline.normalize", __doc__, argv)
    print(f"normalize: {json.dumps(normalize(load_params()))}")


if __name__ == "__main__":
    run_stage(main)
