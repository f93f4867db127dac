"""MNIST from a directory of the four IDX files (each may be gzipped), e.g. a manual download."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.config.errors import FetchError
from pipeline.data import idx
from pipeline.data.sources import SPLITS


def read_idx_dir(directory: Path, shown_as: dict[str, str] | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The four MNIST IDX files in `directory`, checked; errors name each file as `shown_as` says
    (e.g. the URL it was downloaded from), else by its path."""
    shown_as = shown_as or {}

    def load(name: str) -> tuple[np.ndarray, str]:
        for candidate in (directory / name, directory / f"{name}.gz"):
            if candidate.is_file():
                shown = shown_as.get(name, str(candidate))
                return idx.read(candidate, shown), shown
        raise FetchError(f"{directory / name}: not found (nor {name}.gz)")

    arrays = {}
    for split, images_name, labels_name in SPLITS:
        (images, images_shown), (labels, labels_shown) = load(images_name), load(labels_name)
        idx.check_pair(images, labels, images_shown, labels_shown)
        arrays[split] = (images, labels)
    return arrays
