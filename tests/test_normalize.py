import json

import numpy as np
import pytest

from pipeline.config.errors import PipelineError
from pipeline.data import normalized as normalized_data
from pipeline.fetch import fetch
from pipeline.filter import filter_digits
from pipeline.normalize import normalize, scale


def test_scale_maps_uint8_to_unit_interval():
    images = np.array([[[0, 255], [51, 102]]], np.uint8)
    assert scale(images).dtype == np.float32
    assert np.allclose(scale(images), [[0.0, 1.0, 0.2, 0.4]])


def test_scale_refuses_floats():
    with pytest.raises(PipelineError, match="expected uint8"):
        scale(np.zeros((1, 2, 2), np.float32))


def test_normalize_writes_arrays_and_stats(cfg, tmp_path):
    fetch(cfg)
    filter_digits(cfg)
    stats = normalize(cfg)
    data = normalized_data.read(tmp_path / "data/normalized")
    x, y = data.arrays["train"]
    assert x.shape == (57, 784) and x.dtype == np.float32 and x.min() >= 0 and x.max() <= 1
    assert data.digits == [3, 7] and y.sum() == 29
    assert json.loads((tmp_path / "data/normalized/stats.json").read_text()) == stats
    assert stats["valid"]["count"] == 23 and stats["test"]["count"] == 40 and stats["train"]["count_3"] == 29
    assert stats["train"]["pixel_mean"] == pytest.approx(float(x.mean()), rel=1e-6)


@pytest.mark.parametrize("damage", ["float_images", "missing_valid"])
def test_bad_input_leaves_the_previous_output_intact(normalized, tmp_path, damage):
    previous = {p.name: p.read_bytes() for p in (tmp_path / "data/normalized").iterdir()}
    filtered = tmp_path / "data/filtered"
    if damage == "float_images":
        np.save(filtered / "valid_images.npy", np.load(filtered / "valid_images.npy").astype(np.float32))
    else:
        (filtered / "valid_images.npy").unlink()
    with pytest.raises((PipelineError, FileNotFoundError)):
        normalize(normalized)
    assert {p.name: p.read_bytes() for p in (tmp_path / "data/normalized").iterdir()} == previous
    assert not list(tmp_path.glob("data/.*partial*"))
