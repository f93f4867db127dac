import gzip

import numpy as np
import pytest

from pipeline.data import idx


def test_round_trip_uint8_images():
    images = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    data = idx.encode(images)
    assert data[:4] == bytes([0, 0, 0x08, 3])
    assert np.array_equal(idx.decode(data), images)


def test_read_gzipped(tmp_path):
    labels = np.array([3, 7, 7], np.uint8)
    (tmp_path / "l.gz").write_bytes(gzip.compress(idx.encode(labels)))
    assert np.array_equal(idx.read(tmp_path / "l.gz"), labels)


@pytest.mark.parametrize(
    "data, message",
    [
        (b"\x00\x00", "at least a 4-byte IDX header"),
        (b"\x01\x00\x08\x01" + (1).to_bytes(4, "big") + b"\x00", "magic number"),
        (b"\x00\x00\x07\x01" + (1).to_bytes(4, "big") + b"\x00", "dtype code 0x07"),
        (b"\x00\x00\x08\x02" + (1).to_bytes(4, "big"), "truncated header"),
        (b"\x00\x00\x08\x01" + (5).to_bytes(4, "big") + b"\x00\x01", r"declares shape \(5,\)"),
        (b"\x00\x00\x08\x01" + (1).to_bytes(4, "big") + b"\x00\x01", "file has 10 bytes"),
    ],
)
def test_decode_rejects_with_file_name(data, message):
    with pytest.raises(idx.IdxError, match=message) as err:
        idx.decode(data, "some-file")
    assert str(err.value).startswith("some-file:")


def test_truncated_gzip_is_an_idx_error(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(idx.encode(np.zeros(100, np.uint8)))[:-10])
    with pytest.raises(idx.IdxError, match="not a complete gzip file"):
        idx.read(path)


@pytest.mark.parametrize(
    "images, labels, message, file_at_fault",
    [
        (np.zeros((3, 28, 28), np.uint8), np.zeros(2, np.uint8), "3 images but lab: 2 labels", "img"),
        (
            np.zeros((3, 28, 28), np.uint8),
            np.array([1, 12, 3], np.uint8),
            "label 12 found, expected labels in 0..9",
            "lab",
        ),
        (np.zeros((3, 27, 28), np.uint8), np.zeros(3, np.uint8), r"expected uint8 \(N, 28, 28\)", "img"),
        (np.zeros(3, np.uint8), np.zeros(3, np.uint8), r"images uint8 \(3,\), expected", "img"),
        (np.zeros((3, 28, 28), np.float32), np.zeros(3, np.uint8), "images float32", "img"),
        (np.zeros((3, 28, 28), np.uint8), np.zeros((3, 1), np.uint8), r"expected uint8 \(N,\)", "lab"),
        (np.zeros((3, 28, 28), np.uint8), np.zeros(3, np.int32), "labels int32", "lab"),
    ],
)
def test_check_pair_names_the_file_at_fault(images, labels, message, file_at_fault):
    with pytest.raises(idx.IdxError, match=message) as err:
        idx.check_pair(images, labels, "img", "lab")
    assert str(err.value).startswith(f"{file_at_fault}:")


def test_zero_dimensions_is_refused():
    with pytest.raises(idx.IdxError, match="some-file: 0 dimensions, expected at least 1"):
        idx.decode(b"\x00\x00\x08\x00", "some-file")


def test_read_names_the_path_or_the_given_name(tmp_path):
    path = tmp_path / "bad-idx"
    path.write_bytes(b"\x00\x00\x08\x01" + (3).to_bytes(4, "big") + b"\x00")
    with pytest.raises(idx.IdxError, match=f"^{path}: header declares shape"):
        idx.read(path)
    with pytest.raises(idx.IdxError, match="^http://mirror/bad-idx: header declares shape"):
        idx.read(path, "http://mirror/bad-idx")


def test_encode_refuses_dtypes_idx_cannot_hold():
    with pytest.raises(idx.IdxError, match="cannot write dtype"):
        idx.encode(np.zeros(3, np.uint64))
