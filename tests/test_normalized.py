"""The normalized data read once, whole, or refused in one line naming the file, what is wrong and
the remaking command; its identity checked against the configuration."""

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from pipeline.config.errors import InputError
from pipeline.data import normalized as data

REMAKE = "remake it with `dvc repro`, or restore the committed version with `dvc checkout {}`"


def refusal(call) -> str:
    with pytest.raises(InputError) as raised:
        call()
    message = str(raised.value)
    assert "\n" not in message
    return message


def test_the_splits_are_read_with_their_digits_counts_and_file_hashes(normalized):
    read = data.read(normalized.paths.normalized)
    x, y = read.arrays["train"]
    assert x.shape == (57, 784) and x.dtype == np.float32 and y.shape == (57,) and read.digits == [3, 7]
    directory = Path(normalized.paths.normalized)
    assert sorted(read.md5) == sorted(p.name for p in directory.iterdir())
    assert len({read.digest(split) for split in ("train", "valid", "test")}) == 3


def test_each_file_is_opened_once(normalized, monkeypatch):
    """A run reads its inputs once: the arrays and every MD5 come from the same bytes."""
    opened = []
    original = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: opened.append(self.name) or original(self))
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: pytest.fail(f"{self} read again as text"))
    data.read(normalized.paths.normalized)
    assert sorted(opened) == sorted(set(opened)) == sorted(p.name for p in Path(normalized.paths.normalized).iterdir())


@pytest.mark.parametrize(
    "damage, what",
    [
        (lambda path: path.unlink(), "missing"),
        (lambda path: path.write_bytes(path.read_bytes()[:10_000]), "damaged: its MD5 is not the"),
        (lambda path: path.write_bytes(b""), "damaged: its MD5 is not the"),
    ],
)
def test_a_damaged_split_is_named_with_the_command_that_remakes_it(normalized, damage, what):
    directory = Path(normalized.paths.normalized)
    damage(directory / "train_x.npy")
    message = refusal(lambda: data.read(directory))
    assert message.startswith(f"{directory / 'train_x.npy'}: {what}")
    assert message.endswith(REMAKE.format(directory))


def test_a_flipped_byte_inside_the_pixels_is_found_by_its_md5(normalized):
    path = Path(normalized.paths.normalized) / "train_x.npy"
    damaged = bytearray(path.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF  # a pixel: the file still parses as an array
    path.write_bytes(bytes(damaged))
    assert "train_x.npy: damaged: its MD5 is not the" in refusal(lambda: data.read(path.parent))


def rewrite(path: Path, array: np.ndarray) -> None:
    """Replace an array file and record its new MD5, as a normalize of other data would."""
    np.save(path, array)
    stats_path = path.parent / "stats.json"
    stats = json.loads(stats_path.read_text())
    stats["md5"][path.name] = hashlib.md5(path.read_bytes()).hexdigest()
    stats_path.write_text(json.dumps(stats))


def test_arrays_of_the_wrong_shape_or_type_are_refused(normalized):
    directory = Path(normalized.paths.normalized)
    rewrite(directory / "train_x.npy", np.zeros((80, 28, 28), np.uint8))
    assert "train_x.npy: uint8 [80, 28, 28]; expected float32 [N, 784]" in refusal(lambda: data.read(directory))
    rewrite(directory / "train_x.npy", np.zeros((57, 784), np.float32))
    rewrite(directory / "train_y.npy", np.zeros(56, np.float32))
    assert "train_y.npy: shape [56]; expected [57]" in refusal(lambda: data.read(directory))


def test_a_pickled_array_is_never_loaded(normalized):
    directory = Path(normalized.paths.normalized)
    rewrite(directory / "train_y.npy", np.array([object()] * 80))
    assert "not a NumPy .npy file (Object arrays cannot be loaded when allow_pickle=False)" in refusal(
        lambda: data.read(directory)
    )


def test_the_identity_says_what_normalize_made(normalized):
    read = data.read_for(normalized)
    stats = json.loads((Path(normalized.paths.normalized) / "stats.json").read_text())
    assert read.digits == [3, 7] and read.counts == {"train": 57, "valid": 23, "test": 40}
    assert read.raw_sha256 == stats["raw_sha256"] and len(read.raw_sha256) == 64
    counts = {"data.count.train": 57, "data.count.valid": 23, "data.count.test": 40}
    assert read.as_params() == {"data.valid_last": 150, "data.raw_sha256": stats["raw_sha256"], **counts}


def test_data_of_another_digit_pair_is_refused_with_the_ways_out(normalized):
    asked = replace(normalized, data=replace(normalized.data, digits=[4, 9]))
    assert refusal(lambda: data.read_for(asked)) == (
        f"{normalized.paths.normalized} holds digits [3, 7]; the configuration asks for [4, 9]: run dvc repro "
        "(or dvc exp apply / dvc checkout), or pass data.digits=[3,7]"
    )


def test_the_raw_hash_changes_with_the_raw_data(tmp_path):
    from pipeline.fetch import fetch
    from pipeline.filter import filter_digits
    from pipeline.normalize import normalize
    from tests.conftest import make_config, write_idx_dir

    hashes = []
    for n_train in (400, 410):
        write_idx_dir(tmp_path / str(n_train) / "idx", n_train=n_train)
        cfg = make_config(tmp_path / str(n_train))
        fetch(cfg), filter_digits(cfg), normalize(cfg)
        hashes.append(data.read(cfg.paths.normalized).raw_sha256)
    assert hashes[0] != hashes[1]


@pytest.mark.parametrize(
    "edit, what",
    [
        (lambda stats: "{not json", "stats.json: not valid JSON"),
        (lambda stats: json.dumps({k: v for k, v in stats.items() if k != "digits"}), "stats.json: no digits in it"),
        (lambda stats: json.dumps({**stats, "valid": {**stats["valid"], "count": 41}}), "valid_x.npy: holds 23 images"),
    ],
)
def test_stats_json_that_does_not_describe_the_splits_is_refused(normalized, edit, what):
    path = Path(normalized.paths.normalized) / "stats.json"
    path.write_text(edit(json.loads(path.read_text())))
    message = refusal(lambda: data.read(path.parent))
    assert what in message and message.endswith(REMAKE.format(path.parent))


def test_a_missing_or_damaged_checkpoint_is_named(normalized, tmp_path):
    from pipeline.model.classifier import load_checkpoint
    from pipeline.train import train

    models = tmp_path / "models"
    train(normalized, models)
    checkpoint = models / "model.ckpt"
    assert load_checkpoint(checkpoint).pixel_weights().shape == (784,)
    checkpoint.write_bytes(checkpoint.read_bytes()[:300])
    message = refusal(lambda: load_checkpoint(checkpoint))
    assert message.startswith(f"{checkpoint}: not a readable model checkpoint (")
    assert message.endswith(REMAKE.format(models))
    checkpoint.unlink()
    assert refusal(lambda: load_checkpoint(checkpoint)) == f"{checkpoint}: missing; " + REMAKE.format(models)
