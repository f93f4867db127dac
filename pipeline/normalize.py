"""Stage `normalize`: pixels /255 to float32 in 0..1, flattened to 784 columns.

Reads filter's splits (pipeline/data/filtered.py) and writes, per split, `{split}_x.npy` (float32
(N, 784)) and `{split}_y.npy` (float32 (N,)), and `stats.json`: what the data is (`digits`,
`valid_last` and `raw_sha256` of the raw files it came from, each split's `count` and each array file's `md5`:
pipeline/data/normalized.py checks them), class balance, pixel mean and std. NumPy only.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

from pipeline.config.atomic import atomic_directory
from pipeline.config.cli import no_arguments, run_command
from pipeline.config.compose import load_params
from pipeline.config.errors import InputError
from pipeline.config.schema import Config
from pipeline.data import filtered
from pipeline.data.normalized import STATS, x_file, y_file


def scale(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) -> float32 (N, 784) in 0..1."""
    if images.dtype != np.uint8:
        raise InputError(f"images are {images.dtype}, expected uint8 pixels")
    return (images.reshape(len(images), -1) / np.float32(255)).astype(np.float32)


def normalize(cfg: Config) -> dict:
    manifest, splits = filtered.read(cfg.paths.filtered)
    digits = manifest["digits"]
    stats = {"digits": digits, "valid_last": manifest["valid_last"], "raw_sha256": manifest["raw_sha256"], "md5": {}}
    with atomic_directory(cfg.paths.normalized) as out:
        for split, (images, labels) in splits.items():
            x, y = scale(images), labels.astype(np.float32)
            for name, array in ((x_file(split), x), (y_file(split), y)):
                np.save(out / name, array)
                stats["md5"][name] = hashlib.md5((out / name).read_bytes(), usedforsecurity=False).hexdigest()
            stats[split] = {
                "count": int(len(y)),
                f"count_{digits[0]}": int(y.sum()),
                f"count_{digits[1]}": int(len(y) - y.sum()),
                "pixel_mean": float(x.mean(dtype=np.float64)),
                "pixel_std": float(x.std(dtype=np.float64)),
                "pixel_min": float(x.min()),
                "pixel_max": float(x.max()),
            }
        (out / STATS).write_text(json.dumps(stats, indent=2) + "\n")
    return stats


def main(argv: list[str] | None = None) -> None:
    no_arguments("python -m pipeline.normalize", __doc__, argv)
    print(f"normalize: {json.dumps(normalize(load_params()))}")


if __name__ == "__main__":
    run_command(main)
