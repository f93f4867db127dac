"""DigitClassifier (pipeline/model/classifier.py): any network trained by Lightning's own loop, one
optimizer step per batch; a network's hooks used where it has them."""

import pytest
import pytorch_lightning as pl
import torch

from pipeline.config.compose import as_dict, compose, validate
from pipeline.config.errors import ConfigError
from pipeline.data.datamodule import TensorBatches
from pipeline.model.classifier import DigitClassifier, check_optimizer, mnist_loss


def module_for(overrides=()):
    cfg = validate(compose(list(overrides)))
    return DigitClassifier(model=as_dict(cfg.model), optim=as_dict(cfg.optim), loss=cfg.fit.loss.value)


def test_cnn_reads_flat_pixels_as_28x28_images():
    torch.manual_seed(0)
    module = module_for(["model=cnn"])
    x = torch.rand(3, 784)
    assert module(x).shape == (3,)
    assert torch.equal(module.net(x), module.net(x.reshape(3, 1, 28, 28)))
    shifted = x.reshape(3, 28, 28).roll(1, dims=2).reshape(3, 784)  # each image moved one pixel right
    assert not torch.equal(module(x), module(shifted))  # rows of 28 pixels: the layout matters
    assert module.pixel_weights() is None and module.bias() is None  # no per-pixel weights to draw


@pytest.mark.parametrize(
    "overrides, optimizer",
    [
        ([], torch.optim.SGD),
        (["model=cnn"], torch.optim.Adam),
        (["optim=rmsprop", "optim.alpha=0.9"], torch.optim.RMSprop),
    ],
)
def test_the_optimizer_is_the_class_optim_names_with_its_arguments(overrides, optimizer):
    module = module_for(overrides)
    made = module.configure_optimizers()
    cfg = validate(compose(overrides)).optim
    assert type(made) is optimizer and made.param_groups[0]["params"] == list(module.parameters())
    assert {key: made.defaults[key] for key in cfg if not key.startswith("_")} == {
        key: value for key, value in cfg.items() if not key.startswith("_")
    }


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["+optim.momentun=0.9"], "optim.momentun=0.9: optimizer torch.optim.SGD takes no 'momentun'"),
        (["optim=adam", "+optim.momentum=0.9"], "optim.momentum=0.9: optimizer torch.optim.Adam takes no 'momentum'"),
        (
            ["optim._target_=torch.optim.Nothing"],
            "optim._target_=torch.optim.Nothing: no class Nothing in module torch.optim",
        ),
        (
            ["optim=rmsprop", "optim.alpha=-1"],
            "optim._target_=torch.optim.RMSprop: optimizer torch.optim.RMSprop refused its arguments: "
            "Invalid alpha value: -1",
        ),
    ],
)
def test_an_argument_the_optimizer_does_not_take_is_refused_in_one_line(overrides, message):
    with pytest.raises(ConfigError) as refused:
        check_optimizer(as_dict(validate(compose(overrides)).optim))
    assert str(refused.value) == message


def test_mnist_loss_is_distance_from_target():
    logits = torch.tensor([100.0, -100.0, 0.0])
    assert float(mnist_loss(logits, torch.tensor([1.0, 0.0, 1.0]))) == pytest.approx(0.5 / 3)


@pytest.mark.parametrize(
    "overrides", [[], ["model=mlp"], ["model=cnn", "optim=adam"], ["optim=adam"], ["fit.loss=mnist_loss"]]
)
def test_training_lowers_the_loss_one_step_per_batch(overrides):
    torch.manual_seed(0)
    module = module_for(overrides)
    x = torch.rand(64, 784)
    y = (x[:, :392].sum(1) > x[:, 392:].sum(1)).float()
    before = float(module.model_step((x, y))[0].detach())
    trainer = pl.Trainer(
        max_epochs=20,
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    trainer.fit(module, train_dataloaders=TensorBatches(x, y, batch_size=64, shuffle=True, seed=0))
    assert trainer.global_step == 20  # one optimizer step per batch (one batch per epoch)
    assert float(module.model_step((x, y))[0].detach()) < before


def test_pixel_similarity_has_nothing_to_train_and_templates_are_the_class_means():
    module = module_for(["model=pixel_similarity"])
    assert list(module.net.parameters()) == [] and not module.automatic_optimization
    assert module.configure_optimizers() == []
    x = torch.rand(10, 784)
    y = torch.tensor([1.0, 0.0] * 5)
    module.on_train_epoch_start()
    module.training_step((x[:4], y[:4]), 0)  # two batches: the means cover both
    module.training_step((x[4:], y[4:]), 1)
    templates = module.templates()
    assert templates.shape == (2, 784)
    assert torch.allclose(torch.from_numpy(templates[0]), x[y == 1].mean(0))
    assert torch.allclose(torch.from_numpy(templates[1]), x[y == 0].mean(0))


def test_pixel_similarity_logit_is_the_difference_of_mean_absolute_distances():
    module = module_for(["model=pixel_similarity"])
    module.on_train_epoch_start()
    module.training_step((torch.tensor([[1.0] * 784, [0.0] * 784]), torch.tensor([1.0, 0.0])), 0)
    x = torch.full((3, 784), 0.25)
    x[1] = 0.9
    # distance to the digits[1] template (0) minus distance to the digits[0] template (1)
    assert torch.allclose(module(x), torch.tensor([0.25 - 0.75, 0.9 - 0.1, 0.25 - 0.75]))
    assert module(x[:1]).shape == (1,)


def test_pixel_similarity_templates_are_recomputed_each_epoch():
    module = module_for(["model=pixel_similarity"])
    x, y = torch.rand(6, 784), torch.tensor([1.0, 0.0] * 3)
    for _ in range(2):
        module.on_train_epoch_start()
        module.training_step((x, y), 0)
    assert torch.allclose(torch.from_numpy(module.templates()[0]), x[y == 1].mean(0))
