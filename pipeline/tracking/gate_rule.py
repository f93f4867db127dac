"""The registry gate's rule: a new version beats the champion on the same validation data (same
digest) with higher validation accuracy, or equal accuracy and lower loss. Nothing else counts:
the test accuracy a version carries is for the record. pipeline/tracking/registry.py applies it.
"""

from __future__ import annotations

from mlflow.entities.model_registry import ModelVersion


def figures(version: ModelVersion) -> dict:
    """The figures a version was registered with (its tags), as the gate compares them."""
    tags = version.tags
    number = {key: float(tags[key]) if key in tags else None for key in ("val_acc", "val_loss")}
    return {"version": int(version.version), "run_id": version.run_id, "digest": tags.get("data.digest"), **number}


def beats(new: dict, champion: dict) -> tuple[bool, str]:
    """Whether `new` should replace `champion`, and why (both: dicts from `figures`)."""
    if new["digest"] != champion["digest"] or champion["val_acc"] is None or champion["val_loss"] is None:
        return False, (
            f"not comparable: champion v{champion['version']} was not validated on the same data "
            f"(its validation digest {champion['digest']}, this version's {new['digest']}); promote by hand if wanted"
        )
    if new["val_acc"] != champion["val_acc"]:
        better = new["val_acc"] > champion["val_acc"]
        return better, (
            f"validation accuracy {new['val_acc']:.4f} {'>' if better else '<'} "
            f"{champion['val_acc']:.4f} of champion v{champion['version']}"
        )
    better = new["val_loss"] < champion["val_loss"]
    return better, (
        f"same validation accuracy {new['val_acc']:.4f}; loss {new['val_loss']:.4f} "
        f"{'<' if better else '>='} {champion['val_loss']:.4f} of champion v{champion['version']}"
    )
