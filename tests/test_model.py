import pytest
import pytorch_lightning as pl
import torch

from pipeline.config import validate, compose
from pipeline.datamodule import Chunked, TensorBatches
from pipeline.model import DigitClassifier, backward_is_plain, mnist_loss
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
    assert 0.9 < float(net.weight.detach().std()) < 1.1  # PyTorch's default would give ~0.02


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
    before = float(module.model_step((x, y))[0].detach())
    trainer = pl.Trainer(max_epochs=20, accelerator="cpu", logger=False, enable_progress_bar=False,
                         enable_model_summary=False, enable_checkpointing=False)
    trainer.fit(module, train_dataloaders=TensorBatches(x, y, batch_size=64, shuffle=True, seed=0))
    assert trainer.global_step == 20  # one optimizer step per batch (one batch per epoch)
    assert float(module.model_step((x, y))[0].detach()) < before



@pytest.mark.parametrize("overrides", [[], ["model=pixel_similarity"]])
def test_chunks_of_mini_batches_train_exactly_as_one_mini_batch_per_lightning_batch(overrides):
    x = torch.rand(100, 784)
    y = (x[:, :392].sum(1) > x[:, 392:].sum(1)).float()
    results = {}
    for per_chunk in (1, 3, 0):  # 0: the whole epoch (7 mini-batches of 16) in one Lightning batch
        torch.manual_seed(0)
        module = module_for(overrides)
        trainer = pl.Trainer(max_epochs=3, accelerator="cpu", logger=False, enable_progress_bar=False,
                             enable_model_summary=False, enable_checkpointing=False)
        trainer.fit(module, train_dataloaders=Chunked(TensorBatches(x, y, batch_size=16, shuffle=True, seed=0), per_chunk))
        results[per_chunk] = module.state_dict(), module.history, trainer
    for per_chunk in (3, 0):
        state, history, trainer = results[per_chunk]
        assert trainer.global_step == results[1][2].global_step  # optimizer steps, not Lightning batches
        assert trainer.fit_loop.epoch_loop.batch_progress.total.completed == 3 * {3: 3, 0: 1}[per_chunk]
        assert history == results[1][1]  # the same epoch losses
        for name, tensor in results[1][0].items():
            assert torch.equal(state[name], tensor), name  # bitwise the same weights (or templates)
    assert results[1][2].global_step == (0 if overrides else 3 * 7)
    if overrides:  # the templates are the class means over all mini-batches of all chunks
        assert torch.allclose(results[0][0]["net.templates"][0], x[y == 1].mean(0))


class CountBackwards(pl.Callback):
    """A callback with a backward hook: Lightning's manual_backward must then run, hooks and all."""

    def __init__(self):
        self.calls = 0

    def on_after_backward(self, trainer, pl_module):
        self.calls += 1


def fit_small(callbacks=(), precision="32-true", strategy="auto"):
    torch.manual_seed(0)
    x = torch.rand(100, 784)
    y = (x[:, :392].sum(1) > x[:, 392:].sum(1)).float()
    module = module_for()
    trainer = pl.Trainer(max_epochs=3, accelerator="cpu", logger=False, enable_progress_bar=False,
                         enable_model_summary=False, enable_checkpointing=False, callbacks=list(callbacks),
                         precision=precision, strategy=strategy)
    trainer.fit(module, train_dataloaders=Chunked(TensorBatches(x, y, batch_size=16, shuffle=True, seed=0), 0))
    return module, trainer


def test_plain_backward_skips_only_hooks_nobody_listens_to():
    plain_module, plain_trainer = fit_small()
    assert plain_module._plain_backward and backward_is_plain(plain_trainer)
    counter = CountBackwards()
    hooked_module, hooked_trainer = fit_small([counter])
    assert not hooked_module._plain_backward  # a listener: Lightning's manual_backward, its hooks run
    assert counter.calls == hooked_trainer.global_step == plain_trainer.global_step == 3 * 7
    for name, tensor in plain_module.state_dict().items():
        assert torch.equal(hooked_module.state_dict()[name], tensor), name  # bitwise the same training
    assert hooked_module.history == plain_module.history


@pytest.mark.parametrize("settings", [{"precision": "bf16-mixed"}, {"strategy": "ddp_spawn"}])
def test_backward_is_not_plain_with_loss_scaling_or_several_processes(settings):
    trainer = pl.Trainer(accelerator="cpu", devices=2 if "strategy" in settings else 1, logger=False,
                         enable_progress_bar=False, enable_model_summary=False, **settings)
    trainer.strategy.connect(module_for())  # what fit does first; no processes are started here
    assert not backward_is_plain(trainer)


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
