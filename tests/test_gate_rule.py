"""The registry gate's rule (pipeline/tracking/gate_rule.py): higher validation accuracy on the same
validation data wins, a tie goes to the lower loss, and another digest is never comparable."""

import pytest

from pipeline.tracking.gate_rule import beats


def version(number: int, acc: float | None, loss: float | None, digest: str = "same") -> dict:
    return {"version": number, "run_id": f"run{number}", "digest": digest, "val_acc": acc, "val_loss": loss}


@pytest.mark.parametrize(
    "new, promoted, because",
    [
        (version(2, 0.99, 0.30), True, "validation accuracy 0.9900 > 0.9800 of champion v1"),
        (version(2, 0.97, 0.01), False, "validation accuracy 0.9700 < 0.9800 of champion v1"),
        (version(2, 0.98, 0.05), True, "same validation accuracy 0.9800; loss 0.0500 < 0.1000 of champion v1"),
        (version(2, 0.98, 0.10), False, "same validation accuracy 0.9800; loss 0.1000 >= 0.1000 of champion v1"),
        (version(2, 0.999, 0.01, digest="other"), False, "not comparable: champion v1 was not validated on the same"),
    ],
)
def test_a_version_beats_the_champion_only_on_the_same_validation_data(new, promoted, because):
    decision, reason = beats(new, version(1, 0.98, 0.10))
    assert decision is promoted and reason.startswith(because)


def test_a_champion_without_figures_is_not_comparable():
    assert beats(version(2, 0.99, 0.1), version(1, None, None))[0] is False
