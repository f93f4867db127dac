import numpy as np
import pytest

from pipeline.data import filtered
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
    assert counts == {"train": 80, "valid": 40}  # labels cycle 0..9
    manifest, splits = filtered.read(tmp_path / "data/filtered")
    images, labels = splits["train"]
    assert images.shape == (80, 28, 28) and labels.sum() == 40
    assert manifest["digits"] == [3, 7] and manifest["counts"] == counts
    assert sorted(p.name for p in (tmp_path / "data/filtered").iterdir()) == [
        "manifest.json",
        "train_images.npy",
        "train_labels.npy",
        "valid_images.npy",
        "valid_labels.npy",
    ]


def test_outputs_are_plain_npy_whose_bytes_depend_only_on_the_arrays(cfg, tmp_path):
    """No zip container (its headers differ between Python patch versions, and so would dvc.lock):
    each file is exactly NumPy's .npy encoding of its array."""
    import io

    fetch(cfg)
    filter_digits(cfg)
    _, splits = filtered.read(tmp_path / "data/filtered")
    for split, arrays in splits.items():
        for name, array in zip((filtered.images_file(split), filtered.labels_file(split)), arrays):
            encoded = io.BytesIO()
            np.lib.format.write_array(encoded, array, version=(1, 0), allow_pickle=False)
            assert (tmp_path / "data/filtered" / name).read_bytes() == encoded.getvalue()


def test_other_digit_pair(tmp_path, synthetic_idx):
    cfg = make_config(tmp_path, ["data.digits=[1,8]"])
    fetch(cfg)
    assert filter_digits(cfg) == {"train": 80, "valid": 40}


def params_file(cfg, tmp_path, digits):
    """params.yaml as `make params` writes it, with data.digits set to anything (even invalid)."""
    from omegaconf import OmegaConf

    container = OmegaConf.to_container(OmegaConf.structured(cfg), enum_to_str=True)
    container["data"]["digits"] = digits
    (tmp_path / "params.yaml").write_text(OmegaConf.to_yaml(container))


@pytest.mark.parametrize(
    "digits",
    [[3, 3], [3, 10], [-1, 7], [3], [3, 7, 1], []],
)
def test_bad_digits_stop_the_stage_before_any_file_is_written(cfg, tmp_path, digits):
    import subprocess
    import sys

    from tests.conftest import REPO

    fetch(cfg)
    filter_digits(cfg)
    before = {p.name: p.read_bytes() for p in (tmp_path / "data/filtered").iterdir()}
    params_file(cfg, tmp_path, digits)
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.filter"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [f"error: data.digits={digits}: expected two distinct digits in 0..9"]
    assert {p.name: p.read_bytes() for p in (tmp_path / "data/filtered").iterdir()} == before


def test_absent_digit_is_an_error_before_any_file_is_written(cfg, tmp_path, synthetic_idx, monkeypatch):
    from pipeline.data import idx

    fetch(cfg)
    filter_digits(cfg)
    before = {p.name: p.read_bytes() for p in (tmp_path / "data/filtered").iterdir()}
    labels_path = tmp_path / "data/raw/t10k-labels-idx1-ubyte"  # no 7 in the test split only
    labels = idx.read(labels_path)
    labels_path.write_bytes(idx.encode(np.where(labels == 7, 1, labels).astype(np.uint8)))

    writes = []
    monkeypatch.setattr(np, "save", lambda *args, **kwargs: writes.append(args))
    with pytest.raises(idx.IdxError, match=f"^{labels_path}: no image of digit 7, expected some"):
        filter_digits(cfg)
    assert writes == []  # not even the train split, whose 7s are there
    assert {p.name: p.read_bytes() for p in (tmp_path / "data/filtered").iterdir()} == before
    assert not list(tmp_path.glob("data/.*partial*"))


def test_any_pair_of_digits_labels_the_first_one(tmp_path, synthetic_idx):
    cfg = make_config(tmp_path, ["data.digits=[8,1]"])
    fetch(cfg)
    filter_digits(cfg)
    from pipeline.data import idx

    raw_labels = idx.read(tmp_path / "data/raw/train-labels-idx1-ubyte")
    manifest, splits = filtered.read(tmp_path / "data/filtered")
    assert splits["train"][1].tolist() == [int(d == 8) for d in raw_labels if d in (1, 8)]
    assert manifest["digits"] == [8, 1]
