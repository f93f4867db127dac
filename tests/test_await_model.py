"""`python -m pipeline.server.await_model`, docker/compose.yaml's `serve` before a champion exists: it waits with
one line, then runs the command once the version is registered; what waiting cannot mend is one line, exit 1.
On a sqlite tracking store (the registry's API is the same through a server)."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from pipeline.tracking.server import free_port
from tests.conftest import REPO

MODEL = "threes-sevens-3-7"
# The command it hands over to: prints its arguments (mlflow models serve in docker/compose.yaml).
SERVED = [sys.executable, "-c", "import sys; print('serving', *sys.argv[1:])"]


def await_model(store: str, *args: str, **popen) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")} | {"MLFLOW_TRACKING_URI": store}
    command = [sys.executable, "-m", "pipeline.server.await_model", *args]
    return subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen
    )


@pytest.fixture
def store(tmp_path) -> str:
    """A store whose tables exist (MLflow logs their creation), its registry empty."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    MlflowClient(uri, registry_uri=uri).search_registered_models()
    return uri


def register_champion(store: str) -> None:
    client = MlflowClient(store, registry_uri=store)
    client.create_registered_model(MODEL)
    for _ in range(2):
        client.create_model_version(MODEL, source=str(Path(store.removeprefix("sqlite:///")).parent / "model"))
    client.set_registered_model_alias(MODEL, "champion", "2")


def test_serve_waits_with_one_line_until_the_champion_exists_then_runs_the_command(store):
    uri = f"models:/{MODEL}@champion"
    waiting = await_model(store, "--every", "0.2", *SERVED, "--model-uri", uri, "--port", "5001")
    try:
        line = waiting.stderr.readline()  # said as soon as the first look finds nothing
        assert line.startswith(f"await_model: waiting for {uri}: not registered yet on sqlite:///"), line
        time.sleep(1)  # several more looks
        assert waiting.poll() is None
        register_champion(store)
        out, err = waiting.communicate(timeout=60)
    finally:
        waiting.kill()
    assert waiting.returncode == 0, err
    assert err.splitlines() == [f"await_model: {uri} is version 2; starting {sys.executable}"]  # no other line
    assert out == f"serving --model-uri {uri} --port 5001\n"


def test_a_registered_version_is_served_without_waiting(store):
    register_champion(store)
    done = await_model(store, *SERVED, f"--model-uri=models:/{MODEL}/1")
    out, err = done.communicate(timeout=60)
    assert (done.returncode, out) == (0, f"serving --model-uri=models:/{MODEL}/1\n"), err
    assert "waiting" not in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([*SERVED], "the command has no --model-uri models:/NAME@ALIAS to wait for"),
        ([*SERVED, "--model-uri", "runs:/abc/model"], "--model-uri runs:/abc/model: expected models:/NAME@ALIAS"),
        (["--every", "soon", *SERVED], "--every takes a number of seconds, then the command"),
    ],
)
def test_a_command_it_cannot_wait_for_is_one_line(store, args, message):
    done = await_model(store, *args)
    out, err = done.communicate(timeout=60)
    assert done.returncode == 1 and out == ""
    assert len(err.splitlines()) == 1 and message in err, err


def test_a_tracking_server_it_cannot_reach_is_one_line_not_a_wait(tmp_path):
    done = await_model(f"http://127.0.0.1:{free_port()}", *SERVED, "--model-uri", f"models:/{MODEL}@champion")
    out, err = done.communicate(timeout=120)
    assert done.returncode == 1 and out == "", err
    assert err.startswith("error: await_model: MLFLOW_TRACKING_URI=http://127.0.0.1:") and len(err.splitlines()) == 1
    assert not Path(tmp_path / "mlflow.db").exists()
