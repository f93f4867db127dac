"""MNIST from the canonical mirrors, through torchvision's own mirror list and download code
(the only source that imports torchvision, and so torch)."""

from __future__ import annotations

import gzip
import socket
import sys
import zlib
from pathlib import Path

import numpy as np

from pipeline.config.errors import FetchError
from pipeline.config.schema import Config
from pipeline.data.sources.local import read_idx_dir


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
