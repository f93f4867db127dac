"""The report page: the learner's four questions, each answered by runs from MLflow.

Numbers come from the runs handed in (metrics, params, metric histories, artifacts); the only
constants are fastbook's published accuracies, shown as references beside them.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from html import escape
from pathlib import Path

from mlflow import MlflowClient

from pipeline.report.figures import accuracy_bars, bias_trajectory, epoch_curves, learning_rate_chart

# fastbook chapter 4's printed accuracies on the same 2,038 validation images (citations, not runs).
FASTBOOK = "fastbook chapter 4"
REFERENCES = {  # variant -> (accuracy, short label, what the book measured)
    "pixel_similarity": (0.9511, "pixel similarity", "mean 3 vs mean 7 (average of its 91.68% on 3s and 98.54% on 7s)"),
    "fastbook": (0.9785, "linear1, train_model", "linear1 trained by its hand-written SGD loop, 20 epochs"),
    "mlp": (0.9828, "simple_net 784-30-1", "simple_net 784-30-1, SGD lr 0.1, 40 epochs"),
}
OTHER_REFERENCES = [  # (accuracy, short label, what the book measured)
    (0.9676, "linear1, fastai Learner", "linear1 trained with fastai's Learner, 10 epochs"),
    (0.9971, "resnet18", "resnet18 (pretrained), 1 epoch"),
]


def percent(value: float) -> str:
    return f"{100 * value:.2f}%"


def describe(params: dict[str, str]) -> str:
    """What a run trained, in a few words, from its params."""
    model = params["model.name"]
    if model == "pixel_similarity":
        return "nearest mean image (mean |pixel - template|), nothing trained"
    shape = f"784-{params['model.hidden']}-1 MLP" if model == "mlp" else "linear 784-1"
    bias = "with bias" if params["model.bias"] == "True" else "no bias"
    init = "" if params["model.init_std"] == "None" else f", randn init std {params['model.init_std']}"
    order = "shuffled" if params["optim.shuffle"] == "True" else "fixed order"
    return (
        f"{shape}, {bias}{init}; {params['optim.name']} lr {params['optim.lr']}, {params['optim.loss']}, "
        f"batch {params['optim.batch_size']} {order}, {params['optim.epochs']} epochs"
    )


def history(client: MlflowClient, run_id: str, key: str) -> list[float]:
    """A metric's values in the order they were logged (one per epoch)."""
    return [m.value for m in sorted(client.get_metric_history(run_id, key), key=lambda m: (m.step, m.timestamp))]


def fetch_artifact(client: MlflowClient, run_id: str, name: str, out: Path, as_name: str) -> str:
    """Copy one of a run's artifacts into the report directory; return its name there."""
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(client.download_artifacts(run_id, name, tmp), out / as_name)
    return as_name


def figure(name: str, caption: str) -> str:
    return (
        f'<figure><img src="{escape(name)}" alt="{escape(caption)}"><figcaption>{escape(caption)}</figcaption></figure>'
    )


def table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def accuracy_section(measured, out: Path) -> str:
    rows, bars = [], []
    for m in sorted(measured, key=lambda m: -m.metrics["final_val_acc"]):
        reference = REFERENCES.get(m.variant)
        cited = f"{percent(reference[0])} <small>({escape(reference[2])})</small>" if reference else ""
        rows.append(
            [
                f"<b>{escape(m.variant)}</b>",
                escape(describe(m.params)),
                f"<b>{percent(m.metrics['final_val_acc'])}</b>",
                " / ".join(
                    f"{k[len('final_val_acc_') :]}: {percent(v)}"
                    for k, v in sorted((k, v) for k, v in m.metrics.items() if k.startswith("final_val_acc_"))
                ),
                cited,
                f"<code>{m.run.info.run_id[:8]}</code>",
            ]
        )
        bars.append((m.variant, m.metrics["final_val_acc"], False))
    for accuracy, label, _ in [*REFERENCES.values(), *OTHER_REFERENCES]:
        bars.append((f"book: {label}", accuracy, True))
    accuracy_bars(bars, out / "accuracy.png")
    others = "".join(f"<li>{percent(a)}: {escape(w)}</li>" for a, _, w in OTHER_REFERENCES)
    return (
        table(
            [
                "variant",
                "what it is",
                "validation accuracy",
                "per digit",
                f"{FASTBOOK} reports (reference, not a run here)",
                "run",
            ],
            rows,
        )
        + f"<p>Other published figures from {FASTBOOK} (references): <ul>{others}</ul></p>"
        + figure("accuracy.png", "Validation accuracy: the runs above (solid) and fastbook's figures (hatched)")
    )


def render(measured: list, client: MlflowClient, out: Path, source: dict[str, str]) -> str:
    """The HTML page; writes its pictures into `out`."""
    by_name = {m.variant: m for m in measured}
    linear, no_bias, pixels = by_name["linear"], by_name["linear_no_bias"], by_name["pixel_similarity"]
    acc = {name: m.metrics["final_val_acc"] for name, m in by_name.items()}
    digits = sorted(k[len("final_val_acc_") :] for k in linear.metrics if k.startswith("final_val_acc_"))
    first, second = (d for d in linear.params["data.digits"].strip("[]").split(", "))

    weights = fetch_artifact(client, linear.run.info.run_id, "weights.png", out, "linear_weights.png")
    contributions = fetch_artifact(client, linear.run.info.run_id, "contributions.png", out, "linear_contributions.png")
    no_bias_contributions = fetch_artifact(
        client, no_bias.run.info.run_id, "contributions.png", out, "linear_no_bias_contributions.png"
    )
    templates = fetch_artifact(client, pixels.run.info.run_id, "templates.png", out, "pixel_similarity_templates.png")
    biases = history(client, linear.run.info.run_id, "bias")
    bias_trajectory(list(range(len(biases))), biases, out / "bias.png")
    epoch_curves(
        {m.variant: history(client, m.run.info.run_id, "val_acc") for m in measured},
        "validation accuracy",
        out / "val_acc.png",
    )
    rates = [m for m in measured if m.variant == "linear" or m.variant.startswith("linear_lr_")]
    learning_rate_chart(
        [float(m.params["optim.lr"]) for m in rates],
        [m.metrics["final_val_acc"] for m in rates],
        out / "learning_rate.png",
    )

    best = max(acc, key=acc.get)

    def errors_per_1000(name: str) -> float:
        return 1000 * (1 - acc[name])

    sections = [
        (
            "Why multiply each pixel by a weight?",
            f"""
<p>The linear model's logit is the sum over the 784 pixels of <i>weight &times; pixel</i>, plus the bias.
A pixel without ink (0) adds nothing whatever its weight; an inked pixel adds its weight: red weights vote
{first}, blue weights vote {second}. The product is how one number per pixel says <i>how much ink here
counts, and for which digit</i>; gradient descent chooses those numbers. Below, the run's 784 weights,
then real validation images with their per-pixel products: the logit printed under each is their sum
plus the bias, exactly what the model computed.</p>
<p>This model (<code>linear</code>): <b>{percent(acc["linear"])}</b> of the validation images right.</p>
{figure(weights, "The 784 weights of the linear run (red: ink says " + first + ", blue: ink says " + second + ")")}
{figure(contributions, "weight x pixel for real validation images; logit = sum + bias")}""",
        ),
        (
            "What is the bias for?",
            f"""
<p>Without a bias the logit of a blank image is exactly 0 and every decision line passes through it: the
model can tilt its threshold but not move it. The bias moves it. Measured with the same training:</p>
{
                table(
                    ["variant", "validation accuracy", *[f"on {d}s" for d in digits], "final bias"],
                    [
                        [
                            escape(m.variant),
                            f"<b>{percent(m.metrics['final_val_acc'])}</b>",
                            *[percent(m.metrics[f"final_val_acc_{d}"]) for d in digits],
                            f"{m.metrics['bias']:+.3f}" if "bias" in m.metrics else "none",
                        ]
                        for m in (linear, no_bias)
                    ],
                )
            }
<p>Difference: <b>{100 * (acc["linear"] - acc["linear_no_bias"]):+.2f}</b> percentage points for the bias.
Every image here has ink, so the 784 weights can absorb much of a constant shift; the bias still learns
its own value, epoch by epoch:</p>
{figure("bias.png", "The linear run's bias after each epoch (from its MLflow metric history)")}
{figure(no_bias_contributions, "The same explanation without a bias: the logit is the sum alone")}""",
        ),
        (
            "Why not score abs(pixel - weight)?",
            f"""
<p>Scoring <i>|pixel - weight|</i> with the mean image of each digit as the weights is fastbook's first
baseline (<code>pixel_similarity</code>): an image is the digit whose mean image it differs from least.
Every pixel counts the same, and the templates are averages, not chosen to separate the digits.
The linear model weighs each pixel by how much it tells the two apart.</p>
{
                table(
                    ["variant", "validation accuracy", *[f"on {d}s" for d in digits], "errors per 1,000 images"],
                    [
                        [
                            escape(m.variant),
                            f"<b>{percent(m.metrics['final_val_acc'])}</b>",
                            *[percent(m.metrics[f"final_val_acc_{d}"]) for d in digits],
                            f"{errors_per_1000(m.variant):.1f}",
                        ]
                        for m in (pixels, linear)
                    ],
                )
            }
<p>The linear model makes {errors_per_1000("pixel_similarity") / max(errors_per_1000("linear"), 1e-9):.1f}
times fewer errors.</p>
{figure(templates, "pixel_similarity's templates: the mean images and their difference")}""",
        ),
        (
            "Is 95% the best there is?",
            f"""
<p>The untrained baseline (<code>pixel_similarity</code>) scores {percent(acc["pixel_similarity"])}; the best
run here, <code>{escape(best)}</code>, {
                percent(acc[best])
            }. Every run of the <code>learner</code> sweep, best first:</p>
{accuracy_section(measured, out)}
{figure("val_acc.png", "Validation accuracy after each epoch, per run (MLflow metric history)")}
<p>The learning rate of the linear model (SGD, everything else at its default):</p>
{
                table(
                    ["learning rate", "validation accuracy"],
                    [
                        [m.params["optim.lr"], percent(m.metrics["final_val_acc"])]
                        for m in sorted(rates, key=lambda m: float(m.params["optim.lr"]))
                    ],
                )
            }
{figure("learning_rate.png", "Final validation accuracy against the learning rate")}""",
        ),
    ]
    provenance = table(
        ["variant", "run id", "run name", "started (UTC)", "data (DVC md5)", "git commit"],
        [
            [
                escape(m.variant),
                f"<code>{m.run.info.run_id}</code>",
                escape(m.run.info.run_name or ""),
                escape(_utc(m.run.info.start_time)),
                f"<code>{escape(m.run.data.tags.get('data.dvc_md5', '')[:12])}</code>",
                f"<code>{escape(m.run.data.tags.get('mlflow.source.git.commit', '')[:8])}</code>",
            ]
            for m in measured
        ],
    )
    body = "".join(f"<h2>{escape(title)}</h2>{html}" for title, html in sections)
    meta = "".join(f"<li>{escape(k)}: <code>{escape(v)}</code></li>" for k, v in source.items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Threes and sevens: the learner's questions</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto;line-height:1.45}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:left}}
img{{max-width:100%}}figure{{margin:1em 0}}figcaption{{font-size:.9em;color:#444}}</style></head>
<body><h1>Threes and sevens: the learner's questions, answered by runs</h1>
<p>Validation accuracy is measured on the {first}s and {second}s of MNIST's test set. Every measured number
and picture below comes from these MLflow runs; fastbook's figures are marked as references.</p>
<ul>{meta}</ul>{body}<h2>The runs</h2>{provenance}</body></html>
"""


def _utc(millis: int) -> str:
    return dt.datetime.fromtimestamp(millis / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
