"""Stage `filter`: keep two digits (conf `data.digits`), labelled digits[0] -> 1, digits[1] -> 0.

MNIST's training set becomes the split `train`, its test set `valid` (fastbook's validation set),
in the format of pipeline/data/filtered.py; `raw_sha256` in its manifest is the hash of the raw
files they came from, which normalize passes on. NumPy only.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from pipeline.config.atomic import atomic_directory
from pipeline.config.cli import no_arguments, run_command
from pipeline.config.compose import load_params
from pipeline.config.errors import IdxError
from pipeline.config.schema import Config
from pipeline.data import idx
from pipeline.data.filtered import MANIFEST, images_file, labels_file
from pipeline.data.sources import SPLITS, sha256_of

SPLIT_OF_MNIST = {"train": "train", "test": "valid"}


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
    for mnist_split, images_name, labels_name in SPLITS:
        images, labels = idx.read(raw / images_name), idx.read(raw / labels_name)
        idx.check_pair(images, labels, str(raw / images_name), str(raw / labels_name))
        for digit in digits:
            if not (labels == digit).any():
                raise IdxError(f"{raw / labels_name}: no image of digit {digit}, expected some (data.digits={digits})")
        outputs[SPLIT_OF_MNIST[mnist_split]] = select_pair(images, labels, digits)

    counts = {split: len(labels) for split, (_, labels) in outputs.items()}
    manifest = {"digits": digits, "raw_sha256": raw_sha256(raw), "counts": counts, "md5": {}}
    with atomic_directory(cfg.paths.filtered) as out:
        for split, (images, labels) in outputs.items():
            for name, array in ((images_file(split), images), (labels_file(split), labels)):
                np.save(out / name, array)
                manifest["md5"][name] = hashlib.md5((out / name).read_bytes(), usedforsecurity=False).hexdigest()
        (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return counts


def main(argv: list[str] | None = None) -> None:
    no_arguments("python -m pipeline.filter", __doc__, argv)
    print(f"filter: {filter_digits(load_params())}")


if __name__ == "__main__":
    run_command(main)
