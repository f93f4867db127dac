"""The report's "draw a digit" section: the linear model computing on the learner's own drawing.

A static piece of HTML: the run's 784 weights and its bias embedded as JSON, the script inlined
(draw_digit.js beside this file), nothing loaded from anywhere, so the page works from file://
offline. Drawing on the 28x28 canvas (mouse, finger or pen) shows the pixels as the model sees
them, weight x pixel in the report's red/blue (matplotlib's RdBu_r, centred on 0), their sum, the
bias, the logit and the verdict; a slider moves the bias. window.drawDigit is the script's API
for tests: setPixels(784 values), getState() -> {pixels, products, sum, bias, logit, probability,
verdict, confidence}, clear(), setBias(b).
"""

from __future__ import annotations

import json
import math
from html import escape
from pathlib import Path

import numpy as np

SCRIPT = Path(__file__).with_name("draw_digit.js")
COLORMAP = "RdBu_r"  # as figures.weights_heatmap and figures.contribution_maps (pipeline/report/figures.py)

STYLE = """<style>
.draw-row{display:flex;flex-wrap:wrap;gap:1.2em;align-items:flex-start}
.draw-row figure{margin:0;max-width:280px}
#draw-canvas{width:280px;height:280px;border:1px solid #888;background:#fff;touch-action:none;cursor:crosshair}
.draw-small{width:168px;height:168px;border:1px solid #ccc;image-rendering:pixelated}
.draw-row figure:has(.draw-small){max-width:170px}
#draw-bias{width:20em;vertical-align:middle}
</style>"""


def colormap(name: str = COLORMAP, steps: int = 256) -> list[list[int]]:
    """The report's diverging colours as `steps` RGB triples, from most negative to most positive."""
    import matplotlib  # the colour table only: no pyplot, no backend

    table = matplotlib.colormaps[name](np.linspace(0.0, 1.0, steps))[:, :3]
    return np.rint(255 * table).astype(int).tolist()


def bias_range(weights: np.ndarray, bias: float) -> float:
    """The slider's half-width: wide enough to flip any verdict a drawn digit is likely to get."""
    return float(math.ceil(max(2 * abs(bias), 0.1 * float(np.abs(weights).sum()), 1.0)))


def colour_limit(weights: np.ndarray) -> float:
    """The |value| drawn darkest: the 98th percentile of |weight|, so a few extreme weights do not wash out
    the rest (a pixel is at most 1, so weight x pixel shares the weights' scale)."""
    return float(np.percentile(np.abs(weights), 98)) or 1.0


def section(weights, bias: float | None, digits: list[int], run: str) -> str:
    """The section's HTML: canvases, read-outs, the bias slider and the inlined script."""
    weights = np.asarray(weights, np.float64).reshape(-1)
    if weights.shape != (784,):
        raise ValueError(f"draw_digit: expected 784 weights, got {weights.size}")
    bias = 0.0 if bias is None else float(bias)
    first, second = digits
    half = bias_range(weights, bias)
    data = {
        "weights": weights.tolist(),
        "bias": bias,
        "digits": list(digits),
        "colormap": colormap(),
        "limit": colour_limit(weights),
    }
    small = 'width="28" height="28" class="draw-small"'
    return f"""{STYLE}
<p>Draw a {first} or a {second} with the mouse or a finger. Your drawing is scaled and centred as MNIST's
digits were (uncheck the box to see it as drawn); then every pixel is multiplied by its weight and the
784 products are added up, as the model does. The weights and the bias are those of run <code>{escape(run)}</code>.</p>
<div class="draw-row">
<figure><canvas id="draw-canvas" width="280" height="280"></canvas><figcaption>
<button id="draw-clear" type="button">Clear</button>
<label><input id="draw-centre" type="checkbox" checked> scale and centre like MNIST</label></figcaption></figure>
<figure><canvas id="draw-pixels" {small}></canvas>
<figcaption>the 28&times;28 pixels the model sees (0 to 1)</figcaption></figure>
<figure><canvas id="draw-products" {small}></canvas>
<figcaption>weight &times; pixel: red says {first}, blue says {second}</figcaption></figure>
<figure><canvas id="draw-weights" {small}></canvas>
<figcaption>the 784 weights (same colours; the strongest 2% at the darkest)</figcaption></figure>
</div>
<table><tbody>
<tr><td>sum of weight &times; pixel</td><td id="draw-sum"></td></tr>
<tr><td>+ bias</td><td id="draw-bias-shown"></td></tr>
<tr><td>= logit</td><td id="draw-logit"></td></tr>
<tr><td>verdict (logit &gt; 0 says {first})</td><td><b id="draw-verdict"></b></td></tr>
</tbody></table>
<p><label>bias <input id="draw-bias" type="range" min="{-half}" max="{half}" step="any"></label>
<output id="draw-bias-value"></output> <button id="draw-bias-reset" type="button">back to the trained bias
({bias:+.3f})</button> &mdash; a blank canvas scores exactly the bias: move it and watch the verdict flip.</p>
<script type="application/json" id="draw-data">{json.dumps(data)}</script>
<script>{SCRIPT.read_text()}</script>"""
