"""The per-image predictions each run logs, and reading them back: `predictions.csv` on the
validation split (what a choice may read) and `test_predictions.csv` on the test split (the record:
the report's accuracies and McNemar's tests, never a choice).

One row per image, in the split's order: index (0-based), label (1: digits[0], 0: digits[1]) and
the model's logit (> 0 says digits[0]). Two runs scored on the same images pair up row by row,
which is what McNemar's test needs (the report's significance.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

FILE = "predictions.csv"  # validation
TEST_FILE = "test_predictions.csv"  # test
HEADER = "index,label,logit"


def write_predictions(path: str | Path, logits, labels) -> Path:
    """Write `path` from a split's logits and 0/1 labels; return it."""
    logits = np.asarray(logits, np.float64).reshape(-1)
    labels = np.asarray(labels).reshape(-1)
    if len(logits) != len(labels):
        raise ValueError(f"{len(logits)} logits for {len(labels)} labels")
    rows = "".join(f"{i},{int(label > 0.5)},{logit:.9g}\n" for i, (label, logit) in enumerate(zip(labels, logits)))
    Path(path).write_text(f"{HEADER}\n{rows}")
    return Path(path)


def read_predictions(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(labels, logits) from a predictions file; ValueError naming the file if it is not one."""
    with open(path) as f:
        header = f.readline().strip()
    if header != HEADER:
        raise ValueError(f"{path}: expected the header '{HEADER}', got '{header}'")
    table = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    if len(table) and not np.array_equal(table[:, 0], np.arange(len(table))):
        raise ValueError(f"{path}: expected rows indexed 0, 1, 2, ... in order")
    return table[:, 1].astype(np.int64), table[:, 2]


def correct(labels: np.ndarray, logits: np.ndarray) -> np.ndarray:
    """Per image: did the model say the right digit (logit > 0 for label 1, <= 0 for label 0)."""
    return (np.asarray(logits) > 0) == (np.asarray(labels) > 0.5)
