"""pipeline/tracking/registry.py: registration and the champion/challenger gate, on models trained on drawn
digits (tests/served_fixtures.py) in a temporary MLflow store. Each test registers under its own
model name, so the tests share the logged models but not a registry history."""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient

from pipeline.tracking import registry
from tests.served_fixtures import LINEAR, DrawnDigits, fit, log_run, logits, sqlite_uri

DIGEST = "md5-of-valid.npz"


def figures(net, data) -> dict:
    """Validation accuracy and BCE loss, as evaluate measures them."""
    z = logits(net, data.valid_x)
    y = data.valid_y
    loss = np.mean(np.logaddexp(0, z) - y * z)
    return {"val_acc": float(np.mean((z > 0) == (y > 0.5))), "val_loss": float(loss)}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A strong and a weak model, each logged in its own run, with their validation figures."""
    uri = sqlite_uri(tmp_path_factory.mktemp("registry"))
    data = DrawnDigits()
    models = {}
    for name, steps in (("strong", 200), ("weak", 0)):  # weak: not trained at all
        net = fit(LINEAR, data.train_x, data.train_y, steps=steps)
        run_id, model_uri = log_run(uri, net, LINEAR, data.valid_x)
        models[name] = {"net": net, "run_id": run_id, "model_uri": model_uri, **figures(net, data)}
    assert models["strong"]["val_acc"] > models["weak"]["val_acc"]  # the premise of the tests below
    return {"uri": uri, "data": data, **models}


@pytest.fixture
def name(request) -> str:
    return f"test-{request.node.name}"


def gate(store, name, model, digest=DIGEST, **figures):
    client = MlflowClient(store["uri"])
    m = store[model] if isinstance(model, str) else model
    return registry.register_and_gate(
        client,
        m["run_id"],
        m["model_uri"],
        name,
        digest=digest,
        val_acc=figures.get("val_acc", m["val_acc"]),
        val_loss=figures.get("val_loss", m["val_loss"]),
    )


def champion_version(store, name) -> int:
    return int(MlflowClient(store["uri"]).get_model_version_by_alias(name, "champion").version)


def test_the_first_version_becomes_champion_and_serves(store, name):
    decision = gate(store, name, "strong")
    assert decision["registered"] and decision["promoted"] and decision["alias"] == "champion"
    assert decision["version"] == 1 and decision["champion_before"] is None
    mlflow.set_tracking_uri(store["uri"])
    served = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    answers = served.predict(store["data"].valid_x)
    expected = logits(store["strong"]["net"], store["data"].valid_x)
    assert np.array_equal(answers["digit"], np.where(expected > 0, 3, 7))
    assert np.allclose(answers["prob_3"], 1 / (1 + np.exp(-expected)), atol=1e-6)


def test_a_worse_model_becomes_challenger_and_the_champion_stays(store, name):
    gate(store, name, "strong")
    decision = gate(store, name, "weak")
    assert decision["registered"] and not decision["promoted"] and decision["alias"] == "challenger"
    assert champion_version(store, name) == 1
    assert decision["champion_before"]["val_acc"] == store["strong"]["val_acc"]
    assert decision["new"]["val_acc"] == store["weak"]["val_acc"]
    version = MlflowClient(store["uri"]).get_model_version(name, "2")
    assert version.aliases == ["challenger"] and version.run_id == store["weak"]["run_id"]
    assert version.tags["gate.alias"] == "challenger" and version.tags["data.digest"] == DIGEST
    assert float(version.tags["gate.champion_val_acc"]) == store["strong"]["val_acc"]
    assert float(version.tags["val_acc"]) == store["weak"]["val_acc"]
    assert json.loads(version.tags[registry.DECISION_TAG])["reason"] == decision["reason"]


def test_a_better_model_takes_champion(store, name):
    gate(store, name, "weak")
    decision = gate(store, name, "strong")
    assert decision["promoted"] and decision["alias"] == "champion" and champion_version(store, name) == 2
    assert decision["champion_before"]["version"] == 1
    assert "validation accuracy" in decision["reason"]


@pytest.mark.parametrize(("loss_change", "promoted"), [(-0.01, True), (0.0, False), (0.01, False)])
def test_equal_accuracy_is_decided_by_the_loss(store, name, loss_change, promoted):
    gate(store, name, "weak")
    weak = store["weak"]
    decision = gate(store, name, "strong", val_acc=weak["val_acc"], val_loss=weak["val_loss"] + loss_change)
    assert decision["promoted"] is promoted and "same validation accuracy" in decision["reason"]
    assert champion_version(store, name) == (2 if promoted else 1)


def test_figures_on_other_validation_data_do_not_take_champion(store, name):
    """E.g. a champion registered before the three splits (issue 31), validated on MNIST's test set:
    its validation digest is another, and the gate says so in one line."""
    gate(store, name, "weak")
    decision = gate(store, name, "strong", digest="another-digest")
    assert not decision["promoted"] and decision["alias"] == "challenger"
    assert decision["reason"] == (
        f"not comparable: champion v1 was not validated on the same data (its validation digest {DIGEST}, "
        "this version's another-digest); promote by hand if wanted"
    )
    assert champion_version(store, name) == 1


def test_the_gate_reads_validation_only_and_tags_the_test_accuracy(store, name, capsys):
    """gate_run: a version's test accuracy is a tag, for the record; a far better test accuracy
    does not make a version with lower validation accuracy the champion."""
    first = registry.gate_run(
        store["uri"],
        name,
        store["strong"]["run_id"],
        store["strong"]["model_uri"],
        valid={"acc": store["strong"]["val_acc"], "loss": store["strong"]["val_loss"]},
        digest=DIGEST,
        test_acc=0.5,
    )
    second = registry.gate_run(
        store["uri"],
        name,
        store["weak"]["run_id"],
        store["weak"]["model_uri"],
        valid={"acc": store["weak"]["val_acc"], "loss": store["weak"]["val_loss"]},
        digest=DIGEST,
        test_acc=1.0,
    )
    assert first["alias"] == "champion" and second["alias"] == "challenger" and champion_version(store, name) == 1
    client = MlflowClient(store["uri"])
    tags = [client.get_model_version(name, str(v)).tags for v in (1, 2)]
    assert [t[registry.TEST_ACC_TAG] for t in tags] == ["0.5", "1.0"]
    assert "test" not in second["reason"] and "validation accuracy" in second["reason"]


def test_gating_a_run_again_registers_and_promotes_nothing(store, name):
    client = MlflowClient(store["uri"])
    first = gate(store, name, "weak")
    gate(store, name, "strong")  # takes champion from the weak one
    again = gate(store, name, "weak")
    assert not again["registered"] and again["version"] == first["version"]
    del again["registered"], first["registered"]
    assert again == first
    assert len(client.search_model_versions(f"name = '{name}'")) == 2
    assert champion_version(store, name) == 2  # not handed back to the weak run
    assert registry.decision_of_run(client, name, store["weak"]["run_id"])["alias"] == "champion"  # as decided then


def test_the_gate_registers_in_its_own_store_whatever_the_process_default(store, name, tmp_path):
    """A sweep's process gates the best child in the store its jobs wrote, though it never set
    MLflow's process-wide default store (its jobs ran in other processes): the default here is
    another, empty store, where the logged model does not exist."""
    elsewhere = sqlite_uri(tmp_path / "elsewhere")
    (tmp_path / "elsewhere").mkdir()
    mlflow.set_tracking_uri(elsewhere)
    try:
        decision = registry.gate_run(
            store["uri"],
            name,
            store["strong"]["run_id"],
            store["strong"]["model_uri"],
            valid={"acc": 1.0, "loss": 0.1},
            digest=DIGEST,
        )
    finally:
        mlflow.set_tracking_uri(store["uri"])
    assert decision["registered"] and decision["alias"] == "champion"
    version = MlflowClient(store["uri"]).get_model_version(name, str(decision["version"]))
    logged = MlflowClient(store["uri"]).get_logged_model(store["strong"]["model_uri"].removeprefix("models:/"))
    assert version.source == logged.artifact_location and version.run_id == store["strong"]["run_id"]
    served = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    assert np.array_equal(
        served.predict(store["data"].valid_x)["digit"],
        np.where(logits(store["strong"]["net"], store["data"].valid_x) > 0, 3, 7),
    )


def test_the_model_name_comes_from_the_digits_or_the_config(cfg):
    assert registry.model_name(cfg) == "threes-sevens-3-7"
    cfg.tracking.registered_model = "my-digits"
    assert registry.model_name(cfg) == "my-digits"


@pytest.mark.slow
def test_a_training_run_registers_a_champion_that_answers_as_evaluate(normalized, tmp_path):
    """The integration train/evaluate will make: log the trained network as the served model in
    its run, gate it on its validation figures; the champion then answers as evaluate scores."""
    import torch

    from pipeline.data import normalized as normalized_data
    from pipeline.model.classifier import CHECKPOINT, DigitClassifier
    from pipeline.model.metrics import score
    from pipeline.tracking import served_model
    from pipeline.train import train

    cfg = normalized
    cfg.tracking.log_model = False
    results = train(cfg, tmp_path / "models")
    module = DigitClassifier.load_from_checkpoint(
        tmp_path / "models" / CHECKPOINT, map_location="cpu", weights_only=True
    )
    data = normalized_data.read(cfg.paths.normalized)
    (x, y), digits = data.arrays["valid"], data.digits
    mlflow.set_tracking_uri(cfg.tracking.uri)
    with mlflow.start_run(run_id=results["run_id"]):
        model_uri = served_model.log(module.net, module.hparams["model"], digits, x[:2])
    client = MlflowClient(cfg.tracking.uri)
    digest = data.digest("valid")
    decision = registry.register_and_gate(
        client,
        results["run_id"],
        model_uri,
        registry.model_name(cfg),
        digest=digest,
        val_acc=results["acc"],
        val_loss=results["loss"],
    )
    assert decision["alias"] == "champion" and decision["new"]["val_acc"] == results["acc"]

    _, evaluated = score(module, torch.tensor(x), torch.tensor(y))
    answers = mlflow.pyfunc.load_model("models:/threes-sevens-3-7@champion").predict(x)
    assert np.array_equal(answers["digit"], np.where(evaluated > 0, digits[0], digits[1]))
    assert np.allclose(answers["prob_3"], 1 / (1 + np.exp(-evaluated.astype(np.float64))), atol=1e-6)
