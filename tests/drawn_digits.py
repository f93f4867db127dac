"""Handwriting-like 3s and 7s drawn with Pillow: pictures of digits for the tests of the image
preprocessing, the served model and predict, with nothing downloaded.

Each picture varies in size, proportions, stroke width, slant and rotation, dark ink on light
paper, so a model must learn shapes (not positions) to tell them apart, as on MNIST.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from pipeline.predict.images import prepare

DIGITS = [3, 7]  # digits[0] is label 1


def draw(digit: int, rng: np.random.Generator, size: int = 96) -> Image.Image:
    """One picture of `digit` (3 or 7): greyscale, dark ink on white, size x size."""
    image = Image.new("L", (size, size), 255)
    pen = ImageDraw.Draw(image)
    width = int(size * rng.uniform(0.06, 0.13))
    half_w, half_h = size * rng.uniform(0.16, 0.28), size * rng.uniform(0.28, 0.38)
    cx, cy = size / 2 + rng.normal(0, size * 0.04), size / 2 + rng.normal(0, size * 0.04)
    top, bottom = cy - half_h, cy + half_h
    if digit == 7:
        foot = cx + rng.uniform(-0.5, 0.1) * half_w
        pen.line([(cx - half_w, top), (cx + half_w, top), (foot, bottom)], fill=0, width=width, joint="curve")
    elif digit == 3:
        middle = cy + rng.normal(0, half_h * 0.1)
        upper, lower = half_w * rng.uniform(0.75, 1.0), half_w * rng.uniform(0.9, 1.1)
        pen.arc([cx - upper, top, cx + upper, middle], 200, 90, fill=0, width=width)
        pen.arc([cx - lower, middle, cx + lower, bottom], 270, 160, fill=0, width=width)
    else:
        raise ValueError(f"digit {digit}: only 3 and 7 are drawn")
    shear = rng.uniform(-0.25, 0.25)
    image = image.transform(
        image.size,
        Image.Transform.AFFINE,
        (1, shear, -shear * size / 2, 0, 1, 0),
        resample=Image.Resampling.BILINEAR,
        fillcolor=255,
    )
    return image.rotate(rng.uniform(-10, 10), resample=Image.Resampling.BILINEAR, fillcolor=255)


def drawn_set(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n drawn digits as MNIST-style pixels (n, 784) float32 and labels (1: a 3, 0: a 7), alternating."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2 == 0
    pixels = [prepare(np.asarray(draw(3 if label else 7, rng), np.float64) / 255) for label in labels]
    return np.stack(pixels), labels.astype(np.float32)
