"""Strict reader and writer for the IDX format MNIST ships in (NumPy only).

IDX layout: two zero bytes, a dtype code, the number of dimensions, one big-endian
uint32 per dimension, then the values in C order.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

from pipeline.config.errors import IdxError

# dtype codes from the IDX specification; MNIST uses only 0x08 (unsigned byte).
DTYPE_CODES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
CODE_OF_DTYPE = {dt.newbyteorder("="): code for code, dt in DTYPE_CODES.items()}


def decode(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Parse IDX bytes into an array, checking the header against the payload."""
    if len(data) < 4:
        raise IdxError(f"{name}: {len(data)} bytes, expected at least a 4-byte IDX header")
    if data[0] != 0 or data[1] != 0:
        raise IdxError(f"{name}: magic number starts {data[0]:#04x} {data[1]:#04x}, expected 0x00 0x00")
    code, ndim = data[2], data[3]
    if code not in DTYPE_CODES:
        raise IdxError(f"{name}: dtype code {code:#04x}, expected one of {sorted(hex(c) for c in DTYPE_CODES)}")
    if ndim < 1:
        raise IdxError(f"{name}: 0 dimensions, expected at least 1")
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise IdxError(f"{name}: truncated header, {len(data)} bytes for {ndim} dimensions")
    shape = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    dtype = DTYPE_CODES[code]
    expected = header_len + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        raise IdxError(f"{name}: header declares shape {shape} ({expected} bytes), file has {len(data)} bytes")
    return np.frombuffer(data, dtype, offset=header_len).reshape(shape).astype(dtype.newbyteorder("="))


def encode(array: np.ndarray) -> bytes:
    """IDX bytes for an array of one of the IDX dtypes."""
    native = array.dtype.newbyteorder("=")
    if native not in CODE_OF_DTYPE:
        raise IdxError(f"cannot write dtype {array.dtype} as IDX")
    header = bytes([0, 0, CODE_OF_DTYPE[native], array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    return header + np.ascontiguousarray(array, DTYPE_CODES[CODE_OF_DTYPE[native]]).tobytes()


def read(path: str | os.PathLike, name: str | None = None) -> np.ndarray:
    """Read an IDX file; a name ending in .gz is decompressed first. Errors say `name` (default: the path)."""
    path = Path(path)
    name = name or str(path)
    raw = path.read_bytes()
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise IdxError(f"{name}: not a complete gzip file ({err})") from None
    return decode(raw, name)


def check_pair(images: np.ndarray, labels: np.ndarray, images_name: str, labels_name: str) -> None:
    """The MNIST contract for an image file and its label file; errors name the file at fault."""
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise IdxError(f"{images_name}: images {images.dtype} {images.shape}, expected uint8 (N, 28, 28)")
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise IdxError(f"{labels_name}: labels {labels.dtype} {labels.shape}, expected uint8 (N,)")
    if len(images) != len(labels):
        raise IdxError(
            f"{images_name}: {len(images)} images but {labels_name}: {len(labels)} labels, expected equal counts"
        )
    if labels.size and labels.max() > 9:
        raise IdxError(f"{labels_name}: label {int(labels.max())} found, expected labels in 0..9")
