"""The report's fourth question, "Is 95% the best there is?": the ladder of models, the best arm
against the linear model, every arm's accuracy over the seeds, and the learning-rate study."""

from __future__ import annotations

from html import escape
from pathlib import Path

from mlflow import MlflowClient

from pipeline.model.metric_names import VAL_ACC
from pipeline.report.artifacts import history
from pipeline.report.figures import accuracy_points, epoch_curves, learning_rate_chart
from pipeline.report.ladder import BOOK, FASTBOOK, describe, ladder_section
from pipeline.report.markup import figure, percent, spread_text, table
from pipeline.report.runs import Measured, sweep_models
from pipeline.report.verdicts import compare, comparison_html


def every_arm(measured: list[Measured], out: Path) -> str:
    """Every arm, best validation mean first, and the dots-per-seed figure with fastbook's figures beside them."""
    rows = [
        [
            f"<b>{escape(m.name)}</b>",
            escape(describe(m)),
            f"<b>{spread_text(m.spread())}</b>",
            f"<code>{m.run.info.run_id[:8]}</code>…",
        ]
        for m in sorted(measured, key=lambda m: -m.validation)
    ]
    accuracy_points(
        [(m.name, m.spread().values) for m in measured],
        [(f"book: {label}", accuracy) for accuracy, label, _ in BOOK.values()],
        out / "accuracy.png",
    )
    cited = "".join(f"<li>{percent(a)}: {escape(w)}</li>" for a, _, w in BOOK.values())
    caption = "Test accuracy: a dot per seed, the mean (|) and ±1 standard deviation; fastbook's as diamonds"
    return (
        table(["arm", "what it is", "test accuracy: mean ± std (range)", "first seed's run"], rows)
        + f"<p>Published figures from {FASTBOOK} (references, not runs here): <ul>{cited}</ul></p>"
        + figure("accuracy.png", caption)
    )


def learning_rates(by_name: dict[str, Measured], correct: dict, out: Path) -> str:
    """The linear model at each rate of the study, each against the default rate (the `linear` arm)."""
    linear = by_name["linear"]
    rates = sorted(
        [linear, *(m for name, m in by_name.items() if name.startswith("linear lr="))],
        key=lambda m: float(m.params["optim.lr"]),
    )
    learning_rate_chart(
        [float(m.params["optim.lr"]) for m in rates], [m.spread().values for m in rates], out / "learning_rate.png"
    )
    tests = "".join(
        f"<h4>lr {escape(m.params['optim.lr'])}</h4>{comparison_html(compare(m.name, linear.name, correct))}"
        for m in rates
        if m is not linear
    )
    rows = [[m.params["optim.lr"], spread_text(m.spread())] for m in rates]
    return f"""
<p>SGD, everything else at its default (lr {linear.params["optim.lr"]}); each rate against the default:</p>
{table(["learning rate", "test accuracy"], rows)}
{tests}
{figure("learning_rate.png", "Test accuracy against the learning rate, a dot per seed")}"""


def is_95_the_best(measured: list[Measured], correct: dict, client: MlflowClient, out: Path) -> str:
    by_name = {m.name: m for m in measured}
    best = max(measured, key=lambda m: m.validation)  # chosen on validation, shown on test
    versus_linear = (
        comparison_html(compare(best.name, "linear", correct))
        if best.name != "linear"
        else "<p>The linear model is the best here.</p>"
    )
    epoch_curves(
        {m.name: history(client, m.run.info.run_id, VAL_ACC) for m in measured},
        "validation accuracy",
        out / "val_acc.png",
    )
    return f"""
<p>The ladder of models, one rung at a time, each tested against the one below on the same images:</p>
{ladder_section([m for m in measured if m.name in sweep_models()], correct)}
<h3>The best arm here (by validation accuracy), <code>{escape(best.name)}</code>, against the linear model</h3>
{versus_linear}
<h3>Every arm of the <code>learner</code> sweeps, best (by validation) first</h3>
{every_arm(measured, out)}
{figure("val_acc.png", "Validation accuracy after each epoch, first seed of each arm (MLflow metric history)")}
<h3>The learning rate of the linear model</h3>
{learning_rates(by_name, correct, out)}"""
