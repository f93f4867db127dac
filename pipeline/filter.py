"""Stage `filter`: keep two digits (conf `data.digits`), labelled digits[0] -> 1, digits[1] -> 0.

MNIST's training set becomes `train.npz`, its test set `valid.npz` (fastbook's validation
set), each with uint8 `images` (N, 28, 28) and uint8 `labels`, the `digits`, and `raw_sha256`:
the hash of the raw files they came from, which normalize passes on (pipeline/inputs.py). NumPy only.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from pipeline import idx
from pipeline.atomic import atomic_directory
from pipeline.cli import no_arguments, run_stage
from pipeline.config import Config, load_params
from pipeline.sources import SPLITS, sha256_of

OUTPUT_OF_SPLIT = {"train": "train.npz", "test": "valid.npz"}


def select_pair(images: np.ndarray, labels: np.ndarray, digits: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Images of the two digits, in their original order, with binary labels."""
    positive, negative = digits
    keep = (labels == positive) | (labels == negative)
    return images[keep], (labels[keep] == positive).astype(np.uint8)


def raw_sha256(raw: Path) -> str:
    """One hash of the four raw MNIST files: the SHA256 of their names and SHA256s."""
    names = sorted(name for _, *pair in SPLITS for name in pair)
    return hashlib.sha256("".join(f"{name} {sha256_of(raw / name)}\n" for name in names).encode()).hexdigest()


def filter_digits(cfg: Config) -> dict[str, int]:
    """Both splits read and checked first (every digit present), then written together."""
    raw = Path(cfg.paths.raw)
    digits = list(cfg.data.digits)
    outputs = {}
    for split, images_name, labels_name in SPLITS:
        images, labels = idx.read(raw / images_name), idx.read(raw / labels_name)
        idx.check_pair(images, labels, str(raw / images_name), str(raw / labels_name))
        for digit in digits:
            if not (labels == digit).any():
                raise idx.IdxError(
                    f"{raw / labels_name}: no image of digit {digit}, expected some (data.digits={digits})"
                )
        outputs[OUTPUT_OF_SPLIT[split]] = select_pair(images, labels, digits)

    source = np.str_(raw_sha256(raw))
    with atomic_directory(cfg.paths.filtered) as out:
        for name, (kept_images, kept_labels) in outputs.items():
            np.savez(
                out / name,
                images=kept_images,
                labels=kept_labels,
                digits=np.asarray(digits, np.uint8),
                raw_sha256=source,
            )
    return {name: len(kept_labels) for name, (_, kept_labels) in outputs.items()}


def main(argv: list[str] | None = None) -> None:
    no_arguments("python -m pipeline.filter", __doc__, argv)
    print(f"filter: {filter_digits(load_params())}")


if __name__ == "__main__":
    run_stage(main)
