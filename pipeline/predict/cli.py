"""Which digit is in these pictures? The registered model on your own PNG or JPEG files.

    python -m pipeline.predict digit.png photo.jpg                  # the champion of params.yaml's digits
    python -m pipeline.predict digit.png --model-uri models:/threes-sevens-3-7/2
    python -m pipeline.predict digit.png --explain explain.png      # what a linear model saw and weighed

Each picture is prepared the way MNIST's digits were (images.py). One line per
picture: the file, the digit, the probability of data.digits[0], the model version that answered.
A file that cannot be read, or holds no ink, gets one `error:` line; the others are still
predicted, and the exit status is 1.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from pipeline.config.atomic import atomic_file
from pipeline.config.cli import ArgumentParser, run_command
from pipeline.config.errors import ImageError, PipelineError
from pipeline.config.project import project_dir


def model_and_tracking_uri(model_uri: str | None) -> tuple[str, str]:
    """The model to load (default: the champion of params.yaml's digits) and the tracking URI
    (params.yaml's tracking.uri, else $MLFLOW_TRACKING_URI, else the project's mlflow.db)."""
    from pipeline.config.compose import load_params
    from pipeline.tracking.registry import CHAMPION, model_name
    from pipeline.tracking.store import default_uri, sqlite_path, tracking_uri

    params = project_dir() / "params.yaml"
    cfg = load_params(params) if model_uri is None or params.is_file() else None
    uri = model_uri or f"models:/{model_name(cfg)}@{CHAMPION}"
    tracking = tracking_uri(cfg) if cfg else os.environ.get("MLFLOW_TRACKING_URI") or default_uri()
    database = sqlite_path(tracking)
    if database is not None and not database.is_file():  # MLflow would create an empty one
        raise PipelineError(
            f"{database}: no MLflow database (tracking URI {tracking}); train a model first "
            "(dvc repro), or set MLFLOW_TRACKING_URI"
        )
    return uri, tracking


def pinned(client, uri: str) -> tuple[str, str]:
    """`models:/NAME@ALIAS` resolved to its version now (so the answer names the version that gave
    it); the URI to load and how to name it in the output."""
    if not uri.startswith("models:/") or "@" not in uri:
        return uri, uri
    name, alias = uri.removeprefix("models:/").rsplit("@", 1)
    version = client.get_model_version_by_alias(name, alias).version
    return f"models:/{name}/{version}", f"{name} v{version} ({alias})"


def load(model_uri: str | None):
    """The served model and how to name it; PipelineError with one line if it cannot be loaded."""
    import mlflow
    from mlflow.exceptions import MlflowException

    uri, tracking = model_and_tracking_uri(model_uri)
    mlflow.set_tracking_uri(tracking)  # where models:/ URIs are looked up
    try:
        uri, label = pinned(mlflow.MlflowClient(), uri)
        return mlflow.pyfunc.load_model(uri), label
    except (MlflowException, OSError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise PipelineError(
            f"{uri}: cannot load the model ({reason}); train and register one first (dvc repro), or pass --model-uri"
        ) from None


def explain_figure(
    names: list[str], images: np.ndarray, weights: np.ndarray, bias: float, digits: list[int], path: Path
) -> None:
    """Per picture: the 28x28 image the model saw (top) and weight x pixel (bottom; red pushes
    towards digits[0], blue towards digits[1]); logit = the bottom map's sum + bias."""
    from matplotlib.figure import Figure  # no pyplot: no display backend involved

    contributions = images * weights
    limit = float(np.abs(contributions).max()) or 1.0
    fig = Figure(figsize=(2.2 * len(images), 5.0), dpi=100, layout="constrained")
    axes = fig.subplots(2, len(images), squeeze=False)
    for column, (name, image, contribution) in enumerate(zip(names, images, contributions)):
        logit = float(contribution.sum()) + bias
        top, bottom = axes[0, column], axes[1, column]
        top.imshow(image.reshape(28, 28), cmap="gray", vmin=0, vmax=1)
        top.set_title(f"{Path(name).name}\nas the model saw it", fontsize=8)
        bottom.imshow(contribution.reshape(28, 28), cmap="RdBu_r", vmin=-limit, vmax=limit)
        said = digits[0] if logit > 0 else digits[1]
        bottom.set_title(f"weight x pixel\nlogit {logit:+.2f} (bias {bias:+.2f}): {said}", fontsize=8)
        for ax in (top, bottom):
            ax.set_xticks([])
            ax.set_yticks([])
    with atomic_file(path) as tmp:
        fig.savefig(tmp, format="png")


def predict(images: list[str], model_uri: str | None = None, explain: Path | None = None) -> int:
    """Print one line per image (errors on stderr); return the exit status: 1 if any image failed."""
    from pipeline.predict.images import mnist_pixels

    model, label = load(model_uri)
    served = model.unwrap_python_model()
    weights = served.pixel_weights() if explain else None
    if explain and weights is None:
        raise PipelineError(f"--explain: {label} is not a linear model: it has no per-pixel weights")
    names, pixels, failed = [], [], 0
    for name in images:
        try:
            pixels.append(mnist_pixels(name))
            names.append(name)
        except ImageError as err:
            print(f"error: {err}", file=sys.stderr)
            failed += 1
    if pixels:
        answers = model.predict(np.stack(pixels))
        column = f"prob_{served.digits[0]}"
        for name, digit, probability in zip(names, answers["digit"], answers[column]):
            print(f"{name}: {digit} (p({served.digits[0]}) = {probability:.3f})  model {label}")
        if explain:
            explain_figure(names, np.stack(pixels), *weights, served.digits, explain)
            print(f"explained: {explain}")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m pipeline.predict", description=__doc__.split("\n\n")[0])
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="PNG or JPEG files, one digit each")
    parser.add_argument(
        "--model-uri",
        help="any MLflow model URI of a model logged by pipeline/tracking/served_model.py "
        "(default: models:/<registered model>@champion, from params.yaml)",
    )
    parser.add_argument(
        "--explain",
        type=Path,
        metavar="OUT.png",
        help="also write each image as the model saw it and its weight x pixel map (linear models)",
    )
    args = parser.parse_args(argv)
    return predict(args.images, args.model_uri, args.explain)


def run(argv: list[str] | None = None) -> int:
    """`python -m pipeline.predict`: main through the command wrapper; the exit status."""
    return run_command(main, argv)
