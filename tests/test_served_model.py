"""pipeline/tracking/served_model.py: the pyfunc loaded in-process, and served by MLflow's own scoring server
(`mlflow models serve`) on loopback, with good and bad requests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from pipeline.tracking import registry
from tests.conftest import REPO
from tests.served_fixtures import LINEAR, MLP, DrawnDigits, fit, log_run, logits, sqlite_uri

NAME = "threes-sevens-3-7"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A linear model trained on drawn digits, logged and registered as the champion."""
    directory = tmp_path_factory.mktemp("served")
    uri = sqlite_uri(directory)
    data = DrawnDigits()
    net = fit(LINEAR, data.train_x, data.train_y)
    run_id, model_uri = log_run(uri, net, LINEAR, data.valid_x)
    z = logits(net, data.valid_x)
    acc = float(np.mean((z > 0) == (data.valid_y > 0.5)))
    registry.register_and_gate(MlflowClient(uri), run_id, model_uri, NAME, digest="digest", val_acc=acc, val_loss=0.1)
    return {"uri": uri, "directory": directory, "data": data, "net": net, "model_uri": model_uri, "logits": z}


def expected_answers(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.where(z > 0, 3, 7), 1 / (1 + np.exp(-z))


def test_the_loaded_model_answers_digit_and_probability_as_the_network(served):
    model = mlflow.pyfunc.load_model(served["model_uri"])
    x = served["data"].valid_x
    digits, probabilities = expected_answers(served["logits"])
    for pixels in (x, x.reshape(-1, 28, 28), pd.DataFrame(x), x.astype(np.float64)):
        answers = model.predict(pixels)
        assert list(answers.columns) == ["digit", "prob_3"]
        assert np.array_equal(answers["digit"], digits)
        assert np.allclose(answers["prob_3"], probabilities, atol=1e-6)
    assert np.mean(digits == np.where(served["data"].valid_y > 0.5, 3, 7)) >= 0.95  # it did learn


def test_the_model_declares_its_output_and_needs_no_pickle(served):
    model = mlflow.pyfunc.load_model(served["model_uri"])
    assert model.metadata.get_output_schema().input_names() == ["digit", "prob_3"]
    assert model.metadata.flavors["python_function"].get("model_code_path")  # models from code


def test_an_mlp_is_served_the_same_way(served, tmp_path):
    data = served["data"]
    net = fit(MLP, data.train_x, data.train_y, steps=50)
    _, model_uri = log_run(served["uri"], net, MLP, data.valid_x)
    answers = mlflow.pyfunc.load_model(model_uri).predict(data.valid_x)
    assert np.allclose(answers["prob_3"], expected_answers(logits(net, data.valid_x))[1], atol=1e-6)
    assert mlflow.pyfunc.load_model(model_uri).unwrap_python_model().pixel_weights() is None


BAD_INPUTS = [
    (np.zeros((2, 783), np.float32), "got shape (2, 783)"),
    (np.zeros((1, 28, 27), np.float32), "got shape (1, 28, 27)"),
    (np.zeros(784, np.float32), "got shape (784,)"),
    (np.full((1, 784), np.nan, np.float32), "image 0 holds NaN or infinity"),
    (np.full((1, 784), 255.0, np.float32), "got values from 255 to 255"),
    (np.full((1, 784), -0.5, np.float32), "got values from -0.5"),
    (np.array([["0.5"] * 784]), "not numbers"),
    (np.zeros((0, 784), np.float32), "got no images"),
    ([], "got no images"),
    ({"pixels": np.zeros((1, 784))}, "got named inputs"),
]


@pytest.mark.parametrize(("pixels", "message"), BAD_INPUTS, ids=[m for _, m in BAD_INPUTS])
def test_bad_input_is_refused_with_what_was_expected(served, pixels, message):
    model = mlflow.pyfunc.load_model(served["model_uri"])
    with pytest.raises(MlflowException) as refused:
        model.predict(pixels)
    assert refused.value.get_http_status_code() == 400
    assert message in refused.value.message and "Expected pixels in 0..1" in refused.value.message


# --- the real scoring server -----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(port: int, body: bytes) -> tuple[int, bytes]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/invocations", data=body, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def wait_until_serving(server: subprocess.Popen, port: int, log, limit_s: float = 300) -> float:
    start = time.monotonic()
    while time.monotonic() - start < limit_s:
        if server.poll() is not None:
            pytest.fail(f"mlflow models serve exited {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2):
                return time.monotonic() - start
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"mlflow models serve did not answer /ping in {limit_s} s:\n{log.read_text()[-3000:]}")


@pytest.mark.slow
def test_mlflow_models_serve_answers_images_and_refuses_bad_requests(served, tmp_path):
    port, log = free_port(), tmp_path / "serve.log"
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "models",
        "serve",
        "-m",
        f"models:/{NAME}@champion",
        "--env-manager",
        "local",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
    ]
    # PATH: MLflow starts `uvicorn` from the environment's bin/, as in an activated venv.
    # PYTHONPATH: the server imports this checkout's pipeline (the served model's code).
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": served["uri"],
        "PYTHONPATH": str(REPO),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    with open(log, "w") as out:
        server = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        started_s = wait_until_serving(server, port, log)
        print(f"mlflow models serve answered /ping after {started_s:.1f} s")
        x = served["data"].valid_x
        digits, probabilities = expected_answers(served["logits"])

        def predicts_correctly(pixels: np.ndarray, rows: slice) -> None:
            status, body = post(port, json.dumps({"inputs": pixels.tolist()}).encode())
            assert status == 200, body[:500]
            answers = json.loads(body)["predictions"]
            assert [a["digit"] for a in answers] == digits[rows].tolist()
            assert np.allclose([a["prob_3"] for a in answers], probabilities[rows], atol=1e-6)

        predicts_correctly(x, slice(None))  # all 200 validation images
        predicts_correctly(x[:5].reshape(-1, 28, 28), slice(0, 5))

        image = x[:1].tolist()
        bad_requests = {
            "wrong length": json.dumps({"inputs": [image[0][:783]]}),
            "NaN": json.dumps({"inputs": [[float("nan")] * 784]}),  # Python writes NaN, as many clients do
            "out of range": json.dumps({"inputs": [[p * 255 for p in image[0]]]}),
            "strings": json.dumps({"inputs": [["0.5"] * 784]}),
            "empty list": json.dumps({"inputs": []}),
            "ragged rows": json.dumps({"inputs": [image[0], image[0][:10]]}),
            "no inputs key": json.dumps({"pixels": image}),
            "10 MB of junk": np.random.default_rng(0).bytes(10 * 2**20),
        }
        for name, body in bad_requests.items():
            status, answer = post(port, body if isinstance(body, bytes) else body.encode())
            assert 400 <= status < 500, f"{name}: HTTP {status}"
            assert json.loads(answer)["message"], name
            predicts_correctly(x[:3], slice(0, 3))  # and the server still serves
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)  # the server and its uvicorn worker
        server.wait(timeout=30)


def test_a_model_logged_before_the_networks_moved_still_loads_and_answers_the_same():
    """tests/fixtures/logged_model/ was logged by the code before the folders by role (main 13c9d57):
    its code file imports pipeline.predict.served_model, its config names pipeline.nets.Linear."""
    fixtures = Path(__file__).parent / "fixtures"
    entry = (fixtures / "logged_model/served_model_entry.py").read_text()
    assert "from pipeline.predict.served_model import DigitModel" in entry
    assert '"pipeline.nets.Linear"' in (fixtures / "logged_model/artifacts/config.json").read_text()
    model = mlflow.pyfunc.load_model(str(fixtures / "logged_model"))
    answers = model.predict(np.load(fixtures / "logged_model_images.npy"))
    expected = pd.read_csv(fixtures / "logged_model_answers.csv")
    assert answers["digit"].tolist() == expected["digit"].tolist()
    # float32 arithmetic, written on an Intel CPU: an AMD one differs by ~3e-8 (its kernels round differently)
    assert np.allclose(answers["prob_3"], expected["prob_3"], rtol=0, atol=1e-6)
    assert model.unwrap_python_model().pixel_weights()[0].shape == (784,)
