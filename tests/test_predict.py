"""pipeline/predict/cli.py, the CLI, on pictures of drawn digits (tests/drawn_digits.py) and on bad files,
with a linear model trained on drawn digits and registered as the champion in a temporary store."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest
from mlflow import MlflowClient
from omegaconf import OmegaConf
from PIL import Image

from pipeline.predict import cli as predict
from pipeline.tracking import registry
from tests.conftest import REPO, make_config
from tests.served_fixtures import LINEAR, MLP, DrawnDigits, fit, log_run, logits, sqlite_uri

LINE = re.compile(r"^(?P<file>.+): (?P<digit>\d) \(p\(3\) = (?P<p>[0-9.]+)\)  model (?P<model>.+)$")
SAMPLE = 200


@pytest.fixture(scope="module")
def champion(tmp_path_factory):
    """A linear model on drawn digits, registered as threes-sevens-3-7@champion; its validation images."""
    uri = sqlite_uri(tmp_path_factory.mktemp("predict"))
    data = DrawnDigits()
    net = fit(LINEAR, data.train_x, data.train_y)
    run_id, model_uri = log_run(uri, net, LINEAR, data.valid_x)
    registry.register_and_gate(
        MlflowClient(uri), run_id, model_uri, "threes-sevens-3-7", digest="digest", val_acc=1.0, val_loss=0.0
    )
    return {"uri": uri, "model_uri": model_uri, "data": data, "net": net}


@pytest.fixture
def tracking(champion, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", champion["uri"])
    return champion


def write(pixels: np.ndarray, path, scale: int = 1, invert: bool = False, mode: str = "L") -> str:
    """A 784-pixel image written as a picture file: scaled up, inverted (dark ink on white), RGB."""
    image = Image.fromarray(np.rint(pixels.reshape(28, 28) * 255).astype(np.uint8))
    if invert:
        image = Image.fromarray(255 - np.asarray(image))
    if scale > 1:
        image = image.resize((28 * scale, 28 * scale), Image.Resampling.BICUBIC)
    image.convert(mode).save(path)
    return str(path)


def run(capsys, *argv) -> tuple[int, list[dict], list[str]]:
    """predict's exit status, its answers (file, digit, p, model) and its error lines."""
    try:
        status = predict.run([str(a) for a in argv])
    except SystemExit as exit:  # the command wrapper: one error line, exit status 1
        status = exit.code
    out, err = capsys.readouterr()
    answers = [LINE.match(line).groupdict() for line in out.splitlines() if not line.startswith("explained:")]
    return status, answers, err.splitlines()


def test_validation_images_round_trip_through_png(tracking, tmp_path, capsys):
    x = tracking["data"].valid_x[:SAMPLE]
    files = [write(pixels, tmp_path / f"{i}.png") for i, pixels in enumerate(x)]
    status, answers, errors = run(capsys, *files, "--model-uri", tracking["model_uri"])
    assert status == 0 and errors == [] and [a["file"] for a in answers] == files
    z = logits(tracking["net"], x)
    assert [int(a["digit"]) for a in answers] == np.where(z > 0, 3, 7).tolist()
    assert np.allclose([float(a["p"]) for a in answers], 1 / (1 + np.exp(-z)), atol=0.002)  # 3 decimals printed


@pytest.mark.parametrize(
    "variant",
    [
        {"scale": 4},
        {"invert": True},
        {"mode": "RGB", "suffix": ".jpg"},
        {"scale": 4, "invert": True, "mode": "RGB", "suffix": ".jpg"},
    ],
    ids=["scaled x4", "inverted", "RGB JPEG", "all three"],
)
def test_scaled_inverted_and_jpeg_pictures_are_still_read_right(tracking, tmp_path, capsys, variant):
    x, y = tracking["data"].valid_x[:SAMPLE], tracking["data"].valid_y[:SAMPLE]
    variant = dict(variant)
    suffix = variant.pop("suffix", ".png")
    files = [write(pixels, tmp_path / f"{i}{suffix}", **variant) for i, pixels in enumerate(x)]
    status, answers, _ = run(capsys, *files, "--model-uri", tracking["model_uri"])
    truth = np.where(y > 0.5, 3, 7)
    assert status == 0 and len(answers) == SAMPLE
    assert np.mean([int(a["digit"]) for a in answers] == truth) >= 0.95


def test_bad_files_get_one_error_line_each_and_the_others_are_answered(tracking, tmp_path, capsys):
    good = [write(tracking["data"].valid_x[i], tmp_path / f"good{i}.png") for i in range(2)]
    (tmp_path / "notes.png").write_text("not a picture\n")
    (tmp_path / "empty.jpg").write_bytes(b"")
    Image.new("L", (40, 30), 255).save(tmp_path / "blank.png")
    bad = [tmp_path / "notes.png", tmp_path / "empty.jpg", tmp_path / "blank.png", tmp_path / "missing.png"]
    status, answers, errors = run(capsys, good[0], *bad, good[1], "--model-uri", tracking["model_uri"])
    assert status == 1
    assert [a["file"] for a in answers] == good
    assert len(errors) == len(bad)
    for path, line in zip(bad, errors):
        assert line.startswith(f"error: {path}: ")
    assert "empty file" in errors[1] and "no ink" in errors[2]


def test_the_champion_of_params_yaml_answers_by_default_and_is_named(champion, tmp_path, capsys):
    cfg = make_config(tmp_path, [f"tracking.uri={champion['uri']}"])
    OmegaConf.save(OmegaConf.structured(cfg), tmp_path / "params.yaml")  # predict reads ./params.yaml
    file = write(champion["data"].valid_x[0], tmp_path / "digit.png")
    status, [answer], _ = run(capsys, file)
    assert status == 0 and answer["model"] == "threes-sevens-3-7 v1 (champion)"


def test_no_registered_model_is_one_error_line(champion, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", champion["uri"])
    file = write(champion["data"].valid_x[0], tmp_path / "digit.png")
    status, answers, errors = run(capsys, file, "--model-uri", "models:/threes-sevens-1-8@champion")
    assert status == 1 and answers == [] and len(errors) == 1
    assert errors[0].startswith("error: models:/threes-sevens-1-8@champion: cannot load the model")


def test_no_tracking_database_is_one_error_line_and_creates_none(champion, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", sqlite_uri(tmp_path))
    file = write(champion["data"].valid_x[0], tmp_path / "digit.png")
    status, answers, errors = run(capsys, file, "--model-uri", "models:/threes-sevens-3-7@champion")
    assert status == 1 and answers == [] and len(errors) == 1 and "no MLflow database" in errors[0]
    assert not (tmp_path / "mlflow.db").exists()


def test_explain_writes_what_the_linear_model_saw_and_weighed(tracking, tmp_path, capsys):
    files = [write(tracking["data"].valid_x[i], tmp_path / f"{i}.png") for i in range(3)]
    status, answers, _ = run(capsys, *files, "--model-uri", tracking["model_uri"], "--explain", tmp_path / "why.png")
    assert status == 0 and len(answers) == 3
    with Image.open(tmp_path / "why.png") as figure:
        assert figure.format == "PNG" and figure.width > figure.height  # a column per picture


def test_explain_refuses_a_model_without_pixel_weights(tracking, tmp_path, capsys):
    data = tracking["data"]
    _, mlp_uri = log_run(tracking["uri"], fit(MLP, data.train_x, data.train_y, steps=5), MLP, data.valid_x)
    file = write(data.valid_x[0], tmp_path / "digit.png")
    capsys.readouterr()  # what logging the model printed
    status, answers, errors = run(capsys, file, "--model-uri", mlp_uri, "--explain", tmp_path / "why.png")
    assert status == 1 and answers == [] and "not a linear model" in errors[0]
    assert not (tmp_path / "why.png").exists()


def test_help_describes_the_command():
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.predict", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0 and "IMAGE" in done.stdout and "--model-uri" in done.stdout
    assert "--explain" in done.stdout
