"""Input files read whole or refused in one line naming the file, what is wrong, and the remaking
command; the data's identity checked against the configuration; runs that lie about their data."""

import json
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from pipeline import inputs
from pipeline.inputs import InputError

REMAKE = "remake it with `dvc repro`, or restore the committed version with `dvc checkout {}`"


def refusal(call) -> str:
    with pytest.raises(InputError) as raised:
        call()
    message = str(raised.value)
    assert "\n" not in message
    return message


def test_a_normalized_split_is_read_with_its_digits(normalized):
    x, y, digits = inputs.read_split(normalized.paths.normalized, "train.npz")
    assert x.shape == (80, 784) and x.dtype == np.float32 and y.shape == (80,) and digits == [3, 7]


@pytest.mark.parametrize(
    "damage, what",
    [
        (lambda path: path.unlink(), "missing"),
        (lambda path: path.write_bytes(path.read_bytes()[:10_000]), "truncated or corrupt (File is not a zip file)"),
        (lambda path: path.write_bytes(b""), "truncated or corrupt (No data left in file)"),
        (lambda path: path.write_text("x,y\n1,2\n"), "not a NumPy .npz file"),
    ],
)
def test_a_damaged_split_is_named_with_the_command_that_remakes_it(normalized, damage, what):
    directory = Path(normalized.paths.normalized)
    damage(directory / "train.npz")
    message = refusal(lambda: inputs.read_split(directory, "train.npz"))
    assert message.startswith(f"{directory / 'train.npz'}: {what}")
    assert message.endswith(REMAKE.format(directory))


def test_a_flipped_byte_inside_the_pixels_is_found_by_the_zip_checksum(normalized):
    path = Path(normalized.paths.normalized) / "train.npz"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # the middle of x: the zip's directory at the end is intact
    path.write_bytes(bytes(data))
    assert "truncated or corrupt (Bad CRC-32 for file 'x.npy')" in refusal(
        lambda: inputs.read_split(path.parent, path.name)
    )


def test_an_npz_without_the_normalized_arrays_is_refused(tmp_path):
    np.savez(tmp_path / "train.npz", images=np.zeros((2, 28, 28), np.uint8), labels=np.zeros(2, np.uint8))
    assert "no x, y, digits in it" in refusal(lambda: inputs.read_split(tmp_path, "train.npz"))
    np.savez(tmp_path / "train.npz", x=np.zeros((2, 28, 28), np.uint8), y=np.zeros(2), digits=[3, 7])
    assert "expected float32 x [N, 784]" in refusal(lambda: inputs.read_split(tmp_path, "train.npz"))


def test_the_identity_says_what_normalize_made(normalized):
    identity = inputs.check_identity(normalized)
    stats = json.loads((Path(normalized.paths.normalized) / "stats.json").read_text())
    assert identity.digits == [3, 7] and identity.counts == {"train": 80, "valid": 40}
    assert identity.raw_sha256 == stats["raw_sha256"] and len(identity.raw_sha256) == 64
    assert identity.as_params() == {
        "data.raw_sha256": stats["raw_sha256"],
        "data.count.train": 80,
        "data.count.valid": 40,
    }


def test_data_of_another_digit_pair_is_refused_with_the_ways_out(normalized):
    asked = replace(normalized, data=replace(normalized.data, digits=[4, 9]))
    assert refusal(lambda: inputs.check_identity(asked)) == (
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
        hashes.append(inputs.read_identity(cfg.paths.normalized).raw_sha256)
    assert hashes[0] != hashes[1]


@pytest.mark.parametrize(
    "edit, what",
    [
        (lambda stats: "{not json", "stats.json: not valid JSON"),
        (lambda stats: json.dumps({k: v for k, v in stats.items() if k != "digits"}), "stats.json: no digits in it"),
        (
            lambda stats: json.dumps({**stats, "digits": [4, 9]}),
            "train.npz: holds 80 images of digits [3, 7], but stats.json says 80 of [4, 9]",
        ),
        (lambda stats: json.dumps({**stats, "valid": {**stats["valid"], "count": 41}}), "valid.npz: holds 40 images"),
    ],
)
def test_stats_json_that_does_not_describe_the_splits_is_refused(normalized, edit, what):
    path = Path(normalized.paths.normalized) / "stats.json"
    path.write_text(edit(json.loads(path.read_text())))
    message = refusal(lambda: inputs.read_identity(path.parent))
    assert what in message and message.endswith(REMAKE.format(path.parent))


def test_a_missing_or_damaged_checkpoint_is_named(normalized, tmp_path):
    from pipeline.train import train

    models = tmp_path / "models"
    train(normalized, models)
    checkpoint = models / "model.ckpt"
    assert inputs.load_model(checkpoint).pixel_weights().shape == (784,)
    checkpoint.write_bytes(checkpoint.read_bytes()[:300])
    message = refusal(lambda: inputs.load_model(checkpoint))
    assert message.startswith(f"{checkpoint}: not a readable model checkpoint (")
    assert message.endswith(REMAKE.format(models))
    checkpoint.unlink()
    assert refusal(lambda: inputs.load_model(checkpoint)) == f"{checkpoint}: missing; " + REMAKE.format(models)


def recorded_run(claimed: str, trained_on: list[str]):
    datasets = [SimpleNamespace(dataset=SimpleNamespace(name=name)) for name in trained_on]
    return SimpleNamespace(
        data=SimpleNamespace(params={"data.digits": claimed}),
        inputs=SimpleNamespace(dataset_inputs=datasets),
        info=SimpleNamespace(run_id="abc123", run_name="capable-auk-759"),
    )


def test_a_run_whose_datasets_contradict_its_digits_is_refused():
    honest = recorded_run("[3, 7]", [inputs.dataset_name([3, 7], "train"), inputs.dataset_name([3, 7], "valid")])
    inputs.check_recorded_data([honest, recorded_run("[3, 7]", [])])  # no datasets: nothing to contradict
    liar = recorded_run("[3, 7]", ["mnist-4-vs-9-train", "mnist-4-vs-9-valid"])
    assert refusal(lambda: inputs.check_recorded_data([honest, liar])) == (
        "MLflow run abc123 (capable-auk-759) says data.digits=[3, 7] but trained on mnist-4-vs-9-train, "
        "mnist-4-vs-9-valid: its metrics are not of [3, 7]; delete it (mlflow runs delete --run-id abc123) "
        "and train again"
    )
