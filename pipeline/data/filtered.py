"""The filtered data on disk (written by the filter stage, read by normalize): for each split
(train, valid, test: pipeline/filter.py) `{split}_images.npy` (uint8 (N, 28, 28)) and
`{split}_labels.npy` (uint8, 1 for digits[0]), and `manifest.json` (`digits`, `valid_last`, each
split's `count`, `raw_sha256` of the raw files, `identical_images` across splits, each file's
`md5`). Plain .npy files: their bytes depend only on the arrays (see normalized.py); the MD5s
catch a damaged file. NumPy only."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np

from pipeline.config.errors import InputError

SPLITS = ("train", "valid", "test")  # pipeline/filter.py says what each is
MANIFEST = "manifest.json"
REMAKE = "remake it with `dvc repro filter`"


def images_file(split: str) -> str:
    return f"{split}_images.npy"


def labels_file(split: str) -> str:
    return f"{split}_labels.npy"


def read(directory: str | Path) -> tuple[dict, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """The manifest and each split's (images, labels); one line naming a missing or bad file."""
    directory = Path(directory)
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
        contents = {
            name(split): (directory / name(split)).read_bytes()
            for split in SPLITS
            for name in (images_file, labels_file)
        }
        for name, data in contents.items():
            if hashlib.md5(data, usedforsecurity=False).hexdigest() != manifest["md5"][name]:
                raise InputError(
                    f"{directory / name}: damaged: its MD5 is not the one filter wrote ({MANIFEST}); {REMAKE}"
                )
        splits = {
            split: tuple(
                np.load(io.BytesIO(contents[name(split)]), allow_pickle=False) for name in (images_file, labels_file)
            )
            for split in SPLITS
        }
    except FileNotFoundError as err:
        raise InputError(f"{err.filename}: missing; {REMAKE}") from None
    except (OSError, ValueError, KeyError) as err:
        raise InputError(f"{directory}: not what filter writes ({str(err).splitlines()[0]}); {REMAKE}") from None
    for split, (images, labels) in splits.items():
        if images.dtype != np.uint8 or images.shape[1:] != (28, 28) or labels.shape != (len(images),):
            raise InputError(
                f"{directory / images_file(split)}: {images.dtype} {list(images.shape)} with "
                f"{list(labels.shape)} labels, expected uint8 [N, 28, 28] and [N]; {REMAKE}"
            )
    return manifest, splits
