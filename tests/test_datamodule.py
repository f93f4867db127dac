from types import SimpleNamespace

import torch

from pipeline.data.datamodule import NormalizedMNIST, TensorBatches
from pipeline.data.normalized import read


def test_batches_cover_every_row_once_in_a_new_seeded_order_each_epoch():
    x, y = torch.arange(10.0).repeat(3, 1).T, torch.arange(10.0)  # row i: pixels i, label i
    batches = TensorBatches(x, y, batch_size=4, shuffle=True, seed=7)
    first, second = list(batches), list(batches)
    assert [len(yb) for _, yb in first] == [4, 4, 2]
    for xb, yb in first:
        assert torch.equal(xb[:, 0], yb)  # each image keeps its label
    order = [int(label) for _, yb in first for label in yb]
    assert order == torch.randperm(10, generator=torch.Generator().manual_seed(7)).tolist()
    assert sorted(int(label) for _, yb in second for label in yb) == list(range(10))
    assert order != [int(label) for _, yb in second for label in yb]
    unshuffled = TensorBatches(x, y, batch_size=4, shuffle=False, seed=7)
    assert [int(label) for _, yb in unshuffled for label in yb] == list(range(10))


def test_setup_puts_the_data_on_the_trainers_root_device(normalized):
    # The meta device stands in for a GPU: the tensors must land where the strategy trains.
    datamodule = NormalizedMNIST(read(normalized.paths.normalized), 256, True, 0)
    datamodule.trainer = SimpleNamespace(
        strategy=SimpleNamespace(root_device=torch.device("meta")), global_rank=0, world_size=1
    )
    datamodule.setup("fit")
    for tensor in (datamodule.train_x, datamodule.train_y, datamodule.valid_x, datamodule.valid_y):
        assert tensor.device.type == "meta"
    xb, _ = next(iter(datamodule.train_dataloader()))  # the first mini-batch
    assert xb.device.type == "meta" and xb.shape == (len(datamodule.train_y[:256]), 784)
    assert datamodule.transfer_batch_to_device((xb,), torch.device("cpu"), 0)[0] is xb
