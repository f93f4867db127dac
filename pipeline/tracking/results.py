"""What a training records once its outputs are on disk, kept on disk until it is recorded, so
that a store that goes away cannot cost the trained model.

A training writes its outputs (model/outputs.py) and, beside them, `unrecorded.json`: what its
MLflow run has yet to receive (final metrics, tags, the files to log, the model to log and
register). `record` sends it, skipping what the store already holds, and removes the file: a
run directory holds `unrecorded.json` exactly while its run is incomplete. When the tracking
server stays away longer than tracking.outage_s, the training ends with one line naming the
directory and `python -m pipeline.tracking record DIR`, which completes the same run (same id,
its params and per-epoch metrics already there) once the server is back. Until then a server that
goes away is waited for (`tolerate_outages`: MLflow's own HTTP retries, set to span
tracking.outage_s), and told apart from other failures when it stays away longer (`is_outage`).
"""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import asdict, dataclass, field
from pathlib import Path

import mlflow
import numpy as np
import requests
from mlflow import MlflowClient

from pipeline.config.atomic import atomic_file
from pipeline.config.errors import PipelineError, causes
from pipeline.config.secrets import split_credentials
from pipeline.tracking import registry, served_model

FILE = "unrecorded.json"
MODEL_NAME = "model"  # the logged model's name in its run


@dataclass
class Results:
    """What the MLflow run `run_id` in the store at `tracking_uri` has yet to receive."""

    run_id: str
    tracking_uri: str  # never with credentials: MLflow's variables carry them
    metrics: dict[str, float]
    tags: dict[str, str] = field(default_factory=dict)
    artifacts: list[str] = field(default_factory=list)  # files of the run directory
    model: dict | None = None  # {"config", "digits", "input_example"}: log the model (from model.ckpt)
    model_uri_tag: bool = False  # a sweep's job: tag the model's URI, the sweep registers its best
    registry: dict | None = None  # {"name", "digest", "acc", "loss", "collapsed", "test_acc"}: register and gate it
    run_file: str | None = None  # tracking.run_file: the run's id for `dvc exp show`

    def __post_init__(self):
        self.tracking_uri = split_credentials(self.tracking_uri)[0]

    def save(self, directory: Path) -> None:
        with atomic_file(directory / FILE) as scratch:
            scratch.write_text(json.dumps(asdict(self), indent=1) + "\n")

    @classmethod
    def load(cls, directory: Path) -> Results:
        path = directory / FILE
        if not path.is_file():
            raise PipelineError(
                f"{path}: not found; {directory} holds no run waiting to be recorded "
                "(its run was recorded, or it is not a training's output directory)"
            )
        try:
            return cls(**json.loads(path.read_text()))
        except (ValueError, TypeError) as err:
            raise PipelineError(f"{path}: not what a training writes ({err})") from None


def is_outage(err: BaseException) -> bool:
    """Whether an MLflow call failed because its http(s) store could not be reached (refused,
    unknown, timed out, or answering 5xx until MLflow's retries ran out)."""
    lost = (requests.exceptions.ConnectionError, requests.exceptions.Timeout, requests.exceptions.RetryError)
    return any(isinstance(e, lost) for e in causes(err))


# MLflow retries a failed HTTP request `max_retries` times; urllib3 waits 0 s before the first
# retry and backoff_factor * 2**(k - 1) s before the k-th after it, each wait capped at 120 s.
MAX_RETRIES = 10  # MLflow refuses more (its _MLFLOW_HTTP_REQUEST_MAX_RETRIES_LIMIT)
MAX_BACKOFF_FACTOR = 120  # likewise (_MLFLOW_HTTP_REQUEST_MAX_BACKOFF_FACTOR_LIMIT)
BACKOFF_CAP_S = 120  # urllib3's Retry.DEFAULT_BACKOFF_MAX


def retry_span_s(retries: int, backoff_factor: int) -> float:
    """How long MLflow keeps retrying a request that fails at once (a refused connection)."""
    return sum(min(backoff_factor * 2 ** (k - 1), BACKOFF_CAP_S) for k in range(2, retries + 1))


def tolerate_outages(outage_s: float) -> dict[str, str]:
    """Set MLflow's HTTP retry settings (read at every request) so that a tracking server away
    for up to outage_s does not fail a request: the fewest retries, with the smallest backoff,
    whose waits add up to at least outage_s. Call it once at the start of a run, in the process
    that logs (sweep workers included). Returns what it set."""
    retries, factor = 1, 1
    while retry_span_s(retries, factor) < outage_s:
        if retries < MAX_RETRIES:
            retries += 1
        elif factor < MAX_BACKOFF_FACTOR:
            factor += 1
        else:
            break  # 9 waits of 120 s: MLflow's most
    settings = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(retries), "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": str(factor)}
    os.environ.update(settings)
    return settings


def waiting(uri: str, outage_s: float, run_id: str, directory: Path) -> str:
    """The one line a training ends with when the store went away after its model was saved."""
    where = shlex.quote(str(directory.resolve()))
    return (
        f"the tracking server {uri} was away for longer than tracking.outage_s={outage_s:g} s after the "
        f"training: the model is saved in {where}, and its MLflow run {run_id} waits to be completed; "
        f"once the server is back: python -m pipeline.tracking record {where}"
    )


def logged_model_uri(client: MlflowClient, run) -> str | None:
    """The URI of the model the run already logged, if it did."""
    found = client.search_logged_models(
        [run.info.experiment_id], f"source_run_id = '{run.info.run_id}' AND name = '{MODEL_NAME}'"
    )
    ready = [model for model in found if model.status.name == "READY"]
    return ready[0].model_uri if ready else None


def record(results: Results, directory: Path, net=None) -> dict | None:
    """Send `results` to the active MLflow run (`results.run_id`), skipping what the store already
    holds, then remove unrecorded.json. `net`: the trained network (else read from model.ckpt in
    `directory`). Returns the registry gate's decision, when it registers."""
    client = MlflowClient(results.tracking_uri)
    run = client.get_run(results.run_id)
    mlflow.set_tags(results.tags)
    new = {key: value for key, value in results.metrics.items() if key not in run.data.metrics}
    if new:
        mlflow.log_metrics(new)
    for name in results.artifacts:
        mlflow.log_artifact(str(directory / name))
    decision = None
    if results.model:
        model_uri = logged_model_uri(client, run) or log_model(results.model, directory, net)
        if results.model_uri_tag:
            mlflow.set_tag(registry.MODEL_URI_TAG, model_uri)
        elif results.registry:
            gate = results.registry
            decision = registry.gate_run(
                results.tracking_uri,
                gate["name"],
                run.info.run_id,
                model_uri,
                valid={"acc": gate["acc"], "loss": gate["loss"]},
                digest=gate["digest"],
                collapsed=gate["collapsed"],
                test_acc=gate.get("test_acc"),  # absent from a run saved before the test split
            )
    (directory / FILE).unlink(missing_ok=True)
    return decision


def log_model(model: dict, directory: Path, net=None) -> str:
    if net is None:
        from pipeline.model.classifier import CHECKPOINT, load_checkpoint

        net = load_checkpoint(directory / CHECKPOINT).net
    example = np.asarray(model["input_example"], np.float32)
    return served_model.log(net.cpu(), model["config"], model["digits"], example, name=MODEL_NAME)


def write_run_file(path: str, run_id: str, experiment_id: str) -> None:
    """The run's id in a small JSON file that dvc.yaml declares a metrics file (mlflow_run.json), so
    `dvc exp show` and `dvc metrics diff` name each experiment's run. Not in models/ nor in
    metrics.json: stage outputs, whose hashes dvc.lock records, and a run id differs every run."""
    with atomic_file(path) as scratch:
        record = {"mlflow_run_id": run_id, "mlflow_experiment_id": experiment_id}
        scratch.write_text(json.dumps(record, indent=2) + "\n")
