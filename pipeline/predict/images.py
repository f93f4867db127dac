"""A real picture of one digit made into what the model was trained on: MNIST's 28x28, 0..1.

MNIST's own preprocessing (LeCun et al.), step by step:
  greyscale -> ink bright on dark (light paper is detected and inverted) -> the paper's level
  subtracted and the ink stretched to 0..1 -> cropped to the ink -> longer side scaled to 20 px,
  keeping the aspect ratio (anti-aliased) -> pasted into 28x28 with its centre of mass in the
  middle pixel.
"Middle": MNIST's digits have their centre of mass within [13.5, 14.5) on both axes (0-based
pixel indices; measured on the 2,038 3s and 7s of MNIST's test set), so a validation image written out
and read back comes out as it went in.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from pipeline.config.errors import ImageError

SIDE, BOX = 28, 20  # the image, and the box the digit's longer side is scaled to
CENTRE_LOW = 13.5  # the centre of mass goes to [13.5, 14.5)
WORKING_SIDE = 1024  # larger pictures are scaled down first (memory; a digit needs far fewer pixels)
MIN_CONTRAST = 32 / 255  # ink at least this much brighter than the paper, else "no ink"
NOISE_SPREADS = 5  # the paper's level + this many times its noise (robust std) is still paper
FAINT = 0.1  # pixels fainter than this fraction of the ink may be noise (see ink_on_dark)


def read_grey(path: str | Path) -> np.ndarray:
    """The picture as greyscale floats in 0..1 (transparent parts take the colour the ink is not)."""
    try:
        with Image.open(path) as image:
            image.load()
            image = ImageOps.exif_transpose(image)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as err:
        reason = "empty file" if Path(path).is_file() and Path(path).stat().st_size == 0 else err
        raise ImageError(f"{path}: not a readable PNG/JPEG image ({reason})") from None
    image.thumbnail((WORKING_SIDE, WORKING_SIDE))  # no-op for smaller pictures
    if image.mode.startswith("I"):  # 16-/32-bit greyscale
        grey = np.asarray(image, np.float64)
        return grey / max(grey.max(), 1.0)
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        opaque = np.asarray(rgba)[..., 3] > 127
        luma = np.asarray(rgba.convert("L"), np.float64)
        paper = "black" if opaque.any() and luma[opaque].mean() > 127 else "white"
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, paper), rgba)
    return np.asarray(image.convert("L"), np.float64) / 255


def touching(mask: np.ndarray) -> np.ndarray:
    """The pixels of `mask` and their 8 neighbours."""
    padded, (height, width) = np.pad(mask, 1), mask.shape
    return np.any(
        [padded[1 + dy : 1 + dy + height, 1 + dx : 1 + dx + width] for dy in (-1, 0, 1) for dx in (-1, 0, 1)], axis=0
    )


def ink_on_dark(grey: np.ndarray, path: str | Path = "image") -> np.ndarray:
    """Ink in 0..1 on a 0 background: inverted if the paper is light (the paper covers most of a
    picture, so the median pixel is paper), the paper's level and noise removed, the ink stretched to 1.

    The paper's noise is its robust spread (1.4826 x the median absolute deviation: 0 on a clean
    image). Faint pixels (below FAINT) are noise when any of them lies away from the ink (JPEG ringing,
    paper texture), and are then all set to 0: otherwise they widen the crop. A clean picture
    (MNIST's own digits, a PNG) has faint pixels only on its strokes' anti-aliased edges and keeps
    them: a validation image round-trips unchanged (to 1/255 from the stretch)."""
    ink = 1.0 - grey if np.median(grey) > 0.5 else grey
    ink = ink - np.median(ink)
    noise = NOISE_SPREADS * 1.4826 * np.median(np.abs(ink))
    ink = np.where(ink > noise, ink, 0.0)
    if ink.max() < MIN_CONTRAST:
        raise ImageError(f"{path}: no ink found (the picture is blank or has too little contrast)")
    ink = ink / ink.max()
    strong = ink >= FAINT
    if ((ink > 0) & ~touching(strong)).any():
        ink = np.where(strong, ink, 0.0)
    return ink


def crop_to_ink(ink: np.ndarray) -> np.ndarray:
    rows, cols = np.flatnonzero(ink.any(1)), np.flatnonzero(ink.any(0))
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def fit_box(ink: np.ndarray, box: int = BOX) -> np.ndarray:
    """Scaled so the longer side is `box` pixels, aspect ratio kept. Bilinear, which Pillow widens
    when it shrinks (anti-aliased), with no negative lobes: no ringing around the strokes."""
    height, width = ink.shape
    scale = box / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    scaled = np.asarray(Image.fromarray(ink.astype(np.float32)).resize(size, Image.Resampling.BILINEAR))
    return scaled / scaled.max()


def centre_by_mass(ink: np.ndarray, side: int = SIDE) -> np.ndarray:
    """Pasted into side x side so that its centre of mass lies in [13.5, 14.5) on both axes."""
    mass = ink.sum()
    cy = (ink.sum(1) * np.arange(ink.shape[0])).sum() / mass
    cx = (ink.sum(0) * np.arange(ink.shape[1])).sum() / mass
    top, left = (math.ceil(CENTRE_LOW - c - 1e-9) for c in (cy, cx))  # 1e-9: float noise at 13.5
    out = np.zeros((side, side))
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + ink.shape[0], side), min(left + ink.shape[1], side)
    out[y0:y1, x0:x1] = ink[y0 - top : y1 - top, x0 - left : x1 - left]  # ink beyond the edge is cut
    return out


def prepare(grey: np.ndarray, name: str | Path = "image") -> np.ndarray:
    """A greyscale picture (floats in 0..1, any polarity and size) as the model's input: 784
    float32 pixels in 0..1, MNIST-style. ImageError naming `name` if it holds no ink."""
    return centre_by_mass(fit_box(crop_to_ink(ink_on_dark(grey, name)))).astype(np.float32).reshape(784)


def mnist_pixels(path: str | Path) -> np.ndarray:
    """The PNG/JPEG file at `path` as the model's input (`prepare`)."""
    return prepare(read_grey(path), path)
