"""Stage `filter`: keep two digits (conf `data.digits`), labelled digits[0] -> 1, digits[1] -> 0.

Three splits, fixed by position in MNIST's files, so the same whatever `seed` (MNIST's own
convention, LeCun et al.):

    train   MNIST's training images but the last `data.valid_last` (10,000): the model learns on them
    valid   the last `data.valid_last` training images: every choice (epochs' curves, the collapse
            check, a search's objective and pruner, a sweep's best, the registry gate) is made on them
    test    MNIST's test set (fastbook's `valid` folder): scored once per run, after every choice, for the record

For 3 and 7: 10,276 train, 2,120 valid, 2,038 test. Disjoint by index; and by content: MNIST's
70,000 images are all distinct byte for byte (checked), and the manifest's `identical_images`
counts, for each two splits, the distinct images they share (0 on MNIST; other data may differ).
Written in the format of pipeline/data/filtered.py; `raw_sha256` in its manifest is the hash of the
raw files they came from, which normalize passes on. NumPy only.
"""

from __future__ import annotations

import hashlib
import json
from itertools import combinations
from pathlib import Path

import numpy as np

from pipeline.config.atomic import atomic_directory
from pipeline.config.cli import no_arguments, run_command
from pipeline.config.compose import load_params
from pipeline.config.errors import IdxError
from pipeline.config.schema import Config
from pipeline.data import idx
from pipeline.data.filtered import MANIFEST, SPLITS, images_file, labels_file
from pipeline.data.sources import SPLITS as MNIST_FILES
from pipeline.data.sources import sha256_of


def select_pair(images: np.ndarray, labels: np.ndarray, digits: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Images of the two digits, in their original order, with binary labels."""
    positive, negative = digits
    keep = (labels == positive) | (labels == negative)
    return images[keep], (labels[keep] == positive).astype(np.uint8)


def raw_sha256(raw: Path) -> str:
    """One hash of the four raw MNIST files: the SHA256 of their names and SHA256s."""
    names = sorted(name for _, *pair in MNIST_FILES for name in pair)
    return hashlib.sha256("".join(f"{name} {sha256_of(raw / name)}\n" for name in names).encode()).hexdigest()


def carve(mnist: dict, valid_last: int, train_file: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """MNIST's two splits (name -> (images, labels)) as train, valid (the last `valid_last` training
    images) and test (MNIST's test set); by position only."""
    images, labels = mnist["train"]
    if valid_last >= len(labels):
        raise IdxError(
            f"data.valid_last={valid_last}: expected fewer than the {len(labels):,} training images of {train_file}"
        )
    cut = len(labels) - valid_last
    return {"train": (images[:cut], labels[:cut]), "valid": (images[cut:], labels[cut:]), "test": mnist["test"]}


def identical_images(splits: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, int]:
    """For each two splits, how many distinct images are in both, byte for byte."""
    contents = {
        split: {hashlib.sha256(image.tobytes()).digest() for image in images} for split, (images, _) in splits.items()
    }
    return {f"{a}/{b}": len(contents[a] & contents[b]) for a, b in combinations(splits, 2)}


def filter_digits(cfg: Config) -> dict[str, int]:
    """Every split read and checked first (every digit present), then all written together."""
    raw = Path(cfg.paths.raw)
    digits = list(cfg.data.digits)
    mnist = {}
    for mnist_split, images_name, labels_name in MNIST_FILES:
        images, labels = idx.read(raw / images_name), idx.read(raw / labels_name)
        idx.check_pair(images, labels, str(raw / images_name), str(raw / labels_name))
        mnist[mnist_split] = (images, labels)
    (_, train_images, train_labels), (_, _, test_labels) = MNIST_FILES
    labels_of = {"train": train_labels, "valid": train_labels, "test": test_labels}  # the file, for errors
    outputs = {}
    for split, (images, labels) in carve(mnist, cfg.data.valid_last, raw / train_images).items():
        for digit in digits:
            if not (labels == digit).any():
                raise IdxError(
                    f"{raw / labels_of[split]}: no image of digit {digit}, expected some in the split {split} "
                    f"(data.digits={digits}, data.valid_last={cfg.data.valid_last})"
                )
        outputs[split] = select_pair(images, labels, digits)

    counts = {split: len(labels) for split, (_, labels) in outputs.items()}
    manifest = {
        "digits": digits,
        "valid_last": cfg.data.valid_last,
        "raw_sha256": raw_sha256(raw),
        "counts": counts,
        "identical_images": identical_images(outputs),
        "md5": {},
    }
    with atomic_directory(cfg.paths.filtered) as out:
        for split in SPLITS:
            for name, array in zip((images_file(split), labels_file(split)), outputs[split]):
                np.save(out / name, array)
                manifest["md5"][name] = hashlib.md5((out / name).read_bytes(), usedforsecurity=False).hexdigest()
        (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return counts


def main(argv: list[str] | None = None) -> None:
    no_arguments("python -m pipeline.filter", __doc__, argv)
    print(f"filter: {filter_digits(load_params())}")


if __name__ == "__main__":
    run_command(main)
