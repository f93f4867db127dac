"""The report's "draw a digit" section: the HTML it embeds, and the page itself in headless Chromium
(Debian's, else Playwright's own: tests/system_deps.py)."""

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient

from pipeline.data.normalized import read
from pipeline.model.metric_names import BIAS
from pipeline.report.build import build
from pipeline.report.draw_digit import bias_range, colormap, section
from tests import system_deps
from tests.test_sweep import CHROMIUM_ARGS


def embedded(html: str) -> dict:
    return json.loads(re.search(r'<script type="application/json" id="draw-data">(.*?)</script>', html).group(1))


def test_the_section_embeds_the_runs_weights_and_bias_exactly():
    weights = np.random.default_rng(0).normal(size=784).astype(np.float32)
    data = embedded(section(weights, -0.123456789, [3, 7], "abc123"))
    assert np.array_equal(np.asarray(data["weights"], np.float32), weights)
    assert data["bias"] == -0.123456789 and data["digits"] == [3, 7]
    assert 0 < data["limit"] < np.abs(weights).max()  # a few extreme weights do not wash out the colours
    assert embedded(section(weights, None, [3, 7], "abc123"))["bias"] == 0.0  # a model without a bias


def test_the_section_loads_nothing_from_anywhere():
    html = section(np.zeros(784), 0.5, [3, 7], "abc123")
    assert not re.search(r"""(src|href)\s*=|https?:|import\(|fetch\(""", html)


def test_the_section_refuses_other_shapes():
    with pytest.raises(ValueError, match="expected 784 weights, got 10"):
        section(np.zeros(10), 0.0, [3, 7], "abc123")


def test_colours_are_the_reports_blue_white_red():
    table = colormap()
    assert len(table) == 256
    blue, middle, red = table[0], table[128], table[-1]
    assert blue[2] > blue[0] and red[0] > red[2] and min(middle) > 230


def test_the_bias_slider_reaches_past_the_bias():
    assert bias_range(np.full(784, 0.01), 3.0) >= 6.0 and bias_range(np.zeros(784), 0.0) >= 1.0


def stroke(page, box, points) -> None:
    """Press the mouse at the first point (fractions of the canvas) and drag it through the others."""
    xs = [box["x"] + x * box["width"] for x, _ in points]
    ys = [box["y"] + y * box["height"] for _, y in points]
    page.mouse.move(xs[0], ys[0])
    page.mouse.down()
    for x, y in zip(xs[1:], ys[1:]):
        page.mouse.move(x, y, steps=8)
    page.mouse.up()


@pytest.mark.slow
@pytest.mark.needs_chromium
def test_drawing_in_chromium_computes_the_runs_logit(learner_runs, tmp_path):
    from playwright.sync_api import sync_playwright

    uri, overrides, normalized = learner_runs
    index = build(tmp_path / "report", overrides)
    client = MlflowClient(uri)
    linear_id = embedded_run(index.read_text())
    weights = np.load(client.download_artifacts(linear_id, "weights.npy", str(tmp_path))).astype(np.float64)
    bias = client.get_run(linear_id).data.metrics[BIAS]
    data = read(normalized)
    digits = data.digits
    screenshots = Path(os.environ.get("SCREENSHOT_DIR", tmp_path))

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=system_deps.chromium(), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1100, "height": 900}, has_touch=True)
            page = context.new_page()
            errors, requests = [], []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on("request", lambda request: requests.append(request.url))
            page.goto(index.as_uri(), wait_until="load")
            assert not errors, errors
            canvas = page.locator("#draw-canvas")
            canvas.scroll_into_view_if_needed()
            box = canvas.bounding_box()

            def state() -> dict:
                return page.evaluate("window.drawDigit.getState()")

            def python_logit(pixels) -> float:
                return float(np.asarray(pixels, np.float64) @ weights + bias)

            blank = state()
            assert blank["sum"] == 0 and blank["logit"] == pytest.approx(bias, abs=1e-12)

            stroke(page, box, [(0.3, 0.25), (0.7, 0.25), (0.45, 0.8)])  # a "7": a bar and a diagonal
            drawn = state()
            pixels = np.asarray(drawn["pixels"])
            assert pixels.shape == (784,) and pixels.max() > 0.5 and pixels.min() >= 0 and pixels.max() <= 1
            assert abs(drawn["logit"] - python_logit(pixels)) <= 1e-4
            assert abs(drawn["sum"] + drawn["bias"] - drawn["logit"]) <= 1e-9
            assert drawn["verdict"] == (digits[0] if drawn["logit"] > 0 else digits[1])
            assert page.locator("#draw-logit").inner_text() == f"{drawn['logit']:.3f}"
            page.screenshot(path=screenshots / "draw-a-digit.png")

            stroke(page, box, [(0.6, 0.4), (0.62, 0.6)])  # more ink: the logit follows
            more = state()
            assert np.asarray(more["pixels"]).sum() > pixels.sum()
            assert abs(more["logit"] - python_logit(more["pixels"])) <= 1e-4

            page.locator("#draw-clear").click()
            assert state()["sum"] == 0 and not any(state()["pixels"])
            page.touchscreen.tap(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)  # a finger draws too
            assert max(state()["pixels"]) > 0

            for label in (1, 0):  # a real validation image of digits[0], then one of digits[1], set pixel by pixel
                valid_x, valid_y = data.arrays["valid"]
                image = valid_x[np.flatnonzero(valid_y == label)[0]].astype(np.float64)
                page.evaluate("(values) => window.drawDigit.setPixels(values)", image.tolist())
                shown = state()
                assert np.array_equal(np.asarray(shown["pixels"]), image)
                assert abs(shown["logit"] - python_logit(image)) <= 1e-4
                model_says = digits[0] if python_logit(image) > 0 else digits[1]
                assert shown["verdict"] == model_says == digits[1 - label]
                assert page.locator("#draw-verdict").inner_text().startswith(str(model_says))

            page.locator("#draw-clear").click()
            page.evaluate("window.drawDigit.setBias(5)")  # a blank canvas now scores 5: the first digit
            assert state()["logit"] == 5 and state()["verdict"] == digits[0]
            page.locator("#draw-bias-reset").click()
            assert state()["bias"] == bias
            assert not errors, errors
            assert all(url.startswith("file://") for url in requests), requests  # offline: nothing fetched
        finally:
            browser.close()


def embedded_run(html: str) -> str:
    """The run whose weights the drawing section embeds (named in its text)."""
    return re.search(r"the bias are those of run <code>([0-9a-f]+)</code>", html).group(1)
