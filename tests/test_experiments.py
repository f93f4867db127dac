"""The experiment configs compose to what they promise."""

import pytest

from pipeline.config import compose, validate
from pipeline.report.build import sweep_variants
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
    cfg = validate(compose(["+experiment=learner", f"+variant={variant}"]))
    assert cfg.tracking.experiment == "learner" and cfg.tracking.run_name == variant


def test_learner_variants_differ_as_named():
    def composed(variant):
        return validate(compose(["+experiment=learner", f"+variant={variant}"]))

    linear = composed("linear")
    assert linear.model == validate(compose([])).model and linear.optim == validate(compose([])).optim
    assert composed("linear_no_bias").model.bias is False
    assert composed("pixel_similarity").model.name == "pixel_similarity"
    mlp = composed("mlp")
    assert mlp.model.name == "mlp" and mlp.optim.name is OptimizerName.adam
    rates = {composed(v).optim.lr for v in sweep_variants() if v.startswith("linear_lr_")}
    assert len(rates) >= 2 and linear.optim.lr not in rates
