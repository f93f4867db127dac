"""pipeline/predict/images.py: pictures of drawn digits (tests/drawn_digits.py) in the ways people
make them, prepared as MNIST prepared its digits."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pipeline.config.errors import ImageError
from pipeline.predict import images as digit_image
from pipeline.predict.images import mnist_pixels, prepare
from tests.drawn_digits import draw


@pytest.fixture
def picture() -> np.ndarray:
    """A drawn 3: greyscale floats, dark ink on white paper, 96 x 96."""
    return np.asarray(draw(3, np.random.default_rng(0)), np.float64) / 255


def centre_of_mass(pixels: np.ndarray) -> tuple[float, float]:
    image = pixels.reshape(28, 28)
    rows = np.arange(28)
    return (image.sum(1) * rows).sum() / image.sum(), (image.sum(0) * rows).sum() / image.sum()


def ink_box(pixels: np.ndarray) -> tuple[int, int]:
    image = pixels.reshape(28, 28) > 0
    rows, cols = np.flatnonzero(image.any(1)), np.flatnonzero(image.any(0))
    return rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


def test_a_picture_becomes_an_mnist_digit(picture):
    pixels = prepare(picture)
    assert pixels.shape == (784,) and pixels.dtype == np.float32
    assert pixels.min() == 0 and pixels.max() == pytest.approx(1)
    assert max(ink_box(pixels)) == 20  # the longer side fills MNIST's 20-pixel box
    cy, cx = centre_of_mass(pixels)
    assert 13.5 <= cy < 14.5 and 13.5 <= cx < 14.5


def test_an_mnist_digit_comes_back_as_it_went_in(picture):
    pixels = prepare(picture)
    assert np.allclose(prepare(pixels.reshape(28, 28).astype(np.float64)), pixels, atol=1e-6)


def test_light_paper_and_dark_paper_give_the_same_digit(picture):
    assert np.allclose(prepare(picture), prepare(1 - picture), atol=1e-6)


def test_where_and_how_big_the_digit_is_drawn_does_not_matter(picture):
    small = np.asarray(Image.fromarray(picture).resize((48, 48), Image.Resampling.LANCZOS), np.float64)
    canvas = np.ones((300, 200))
    canvas[200:248, 10:58] = small  # a small digit in a corner of a large sheet
    assert np.abs(prepare(canvas) - prepare(picture)).mean() < 0.03


def test_the_aspect_ratio_is_kept():
    tall = np.ones((100, 100))
    tall[10:90, 45:55] = 0.0  # a bar 80 x 10
    height, width = ink_box(prepare(tall))
    assert height == 20 and width in (2, 3, 4)  # 20 * 10 / 80 = 2.5, plus anti-aliased edges


def test_grey_noisy_paper_is_removed(picture):
    rng = np.random.default_rng(1)
    photo = np.clip(0.35 + 0.45 * picture + rng.normal(0, 0.02, picture.shape), 0, 1)  # grey paper, grey ink
    assert np.corrcoef(prepare(photo), prepare(picture))[0, 1] > 0.9  # strokes' grey edges are lost in the noise
    assert np.corrcoef(prepare(np.clip(photo + 0.1, 0, 1)), prepare(picture))[0, 1] > 0.9  # any paper level


@pytest.mark.parametrize("ink", [0, 255], ids=["black ink", "white ink"])
def test_ink_on_a_transparent_background_is_read(tmp_path, picture, ink):
    alpha = np.rint((1 - picture) * 255).astype(np.uint8)  # opaque where the ink is
    rgba = np.zeros((*picture.shape, 4), np.uint8)
    rgba[..., :3], rgba[..., 3] = ink, alpha
    Image.fromarray(rgba, "RGBA").save(tmp_path / "drawing.png")
    assert np.corrcoef(mnist_pixels(tmp_path / "drawing.png"), prepare(picture))[0, 1] > 0.99


def test_16_bit_and_large_pictures_are_read(tmp_path, picture):
    Image.fromarray(np.rint(picture * 65535).astype(np.uint16)).save(tmp_path / "deep.png")
    assert np.allclose(mnist_pixels(tmp_path / "deep.png"), prepare(picture), atol=0.02)
    Image.fromarray(np.rint(picture * 255).astype(np.uint8)).resize((3000, 3000)).save(tmp_path / "large.png")
    assert np.corrcoef(mnist_pixels(tmp_path / "large.png"), prepare(picture))[0, 1] > 0.9  # blurred by the zoom


@pytest.mark.parametrize(
    "grey", [np.ones((30, 40)), np.zeros((30, 40)), np.full((30, 40), 0.5)], ids=["white", "black", "grey"]
)
def test_a_blank_picture_has_no_ink(grey):
    with pytest.raises(ImageError, match="blank.png: no ink found"):
        prepare(grey, "blank.png")


def test_a_faint_smudge_is_not_ink():
    paper = np.ones((30, 40))
    paper[10:20, 10:20] = 1 - 0.5 * digit_image.MIN_CONTRAST
    with pytest.raises(ImageError, match="no ink"):
        prepare(paper)


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"", "empty file"), (b"%PDF-1.7\n", "not a readable"), (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "not a readable")],
)
def test_a_file_that_is_not_a_picture_is_named_in_the_error(tmp_path, content, reason):
    path = tmp_path / "digit.png"
    path.write_bytes(content)
    with pytest.raises(ImageError, match=f"{path}: .*{reason}"):
        mnist_pixels(path)
