"""Models trained on drawn digits and logged the way training logs them (served_model.log), in a
temporary MLflow store: what the registry, serving and predict tests work with."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import torch
from torch.nn import functional as F

from pipeline.config.compose import as_dict, compose, validate
from pipeline.model.nets import build
from pipeline.tracking import served_model
from tests.drawn_digits import DIGITS, drawn_set

LINEAR = as_dict(validate(compose()).model)
MLP = as_dict(validate(compose(["model=mlp", "model.hidden=16"])).model)


def fit(model: dict, x: np.ndarray, y: np.ndarray, steps: int = 200, seed: int = 0) -> torch.nn.Module:
    """A network of config `model` fitted to (x, y) with full-batch Adam on the BCE loss."""
    torch.manual_seed(seed)
    net = build(model)
    optimizer = torch.optim.Adam(net.parameters(), lr=0.05)
    inputs, targets = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range(steps):
        optimizer.zero_grad()
        F.binary_cross_entropy_with_logits(net(inputs).squeeze(-1), targets).backward()
        optimizer.step()
    return net.eval()


def logits(net: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    """What evaluate computes for each image: the network's logit (> 0: digits[0])."""
    with torch.no_grad():
        return net(torch.from_numpy(np.asarray(x, np.float32))).squeeze(-1).double().numpy()


def log_run(uri: str, net: torch.nn.Module, model: dict, example: np.ndarray) -> tuple[str, str]:
    """A finished MLflow run holding `net` as the served pyfunc; (run id, model URI)."""
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("served")
    with mlflow.start_run() as run:
        model_uri = served_model.log(net, model, DIGITS, example[:2])
    return run.info.run_id, model_uri


class DrawnDigits:
    """Training and validation sets of drawn digits (MNIST-style pixels), made once per session."""

    def __init__(self):
        self.train_x, self.train_y = drawn_set(300, seed=1)
        self.valid_x, self.valid_y = drawn_set(200, seed=2)


def sqlite_uri(directory: Path) -> str:
    return f"sqlite:///{directory}/mlflow.db"
