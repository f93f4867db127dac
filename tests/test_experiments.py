"""The experiment configs compose to what they promise."""

import pytest

from pipeline.config import compose, validate
from pipeline.report.runs import LEARNER, LEARNING_RATES, arms, sweep_values, sweep_variants
from pipeline.schema import LossName, OptimizerName


def test_fastbook_is_the_books_setup():
    cfg = validate(compose(["+experiment=fastbook"]))
    assert cfg.model.name == "linear" and cfg.model.bias and cfg.model.init_std == 1.0
    assert cfg.optim.name is OptimizerName.sgd and cfg.optim.loss is LossName.mnist_loss
    assert (cfg.optim.lr, cfg.optim.batch_size, cfg.optim.epochs, cfg.optim.shuffle) == (1.0, 256, 20, False)
    assert cfg.optim.momentum == 0.0 and cfg.optim.weight_decay == 0.0


def test_fastbook_settings_can_still_be_overridden():
    assert validate(compose(["+experiment=fastbook", "optim.epochs=3"])).optim.epochs == 3


@pytest.mark.parametrize("variant", sweep_variants())
def test_every_learner_variant_composes_into_the_learner_experiment(variant):
    cfg = validate(compose(["+experiment=learner", f"+variant={variant}", "seed=3"]))
    assert cfg.tracking.experiment == "learner" and cfg.tracking.run_name == f"{variant},seed=3"


def test_learner_variants_differ_as_named():
    def composed(variant):
        return validate(compose(["+experiment=learner", f"+variant={variant}"]))

    linear = composed("linear")
    assert linear.model == validate(compose([])).model and linear.optim == validate(compose([])).optim
    assert composed("linear_no_bias").model.bias is False
    assert composed("pixel_similarity").model.name == "pixel_similarity"
    mlp = composed("mlp")
    assert mlp.model.name == "mlp" and mlp.optim.name is OptimizerName.adam
    cnn = composed("cnn")
    assert (cnn.model.name, cnn.optim.name, cnn.optim.lr, cnn.optim.batch_size, cnn.optim.epochs) == (
        "cnn",
        OptimizerName.adam,
        0.001,
        128,
        8,
    )


def test_the_sweeps_cover_the_learners_questions_over_the_same_seeds():
    assert {"pixel_similarity", "linear", "linear_no_bias", "mlp", "cnn", "fastbook"} <= set(sweep_variants())
    seeds = sweep_values(LEARNER, "seed")
    assert len(seeds) >= 5 and sweep_values(LEARNING_RATES, "seed") == seeds  # a spread, and pairs by seed


def test_the_learning_rate_study_is_the_default_linear_model_at_other_rates():
    default = validate(compose(["+experiment=learner", "+variant=linear"]))
    rates = [arm for arm in arms() if arm.experiment == LEARNING_RATES]
    assert len(rates) >= 2
    for arm in rates:
        cfg = validate(compose(list(arm.overrides)))
        assert cfg.tracking.experiment == "learner" and cfg.model == default.model
        assert cfg.optim.lr != default.optim.lr and {**vars(cfg.optim), "lr": 0} == {**vars(default.optim), "lr": 0}
