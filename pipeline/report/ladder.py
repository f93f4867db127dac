"""The report's ladder: every model of the learner sweep, from the least to the most accurate, each
rung with its cost and tested against the one below it.

Each rung is a model arm of the learner sweep (runs.py): what it is (from its params), its
parameter count (logged by the run as `n_parameters`), its training time (`fit_seconds`, mean over
the seeds), its test accuracy over the seeds, and fastbook's published figure for the nearest
model the book trained, where there is one, as a reference.
"""

from __future__ import annotations

from html import escape
from itertools import pairwise

from pipeline.model.metric_names import FIT_SECONDS, N_PARAMETERS
from pipeline.report.markup import percent, spread_text, table
from pipeline.report.verdicts import compare, comparison_html

FASTBOOK = "fastbook chapter 4"
# fastbook's printed accuracies on its 2,038 validation images (MNIST's test set, our `test` split): citations.
BOOK = {  # key -> (accuracy, short label, what the book measured)
    "pixel_similarity": (0.9511, "pixel similarity", "mean 3 vs mean 7 (average of its 91.68% on 3s and 98.54% on 7s)"),
    "train_model": (0.9785, "linear1, train_model", "linear1 trained by its hand-written SGD loop, 20 epochs"),
    "learner": (0.9676, "linear1, fastai Learner", "linear1 trained with fastai's Learner, 10 epochs"),
    "simple_net": (0.9828, "simple_net 784-30-1", "simple_net 784-30-1 (23,581 parameters), SGD lr 0.1, 40 epochs"),
    "resnet18": (0.9971, "resnet18", "resnet18 pretrained on ImageNet (millions of parameters), 1 epoch"),
}
NEAREST_IN_BOOK = {  # a model of conf/model/ -> the book's nearest figure (a model the book has no kin of: none)
    "pixel_similarity": "pixel_similarity",
    "fastbook": "train_model",
    "linear": "train_model",
    "mlp": "simple_net",
    "cnn": "resnet18",
}


def describe(m) -> str:
    """What an arm trained, in a few words, from its params: the network class and its arguments,
    then its recipe (none for a model without parameters)."""
    params = m.params
    network = params["model._target_"].rsplit(".", 1)[-1]
    arguments = ", ".join(
        f"{key.removeprefix('model.')} {value}"
        for key, value in sorted(params.items())
        if key.startswith("model.") and key not in ("model._target_", "model.name") and value != "None"
    )
    if m.values(N_PARAMETERS)[0] == 0:
        return f"{network}({arguments}): nothing to train by gradient, {params['fit.epochs']} epoch(s)"
    order = "shuffled" if params["fit.shuffle"] == "True" else "fixed order"
    optimizer = params["optim._target_"].rpartition(".")[2]
    return (
        f"{network}({arguments}); {optimizer} lr {params['optim.lr']}, {params['fit.loss']}, "
        f"batch {params['fit.batch_size']} {order}, {params['fit.epochs']} epochs"
    )


def seconds(values: list[float]) -> str:
    mean = sum(values) / len(values)
    return f"{mean:.2f} s" if mean < 10 else f"{mean:.0f} s"


def reference(name: str) -> str:
    if name not in NEAREST_IN_BOOK:
        return "—"
    cited, _, cited_what = BOOK[NEAREST_IN_BOOK[name]]
    return f"{percent(cited)} <small>({escape(cited_what)})</small>"


def ladder_section(rungs: list, correct: dict) -> str:
    """The ladder's table, then each rung against the one below it (McNemar, seed by seed)."""
    rungs = sorted(rungs, key=lambda m: m.validation)  # ordered on validation, shown on test
    rows = [
        [
            f"<b>{escape(m.name)}</b>",
            escape(describe(m)),
            f"{int(m.values(N_PARAMETERS)[0]):,}",
            seconds(m.values(FIT_SECONDS)),
            f"<b>{spread_text(m.spread())}</b>",
            reference(m.name),
        ]
        for m in rungs
    ]
    steps = [compare(upper.name, lower.name, correct) for lower, upper in pairwise(rungs)]
    climbs = "".join(f"<h3>{escape(c.a)} over {escape(c.b)}</h3>{comparison_html(c)}" for c in steps)
    header = ["rung", "what it is", "parameters", "training time", "test accuracy (seeds)"]
    return (
        "<p>Every model of the learner sweep, each with its own recipe, from the least to the most "
        "accurate; each costs parameters and training time (measured here, on this machine, per run: "
        "the mean over the seeds).</p>"
        + table([*header, f"{FASTBOOK} reports (reference, not a run here)"], rows)
        + climbs
    )
