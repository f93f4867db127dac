import numpy as np
import pytest

from pipeline.fetch import fetch
from pipeline.filter import filter_digits, select_pair
from tests.conftest import make_config


def test_select_pair_keeps_order_and_labels_first_digit_one():
    labels = np.array([7, 1, 3, 7, 3, 0], np.uint8)
    images = np.arange(6, dtype=np.uint8).reshape(6, 1, 1) * np.ones((6, 28, 28), np.uint8)
    kept, binary = select_pair(images, labels, [3, 7])
    assert kept[:, 0, 0].tolist() == [0, 2, 3, 4]
    assert binary.tolist() == [0, 1, 0, 1]


def test_filter_writes_both_splits(cfg, tmp_path):
    fetch(cfg)
    counts = filter_digits(cfg)
    assert counts == {"train.npz": 80, "valid.npz": 40}  # labels cycle 0..9
    with np.load(tmp_path / "data/filtered/train.npz") as split:
        assert split["images"].shape == (80, 28, 28) and split["labels"].sum() == 40
        assert split["digits"].tolist() == [3, 7]


def test_other_digit_pair(tmp_path, synthetic_idx):
    cfg = make_config(tmp_path, ["data.digits=[1,8]"])
    fetch(cfg)
    assert filter_digits(cfg) == {"train.npz": 80, "valid.npz": 40}
