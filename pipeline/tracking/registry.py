"""The MLflow Model Registry: each trained model becomes a version, and a gate decides its alias.

A new version takes the alias `champion` only if it beats the current champion on the same
validation data (pipeline/tracking/gate_rule.py). Otherwise it takes `challenger`. The decision and
both sets of figures are tags of the version (`gate.*`) and the returned dict (for metrics.json).
The version also carries its test accuracy (`test_acc`), for the record: the gate never reads it.

Calling `register_and_gate` again for a run changes nothing: the run's version is found by its run
id and its recorded decision returned; a version is never registered twice for one run.

    decision = register_and_gate(client, run_id, model_uri, model_name(cfg), digest=..., val_acc=..., val_loss=...)
    mlflow.pyfunc.load_model(f"models:/{model_name(cfg)}@champion")
"""

from __future__ import annotations

import json

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS, ErrorCode

from pipeline.tracking.gate_rule import beats, figures

CHAMPION, CHALLENGER = "champion", "challenger"
DECISION_TAG = "gate.decision"  # the whole decision as JSON: written last, so its presence means "gated"
GIT_COMMIT_TAG = "mlflow.source.git.commit"
TEST_ACC_TAG = "test_acc"  # a version's accuracy on the test split: for the record, the gate never reads it
MODEL_URI_TAG = "model_uri"  # on a sweep's child run: its model, which the sweep registers if it is the best


def model_name(cfg) -> str:
    """`tracking.registered_model`, else threes-sevens-<d0>-<d1> (the digits the model tells apart)."""
    first, second = cfg.data.digits
    return cfg.tracking.registered_model or f"threes-sevens-{first}-{second}"


def champion(client: MlflowClient, name: str) -> ModelVersion | None:
    try:
        return client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:  # no such alias (or no such model yet)
        return None


def version_of_run(client: MlflowClient, name: str, run_id: str) -> ModelVersion | None:
    found = client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
    return min(found, key=lambda v: int(v.version)) if found else None


def create_model(client: MlflowClient, name: str) -> bool:
    """The registered model `name`, made if missing; whether this call made it."""
    try:
        client.create_registered_model(
            name,
            description="MNIST digit pair classifier; alias champion: "
            "the best on the validation data (pipeline/tracking/registry.py)",
        )
    except MlflowException as err:
        if err.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
            raise
        return False
    return True


def register(client: MlflowClient, run_id: str, model_uri: str, name: str, tags: dict) -> ModelVersion:
    create_model(client, name)
    model_id = model_uri.removeprefix("models:/") if model_uri.startswith("models:/m-") else None
    return client.create_model_version(
        name, source=model_source(client, model_uri), run_id=run_id, tags=tags, model_id=model_id
    )


def model_source(client: MlflowClient, model_uri: str) -> str:
    """Where the model's files are, read through `client`'s store. Given `models:/m-...`, MLflow 3.17's
    registry stores look the logged model up in the process's default store (MLflow's own to-do in SqlAlchemyStore
    .create_model_version), which a sweep whose jobs ran elsewhere has not set: ./mlflow.db, created and
    failing. The artifact location with the model's id registers the same version without that lookup
    (as MlflowClient._create_model_version does for registries that cannot resolve `models:/<id>`)."""
    if not model_uri.startswith("models:/m-"):
        return model_uri
    return client.get_logged_model(model_uri.removeprefix("models:/")).artifact_location


def register_and_gate(
    client: MlflowClient,
    run_id: str,
    model_uri: str,
    name: str,
    *,
    digest: str,
    val_acc: float,
    val_loss: float,
    tags: dict | None = None,
    collapsed: str | None = None,
) -> dict:
    """Register the run's model (once) and give it `champion` or `challenger` (once); return the decision:
    model, version, alias, promoted, registered (new this call), reason, this version's and the
    previous champion's figures. `model_uri`: what served_model.log returned in that run; `digest`: a
    hash of the validation data the figures were measured on; `tags`: more tags for a new version;
    `collapsed`: how the model answers one digit for (nearly) every image: never the champion."""
    version = version_of_run(client, name, run_id)
    if version is not None and DECISION_TAG in version.tags:
        return {**json.loads(version.tags[DECISION_TAG]), "registered": False}
    registered = version is None
    if registered:
        commit = client.get_run(run_id).data.tags.get(GIT_COMMIT_TAG, "")
        version = register(
            client,
            run_id,
            model_uri,
            name,
            {
                **(tags or {}),
                **({"collapsed": collapsed} if collapsed else {}),
                "run_id": run_id,
                "git_commit": commit,
                "data.digest": digest,
                "val_acc": repr(float(val_acc)),
                "val_loss": repr(float(val_loss)),
            },
        )
    new = figures(version)
    current = champion(client, name)
    before = figures(current) if current is not None and current.version != version.version else None
    if collapsed:
        promoted, reason = False, f"collapsed ({collapsed}): never the champion"
    elif current is None:
        promoted, reason = True, "no champion yet"
    elif current.version == version.version:  # a call interrupted after setting the alias
        promoted, reason = True, "already champion"
    else:
        promoted, reason = beats(new, before)
    alias = CHAMPION if promoted else CHALLENGER
    client.set_registered_model_alias(name, alias, version.version)
    decision = {
        "model": name,
        "version": new["version"],
        "alias": alias,
        "promoted": promoted,
        "reason": reason,
        "new": new,
        "champion_before": before,
    }
    gate_tags = {"gate.alias": alias, "gate.reason": reason}
    if before is not None:
        gate_tags.update(
            {
                "gate.champion_version": before["version"],
                "gate.champion_val_acc": before["val_acc"],
                "gate.champion_val_loss": before["val_loss"],
            }
        )
    for key, value in {**gate_tags, DECISION_TAG: json.dumps(decision)}.items():  # the decision last: "gated"
        client.set_model_version_tag(name, version.version, key, str(value))
    return {**decision, "registered": registered}


def decision_of_run(client: MlflowClient, name: str, run_id: str) -> dict | None:
    """The gate's recorded decision for the run's version (None: not registered or not gated)."""
    version = version_of_run(client, name, run_id)
    if version is None or DECISION_TAG not in version.tags:
        return None
    return {**json.loads(version.tags[DECISION_TAG]), "registered": False}


def gate_run(
    uri: str,
    name: str,
    run_id: str,
    model_uri: str,
    *,
    valid: dict,
    digest: str,
    collapsed: str | None = None,
    test_acc: float | None = None,
) -> dict:
    """A training run's model through the gate, in the store at `uri`: registered as `name`, compared
    on `digest` (of the validation split it was scored on: pipeline/data/normalized.py), under the
    store's lock (two trainings gating at once would both read the same champion). `test_acc`: a tag
    of the new version, never compared. Returns the decision."""
    from pipeline.tracking import store

    client = store.open_client(uri)
    tags = {TEST_ACC_TAG: repr(float(test_acc))} if test_acc is not None else None
    with store.store_lock(uri):
        decision = register_and_gate(
            client,
            run_id,
            model_uri,
            name,
            digest=digest,
            val_acc=valid["acc"],
            val_loss=valid["loss"],
            tags=tags,
            collapsed=collapsed,
        )
    model, version, alias = decision["model"], decision["version"], decision["alias"]
    print(f"registry: {model} version {version} is the {alias} ({decision['reason']})")
    return decision
