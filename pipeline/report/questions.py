"""The report's first three questions, each answered by the runs: why multiply, what the bias is for,
why not score abs(pixel - weight). Each comparison carries its McNemar verdict (verdicts.py)."""

from __future__ import annotations

from pathlib import Path

from mlflow import MlflowClient

from pipeline.model.metric_names import BIAS, TEST_ACC_FIRST, TEST_ACC_SECOND
from pipeline.model.pictures import bias_trajectory
from pipeline.report.artifacts import fetch_artifact, history
from pipeline.report.markup import figure, percent, spread_text, table
from pipeline.report.runs import Measured
from pipeline.report.verdicts import compare, comparison_html


def digit_means(m: Measured) -> list[str]:
    """The mean test accuracy on the first digit, then on the second."""
    return [percent(m.spread(name).mean) for name in (TEST_ACC_FIRST, TEST_ACC_SECOND)]


def why_multiply(linear: Measured, client: MlflowClient, out: Path, digits: list[str]) -> str:
    first, second = digits
    run_id = linear.run.info.run_id
    weights = fetch_artifact(client, run_id, "weights.png", out, "linear_weights.png")
    contributions = fetch_artifact(client, run_id, "contributions.png", out, "linear_contributions.png")
    return f"""
<p>The linear model's logit is the sum over the 784 pixels of <i>weight &times; pixel</i>, plus the bias.
A pixel without ink (0) adds nothing whatever its weight; an inked pixel adds its weight: red weights vote
{first}, blue weights vote {second}. The product is how one number per pixel says <i>how much ink here
counts, and for which digit</i>; gradient descent chooses those numbers. Below, the weights of the first
seed's run, then real validation images with their per-pixel products: the logit printed under each is
their sum plus the bias, exactly what the model computed. Try it on your own digit at the end of the page.</p>
<p>This model (<code>linear</code>) over {len(linear.runs)} seeds: <b>{spread_text(linear.spread())}</b> of the
test images right.</p>
{figure(weights, f"The 784 weights of the linear run (red: ink says {first}, blue: ink says {second})")}
{figure(contributions, "weight x pixel for real validation images; logit = sum + bias")}"""


def what_the_bias_is_for(
    linear: Measured, no_bias: Measured, correct: dict, client: MlflowClient, out: Path, digits: list[str]
) -> str:
    biases = history(client, linear.run.info.run_id, BIAS)
    bias_trajectory(list(range(len(biases))), biases, out / "bias.png")
    no_bias_contributions = fetch_artifact(
        client, no_bias.run.info.run_id, "contributions.png", out, "linear_no_bias_contributions.png"
    )

    def final_bias(m: Measured) -> str:
        if BIAS not in m.run.data.metrics:
            return "none"
        return f"{m.spread(BIAS).mean:+.3f} ± {m.spread(BIAS).std:.3f}"

    rows = [[m.name, f"<b>{spread_text(m.spread())}</b>", *digit_means(m), final_bias(m)] for m in (linear, no_bias)]
    header = ["variant", "test accuracy", *[f"on {d}s (mean)" for d in digits], "final bias (mean ± std)"]
    return f"""
<p>Without a bias the logit of a blank image is exactly 0 and every decision line passes through it: the
model can tilt its threshold but not move it. The bias moves it. Measured with the same training:</p>
{table(header, rows)}
{comparison_html(compare(linear.name, no_bias.name, correct))}
<p>Every image here has ink, so the 784 weights can absorb much of a constant shift; the bias still learns
its own value, epoch by epoch (first seed: {linear.run.data.metrics.get(BIAS, 0.0):+.3f} at the end):</p>
{figure("bias.png", "The linear run's bias after each epoch (from its MLflow metric history)")}
{figure(no_bias_contributions, "The same explanation without a bias: the logit is the sum alone")}"""


def why_not_abs(
    pixels: Measured, linear: Measured, correct: dict, client: MlflowClient, out: Path, digits: list[str]
) -> str:
    templates = fetch_artifact(client, pixels.run.info.run_id, "templates.png", out, "pixel_similarity_templates.png")
    rows = [
        [m.name, f"<b>{spread_text(m.spread())}</b>", *digit_means(m), f"{1000 * (1 - m.spread().mean):.1f}"]
        for m in (pixels, linear)
    ]
    header = ["variant", "test accuracy", *[f"on {d}s (mean)" for d in digits], "errors per 1,000 images"]
    return f"""
<p>Scoring <i>|pixel - weight|</i> with the mean image of each digit as the weights is fastbook's first
baseline (<code>pixel_similarity</code>): an image is the digit whose mean image it differs from least.
Every pixel counts the same, and the templates are averages, not chosen to separate the digits.
The linear model weighs each pixel by how much it tells the two apart.</p>
{table(header, rows)}
{comparison_html(compare(linear.name, pixels.name, correct))}
{figure(templates, "pixel_similarity's templates: the mean images and their difference")}"""
