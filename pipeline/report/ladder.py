"""The report's ladder: from the untrained baseline to a small CNN, each rung with its cost.

Each rung is a variant of the learner sweep (pipeline/report/runs.py): its parameter count (logged by the run as
`n_parameters`), its training time (`fit_seconds`, mean over the seeds), its validation accuracy
over the seeds, and fastbook's published figure for the nearest model it trained, as a reference.
"""

from __future__ import annotations

from html import escape
from itertools import pairwise

from pipeline.metrics import FIT_SECONDS, N_PARAMETERS
from pipeline.report.markup import percent, spread_text, table
from pipeline.report.verdicts import compare, comparison_html

FASTBOOK = "fastbook chapter 4"
# fastbook's printed accuracies on the same 2,038 validation images: citations, not runs.
BOOK = {  # key -> (accuracy, short label, what the book measured)
    "pixel_similarity": (0.9511, "pixel similarity", "mean 3 vs mean 7 (average of its 91.68% on 3s and 98.54% on 7s)"),
    "train_model": (0.9785, "linear1, train_model", "linear1 trained by its hand-written SGD loop, 20 epochs"),
    "learner": (0.9676, "linear1, fastai Learner", "linear1 trained with fastai's Learner, 10 epochs"),
    "simple_net": (0.9828, "simple_net 784-30-1", "simple_net 784-30-1 (23,581 parameters), SGD lr 0.1, 40 epochs"),
    "resnet18": (0.9971, "resnet18", "resnet18 pretrained on ImageNet (millions of parameters), 1 epoch"),
}
RUNGS = {  # arm -> (what it is, the book's nearest model)
    "pixel_similarity": ("distance to the mean 3 and the mean 7; nothing trained", "pixel_similarity"),
    "linear": ("one weight per pixel and a bias", "train_model"),
    "mlp": ("784-128-1: one hidden layer of 128 ReLU units", "simple_net"),
    "cnn": ("two 3×3 conv layers (16, 32 channels) and a linear head", "resnet18"),
}


def rungs(measured: dict) -> list:
    """The arms on the ladder that the sweep ran, simplest first."""
    return [measured[name] for name in RUNGS if name in measured]


def seconds(values: list[float]) -> str:
    mean = sum(values) / len(values)
    return f"{mean:.2f} s" if mean < 10 else f"{mean:.0f} s"


def ladder_section(measured: dict, correct: dict) -> str:
    """The ladder's table, then each rung against the one below it (McNemar, seed by seed)."""
    rows = []
    for m in rungs(measured):
        what, book = RUNGS[m.name]
        cited, _, cited_what = BOOK[book]
        rows.append(
            [
                f"<b>{escape(m.name)}</b>",
                escape(what),
                f"{int(m.values(N_PARAMETERS)[0]):,}",
                seconds(m.values(FIT_SECONDS)),
                f"<b>{spread_text(m.spread())}</b>",
                f"{percent(cited)} <small>({escape(cited_what)})</small>",
            ]
        )
    steps = [compare(upper.name, lower.name, correct) for lower, upper in pairwise(rungs(measured))]
    climbs = "".join(f"<h3>{escape(c.a)} over {escape(c.b)}</h3>{comparison_html(c)}" for c in steps)
    header = ["rung", "what it is", "parameters", "training time", "validation accuracy (seeds)"]
    return (
        "<p>Each rung adds capacity; each costs parameters and training time (measured here, on "
        "this machine, per run: the mean over the seeds).</p>"
        + table([*header, f"{FASTBOOK} reports (reference, not a run here)"], rows)
        + climbs
    )
