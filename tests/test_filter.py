import numpy as np
import pytest

from pipeline.config.errors import IdxError
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


COUNTS = {"train": 57, "valid": 23, "test": 40}  # of 3s and 7s: 250 + 150 training images (valid_last=150), 200 test


def test_filter_writes_three_splits(cfg, tmp_path):
    fetch(cfg)
    counts = filter_digits(cfg)
    assert counts == COUNTS
    manifest, splits = filtered.read(tmp_path / "data/filtered")
    images, labels = splits["train"]
    assert images.shape == (57, 28, 28) and labels.sum() == 29
    assert manifest["digits"] == [3, 7] and manifest["counts"] == counts and manifest["valid_last"] == 150
    assert sorted(p.name for p in (tmp_path / "data/filtered").iterdir()) == [
        "manifest.json",
        *[f"{split}_{kind}.npy" for split in ("test", "train", "valid") for kind in ("images", "labels")],
    ]


def test_valid_is_the_last_training_images_and_test_is_mnists_test_set(cfg, tmp_path):
    """By position in MNIST's files: train the first N - valid_last training images, valid the last
    valid_last, test the test file; each kept in its order, so disjoint by index by construction."""
    from pipeline.data import idx

    fetch(cfg)
    filter_digits(cfg)
    raw = tmp_path / "data/raw"
    train_images, train_labels = idx.read(raw / "train-images-idx3-ubyte"), idx.read(raw / "train-labels-idx1-ubyte")
    test_images, test_labels = idx.read(raw / "t10k-images-idx3-ubyte"), idx.read(raw / "t10k-labels-idx1-ubyte")
    expected = {
        "train": select_pair(train_images[:250], train_labels[:250], [3, 7]),
        "valid": select_pair(train_images[250:], train_labels[250:], [3, 7]),
        "test": select_pair(test_images, test_labels, [3, 7]),
    }
    _, splits = filtered.read(tmp_path / "data/filtered")
    for split, (images, labels) in expected.items():
        assert np.array_equal(splits[split][0], images) and np.array_equal(splits[split][1], labels), split


def test_the_splits_are_the_same_whatever_the_seed(tmp_path, synthetic_idx):
    written = []
    for seed in (0, 1, 12345):
        cfg = make_config(tmp_path, [f"seed={seed}", f"paths.filtered={tmp_path}/filtered-{seed}"])
        fetch(cfg)
        filter_digits(cfg)
        written.append({p.name: p.read_bytes() for p in (tmp_path / f"filtered-{seed}").iterdir()})
    assert written[0] == written[1] == written[2]


def test_no_image_is_in_two_splits_byte_for_byte(cfg, tmp_path):
    fetch(cfg)
    filter_digits(cfg)
    manifest, splits = filtered.read(tmp_path / "data/filtered")
    contents = {split: {image.tobytes() for image in images} for split, (images, _) in splits.items()}
    assert sum(len(c) for c in contents.values()) == sum(COUNTS.values())  # no image twice within a split either
    for a, b in (("train", "valid"), ("train", "test"), ("valid", "test")):
        assert not contents[a] & contents[b], (a, b)
    assert manifest["identical_images"] == {"train/valid": 0, "train/test": 0, "valid/test": 0}


def test_an_image_in_two_splits_is_counted_in_the_manifest(cfg, tmp_path):
    """MNIST's files could hold the same image twice (a 3 of the training set in the test set): the
    splits stay disjoint by index, and the manifest says how many distinct images two splits share."""
    from pipeline.data import idx

    fetch(cfg)
    raw = tmp_path / "data/raw"
    train_images, train_labels = idx.read(raw / "train-images-idx3-ubyte"), idx.read(raw / "train-labels-idx1-ubyte")
    test_images = idx.read(raw / "t10k-images-idx3-ubyte")
    first_three = int(np.flatnonzero(train_labels[:250] == 3)[0])
    test_three = int(np.flatnonzero(idx.read(raw / "t10k-labels-idx1-ubyte") == 3)[0])
    test_images[test_three] = train_images[first_three]
    (raw / "t10k-images-idx3-ubyte").write_bytes(idx.encode(test_images))
    filter_digits(cfg)
    manifest, _ = filtered.read(tmp_path / "data/filtered")
    assert manifest["identical_images"] == {"train/valid": 0, "train/test": 1, "valid/test": 0}
    assert manifest["counts"] == COUNTS


def test_a_validation_split_as_large_as_the_training_set_is_one_line_before_any_file(tmp_path, synthetic_idx):
    cfg = make_config(tmp_path, ["data.valid_last=400"])
    fetch(cfg)
    with pytest.raises(
        IdxError,
        match=r"^data.valid_last=400: expected fewer than the 400 training images of .*train-images-idx3-ubyte$",
    ):
        filter_digits(cfg)
    assert not (tmp_path / "data/filtered").exists()


def test_a_validation_split_of_no_images_is_refused_by_the_configuration(tmp_path, synthetic_idx):
    from pipeline.config.errors import ConfigError

    with pytest.raises(ConfigError, match=r"^data.valid_last=0: expected an integer >= 1$"):
        make_config(tmp_path, ["data.valid_last=0"])


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
    assert filter_digits(cfg) == {"train": 48, "valid": 32, "test": 40}


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
    assert splits["train"][1].tolist() == [int(d == 8) for d in raw_labels[:250] if d in (1, 8)]
    assert manifest["digits"] == [8, 1]
