"""The models and experiment configs compose to what they promise: each model with its own recipe,
the learner sweep over every model of conf/model/, the learning-rate study over the same seeds."""

import pytest

from pipeline.config.compose import compose, model_names, recipe, recipe_overrides, validate
from pipeline.config.schema import LossName, OptimizerName
from pipeline.report.runs import LEARNER, LEARNING_RATES, arms, sweep_models, sweep_values


def test_fastbook_is_the_books_linear1_trained_as_the_book_trains_it():
    cfg = validate(compose(["model=fastbook"]))
    assert cfg.model["_target_"].endswith(".Linear") and cfg.model["bias"] and cfg.model["init_std"] == 1.0
    assert cfg.optim.name is OptimizerName.sgd and cfg.optim.loss is LossName.mnist_loss
    assert (cfg.optim.lr, cfg.optim.batch_size, cfg.optim.epochs, cfg.optim.shuffle) == (1.0, 256, 20, False)
    assert cfg.optim.momentum == 0.0 and cfg.optim.weight_decay == 0.0


def test_a_models_recipe_is_what_it_trains_with_unless_the_command_line_says_otherwise():
    cnn = validate(compose(["model=cnn"])).optim
    assert (cnn.name, cnn.lr, cnn.batch_size, cnn.epochs) == (OptimizerName.adam, 0.001, 128, 8)
    assert validate(compose(["model=cnn", "optim.lr=0.01"])).optim.lr == 0.01
    sgd = validate(compose(["model=cnn", "optim=sgd"])).optim
    assert (sgd.name, sgd.lr) == (OptimizerName.sgd, 1.0)  # the optimizer asked for, with its own rate
    assert validate(compose(["model=fastbook", "optim.epochs=3"])).optim.epochs == 3
    assert validate(compose(["model=mlp"])).optim.name is OptimizerName.adam
    assert validate(compose(["model=pixel_similarity"])).optim.epochs == 1


def test_the_way_back_to_a_models_recipe_is_named_override_by_override():
    assert recipe_overrides("cnn", recipe("cnn")) == []
    assert recipe_overrides("cnn", recipe("linear")) == [
        "optim=adam",
        "optim.lr=0.001",
        "optim.batch_size=128",
        "optim.epochs=8",
    ]


@pytest.mark.parametrize("model", sweep_models())
def test_every_model_composes_into_the_learner_experiment_with_its_own_recipe(model):
    cfg = validate(compose(["+experiment=learner", f"model={model}", "seed=3"]))
    assert cfg.tracking.experiment == "learner" and cfg.model["name"] == model and cfg.seed == 3
    assert {key: str(value) for key, value in recipe(model).items()} == {
        key: str(getattr(cfg.optim, key).value if key in ("name", "loss") else getattr(cfg.optim, key))
        for key in recipe(model)
    }


def test_the_learner_sweep_runs_every_model_over_the_seeds_the_learning_rate_study_runs():
    assert sweep_models() == model_names()
    assert {"pixel_similarity", "linear", "linear_no_bias", "fastbook", "mlp", "cnn"} <= set(model_names())
    seeds = sweep_values(LEARNER, "seed")
    assert len(seeds) >= 5 and sweep_values(LEARNING_RATES, "seed") == seeds  # a spread, and pairs by seed


def test_the_learning_rate_study_is_the_default_linear_model_at_other_rates():
    default = validate(compose(["+experiment=learner", "model=linear"]))
    rates = [arm for arm in arms() if arm.experiment == LEARNING_RATES]
    assert len(rates) >= 2
    for arm in rates:
        cfg = validate(compose(list(arm.overrides)))
        assert cfg.tracking.experiment == "learner" and cfg.model == default.model
        assert cfg.optim.lr != default.optim.lr and {**vars(cfg.optim), "lr": 0} == {**vars(default.optim), "lr": 0}
