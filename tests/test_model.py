import pytest
import pytorch_lightning as pl
import torch

from pipeline.config import validate, compose
from pipeline.datamodule import TensorBatches
from pipeline.model import DigitClassifier, build_net, mnist_loss
from pipeline.train import plain


def module_for(overrides=()):
    cfg = validate(compose(list(overrides)))
    return DigitClassifier(model=plain(cfg.model), optim=plain(cfg.optim))


def test_linear_has_784_weights_and_one_bias():
    net = module_for().net
    assert net.weight.shape == (1, 784) and net.bias.shape == (1,)
    assert sum(p.numel() for p in net.parameters()) == 785


def test_linear_without_bias():
    net = module_for(["model.bias=false"]).net
    assert net.bias is None and sum(p.numel() for p in net.parameters()) == 784


def test_init_std_draws_from_normal():
    torch.manual_seed(0)
    net = module_for(["model.init_std=1.0"]).net
    assert 0.9 < float(net.weight.std()) < 1.1  # PyTorch's default would give ~0.02


def test_mlp_forward_shape():
    module = module_for(["model=mlp", "model.hidden=16"])
    assert module(torch.rand(5, 784)).shape == (5,)


def test_mnist_loss_is_distance_from_target():
    logits = torch.tensor([100.0, -100.0, 0.0])
    assert float(mnist_loss(logits, torch.tensor([1.0, 0.0, 1.0]))) == pytest.approx(0.5 / 3)


@pytest.mark.parametrize("overrides", [[], ["model=mlp"], ["optim=adam"], ["optim.loss=mnist_loss"]])
def test_training_lowers_the_loss_one_step_per_batch(overrides):
    torch.manual_seed(0)
    module = module_for(overrides)
    x = torch.rand(64, 784)
    y = (x[:, :392].sum(1) > x[:, 392:].sum(1)).float()
    before = float(module.model_step((x, y))[0])
    trainer = pl.Trainer(max_epochs=20, accelerator="cpu", logger=False, enable_progress_bar=False,
                         enable_model_summary=False, enable_checkpointing=False)
    trainer.fit(module, train_dataloaders=TensorBatches(x, y, batch_size=64, shuffle=True, seed=0))
    assert trainer.global_step == 20  # one optimizer step per batch (one batch per epoch)
    assert float(module.model_step((x, y))[0]) < before
