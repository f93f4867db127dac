"""The report page: the learner's four questions, each answered by runs from MLflow with error bars,
then a digit to draw, then the runs themselves.

Numbers come from the runs handed in (metrics, params, metric histories, artifacts), each arm over
several seeds: a spread for every accuracy, and for every comparison McNemar's exact test on the
paired per-image predictions (verdicts.py). The sections live in questions.py and accuracies.py,
the drawing in draw_digit.py; the only constants are fastbook's published accuracies (ladder.py).
"""

from __future__ import annotations

import datetime as dt
from html import escape
from pathlib import Path

from mlflow import MlflowClient

from pipeline.model.metric_names import BIAS, TEST_ACC
from pipeline.report import draw_digit
from pipeline.report.accuracies import is_95_the_best
from pipeline.report.artifacts import load_array
from pipeline.report.markup import table
from pipeline.report.questions import what_the_bias_is_for, why_multiply, why_not_abs
from pipeline.report.runs import Measured

STYLE = """<style>body{font-family:sans-serif;max-width:60em;margin:2em auto;line-height:1.45}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}
img{max-width:100%}figure{margin:1em 0}figcaption{font-size:.9em;color:#444}</style>"""


def provenance(measured: list[Measured]) -> str:
    """Every run the page used: its arm, seed, id, name, start, data and commit."""
    header = ["arm", "seed", "run id", "run name", "started (UTC)", "data (DVC md5)", "git commit"]
    rows = [
        [
            escape(m.name),
            str(seed),
            f"<code>{run.info.run_id}</code>",
            escape(run.info.run_name or ""),
            escape(_utc(run.info.start_time)),
            f"<code>{escape(run.data.tags.get('data.dvc_md5', '')[:12])}</code>",
            f"<code>{escape(run.data.tags.get('mlflow.source.git.commit', '')[:8])}</code>",
        ]
        for m in measured
        for seed, run in m.runs.items()
    ]
    runs = sum(len(m.runs) for m in measured)
    return f"<details><summary>{runs} runs</summary>{table(header, rows)}</details>"


def render(measured: list[Measured], correct: dict, client: MlflowClient, out: Path, source: dict[str, str]) -> str:
    """The HTML page; writes its pictures into `out`. correct: arm -> seed -> per-image correctness."""
    by_name = {m.name: m for m in measured}
    linear, no_bias, pixels = by_name["linear"], by_name["linear_no_bias"], by_name["pixel_similarity"]
    digits = linear.params["data.digits"].strip("[]").split(", ")
    first, second = digits
    linear_id = linear.run.info.run_id
    drawing = draw_digit.section(
        load_array(client, linear_id, "weights.npy"),
        linear.run.data.metrics.get(BIAS),
        [int(d) for d in digits],
        linear_id,
    )
    sections = [
        ("Why multiply each pixel by a weight?", why_multiply(linear, client, out, digits)),
        ("What is the bias for?", what_the_bias_is_for(linear, no_bias, correct, client, out, digits)),
        ("Why not score abs(pixel - weight)?", why_not_abs(pixels, linear, correct, client, out, digits)),
        ("Is 95% the best there is?", is_95_the_best(measured, correct, client, out)),
        ("Draw a digit", drawing),
    ]
    body = "".join(f"<h2>{escape(title)}</h2>{html}" for title, html in sections)
    meta = "".join(f"<li>{escape(k)}: <code>{escape(v)}</code></li>" for k, v in source.items())
    images = len(next(iter(correct[linear.name].values())))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Threes and sevens: the learner's questions</title>
{STYLE}</head>
<body><h1>Threes and sevens: the learner's questions, answered by runs</h1>
<p>Every accuracy and test below is measured on the {images:,} {first}s and {second}s of MNIST's test set,
which each run scored once, after training, and which no choice read (the runs' <code>{TEST_ACC}</code>
and <code>test_predictions.csv</code>). What the report chooses (the best arm, the ladder's order) and the
per-epoch curves read the validation split, the last <code>data.valid_last</code> of MNIST's training
images, as every choice of the pipeline does. Every arm
ran with {len(linear.runs)} seeds: each accuracy is given as mean ± standard deviation (range), and each
comparison says "significant" or "within noise" from McNemar's exact test on the two runs' predictions for
the same images, seed by seed, never from the size of the difference. Every measured number and picture
below comes from these MLflow runs; fastbook's figures are marked as
references.</p>
<ul>{meta}</ul>{body}<h2>The runs</h2>{provenance(measured)}</body></html>
"""


def _utc(millis: int) -> str:
    return dt.datetime.fromtimestamp(millis / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
