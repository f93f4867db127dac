"""The model as MLflow serves it: a pyfunc that takes pixels and answers with a digit.

Input: MNIST-style pixels (ink bright on 0) as float32 in 0..1, one image per row of 784, shape
(n, 784), or as 28 rows of 28, shape (n, 28, 28): a NumPy array, a pandas DataFrame, or the JSON
`{"inputs": [...]}` that `mlflow models serve` takes. Anything else (a wrong length, NaN, a value
outside 0..1, strings, an empty list) is refused with an MlflowException that says what was
expected; MLflow's scoring server answers it with HTTP 400 and that message.
Output: a DataFrame, one row per image: `digit` (the predicted one of data.digits) and
`prob_<d0>` (the probability of digits[0], e.g. `prob_3`).

    model_uri = served_model.log(net, model_cfg, digits, input_example)   # inside the training run
    mlflow.pyfunc.load_model("models:/threes-sevens-3-7@champion").predict(pixels)

The network is stored as its state dict (loaded with torch.load(weights_only=True): no pickled
code) plus the model config it is rebuilt from, so serving needs this project installed
(`--env-manager local` in the project's environment, or the training image).
"""

from __future__ import annotations

import json
import tempfile
from importlib.metadata import version
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema

N_PIXELS, SIDE = 784, 28
REQUIREMENTS = ("mlflow", "torch", "pytorch-lightning", "numpy", "pandas")
ENTRY = Path(__file__).with_name("served_model_entry.py")  # what MLflow runs to build the model


def probability_column(digits: list[int]) -> str:
    return f"prob_{digits[0]}"


def signature(digits: list[int]) -> ModelSignature:
    """The output schema. No input schema: MLflow enforces one fixed shape, and the model takes two
    ((n, 784) and (n, 28, 28)); `check_pixels` enforces the input with messages of its own."""
    return ModelSignature(outputs=Schema([ColSpec("long", "digit"), ColSpec("double", probability_column(digits))]))


def refuse(message: str) -> MlflowException:
    return MlflowException.invalid_parameter_value(
        f"{message}. Expected pixels in 0..1 as rows of {N_PIXELS} "
        f"numbers, shape (n, {N_PIXELS}), or as (n, {SIDE}, {SIDE})"
    )


def check_pixels(data) -> np.ndarray:
    """The images in `data` as a float32 (n, 784) array; an MlflowException (HTTP 400) if they are not
    n >= 1 images of 784 or 28x28 finite numbers in 0..1."""
    if isinstance(data, pd.DataFrame):
        data = data.to_numpy()
    if isinstance(data, dict):
        raise refuse(f"got named inputs {sorted(data)[:5]}")
    try:
        pixels = np.asarray(data)
    except ValueError as err:  # ragged nested lists
        raise refuse(f"got rows of different lengths ({err})") from None
    if pixels.dtype.kind not in "fiu":  # strings, objects (ragged lists), booleans
        raise refuse(f"got {pixels.dtype.name} values, not numbers")
    if pixels.size == 0:
        raise refuse(f"got no images (shape {pixels.shape})")
    if pixels.shape[1:] not in ((N_PIXELS,), (SIDE, SIDE)):
        raise refuse(f"got shape {pixels.shape}")
    pixels = pixels.reshape(len(pixels), N_PIXELS)
    finite = np.isfinite(pixels)
    if not finite.all():
        raise refuse(f"image {int(np.flatnonzero(~finite.all(1))[0])} holds NaN or infinity")
    low, high = pixels.min(), pixels.max()
    if low < 0 or high > 1:
        raise refuse(f"got values from {low:g} to {high:g} (0..255 pixels: divide by 255)")
    return pixels.astype(np.float32)


class DigitModel(mlflow.pyfunc.PythonModel):
    """The trained network rebuilt from its config and state dict, answering digit and probability."""

    def load_context(self, context) -> None:
        import json

        import torch

        from pipeline.model.nets import build

        config = json.loads(Path(context.artifacts["config"]).read_text())
        self.digits = list(config["digits"])
        self.net = build(config["model"])
        self.net.load_state_dict(torch.load(context.artifacts["state_dict"], map_location="cpu", weights_only=True))
        self.net.eval()

    def logits(self, pixels: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            return self.net(torch.from_numpy(pixels)).squeeze(-1).double().numpy()

    def pixel_weights(self) -> tuple[np.ndarray, float] | None:
        """A linear model's 784 weights and its bias (0 without one); None for other models."""
        if not hasattr(self.net, "pixel_weights"):
            return None
        return self.net.pixel_weights().astype(np.float64), self.net.bias_value() or 0.0

    def predict(self, context, model_input: np.ndarray, params=None) -> pd.DataFrame:
        """model_input: usually an array; a DataFrame or nested lists are checked the same way."""
        logits = self.logits(check_pixels(model_input))
        first, second = self.digits
        return pd.DataFrame(
            {
                "digit": np.where(logits > 0, first, second).astype(np.int64),
                probability_column(self.digits): 1.0 / (1.0 + np.exp(-logits)),
            }
        )


def log(net, model: dict, digits: list[int], input_example: np.ndarray, name: str = "served_model") -> str:
    """Log `net` (a torch module built by pipeline.model.nets.build from the plain config dict `model`)
    as a pyfunc in the active MLflow run; return its model URI (what registry.register_and_gate takes)."""
    import torch

    with tempfile.TemporaryDirectory() as scratch:
        state = Path(scratch) / "state_dict.pt"
        torch.save({k: v.detach().cpu() for k, v in net.state_dict().items()}, state)
        # The config it is rebuilt from, as an artifact: MLflow would log a model_config as run params.
        config = Path(scratch) / "config.json"
        config.write_text(json.dumps({"model": dict(model), "digits": list(digits)}))
        info = mlflow.pyfunc.log_model(
            name=name,
            python_model=ENTRY,  # models from code: nothing pickled
            artifacts={"state_dict": str(state), "config": str(config)},
            signature=signature(digits),
            input_example=np.asarray(input_example, np.float32),
            pip_requirements=[f"{package}=={version(package)}" for package in REQUIREMENTS],
        )
    return info.model_uri
