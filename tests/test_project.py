"""The project directory (pipeline/config/project.py): the nearest one holding dvc.yaml, where every
command reads and writes whatever directory it starts in."""

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from omegaconf import OmegaConf
from PIL import Image

from pipeline.config.compose import compose
from pipeline.config.project import PROJECT_DIR_ENV, in_project, project_dir
from pipeline.data.normalized import read
from pipeline.tracking.server import free_port
from tests.conftest import REPO


def test_the_project_is_the_nearest_directory_holding_dvc_yaml(tmp_path, monkeypatch):
    (tmp_path / "project/plots/deeper").mkdir(parents=True)
    (tmp_path / "project/dvc.yaml").write_text("stages: {}\n")
    monkeypatch.chdir(tmp_path / "project/plots/deeper")
    assert project_dir() == tmp_path / "project"
    assert in_project("data/normalized") == f"{tmp_path}/project/data/normalized"
    assert in_project("/elsewhere/data") == "/elsewhere/data"


def test_outside_any_project_it_is_the_working_directory(tmp_path):
    assert project_dir() == tmp_path  # conftest: the cwd is tmp_path, with no dvc.yaml above it


def test_the_directory_a_hydra_app_published_wins(tmp_path, monkeypatch):
    """A sweep's jobs in other processes resolve as the sweep did, whatever their working directory."""
    monkeypatch.setenv(PROJECT_DIR_ENV, str(tmp_path / "published"))
    assert project_dir() == tmp_path / "published"


@pytest.mark.slow
def test_every_command_reads_and_writes_from_a_subdirectory_what_it_would_from_the_root(normalized, tmp_path):
    """train, predict, compare, report, server and tracking, each started in project/sub/dir: the
    project's params.yaml, its mlflow.db, its report/; nothing made in the subdirectory."""
    project, sub = tmp_path / "project", tmp_path / "project/sub/dir"
    sub.mkdir(parents=True)
    (project / "dvc.yaml").write_text("stages: {}\n")
    params = OmegaConf.to_container(compose([f"paths.normalized={normalized.paths.normalized}"]), resolve=True)
    (project / "params.yaml").write_text(OmegaConf.to_yaml({k: v for k, v in params.items() if k != "hydra"}))
    env = {"PYTHONPATH": str(REPO), "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"}

    def command(*args: str, status: int = 0) -> str:
        done = subprocess.run([sys.executable, "-m", *args], cwd=sub, capture_output=True, text=True, env=env)
        assert done.returncode == status, done.stderr[-3000:]
        return done.stdout

    command("pipeline.train", "-m", f"paths.normalized={normalized.paths.normalized}", "fit.epochs=1,2")
    assert (project / "mlflow.db").is_file() and (project / "outputs/sweeps").is_dir()  # the sweep registers its best
    image = Image.fromarray(np.rint(read(normalized.paths.normalized).arrays["valid"][0][0].reshape(28, 28) * 255))
    image.convert("L").save(sub / "digit.png")
    assert "model threes-sevens-3-7 v1 (champion)" in command("pipeline.predict", "digit.png")
    assert "2 runs" in command("pipeline.compare", "latest")
    assert "mark-orphans: 0 run(s) marked KILLED" in command("pipeline.tracking", "mark-orphans")
    command("pipeline.report", status=1)  # no learner runs in this store: refused in one line, nothing written
    port = free_port()
    server = subprocess.Popen(  # one person's server on loopback: no accounts, asked for by --no-auth
        [sys.executable, "-m", "pipeline.server", "--no-auth", "--port", str(port)],
        cwd=sub,
        env={**env, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        client = MlflowClient(f"http://127.0.0.1:{port}")
        for _ in range(240):
            assert server.poll() is None, server.stderr.read()[-2000:]
            try:
                assert client.get_experiment_by_name("threes-sevens") is not None  # the project's store
                break
            except MlflowException:
                time.sleep(0.5)
        else:
            raise AssertionError("the server never answered")
    finally:
        server.terminate()
        server.wait(30)
    assert sorted(p.name for p in sub.iterdir()) == ["digit.png"]  # no store, outputs or report in sub/dir
