"""A network that is not the project's: what a user adding a model writes (tests/test_models.py)."""

from torch import nn


class TwoLayers(nn.Sequential):
    """784 pixels -> `width` ReLU units -> the logit."""

    def __init__(self, width: int):
        super().__init__(nn.Linear(784, width), nn.ReLU(), nn.Linear(width, 1))
