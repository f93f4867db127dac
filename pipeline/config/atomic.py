"""Where commands write: a place they can write, checked before they start (`check_writable`, one line
naming the path otherwise), and outputs that appear whole or not at all (`atomic_directory`,
`atomic_file`: write beside the target, then rename)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.config.errors import NotWritable


def check_writable(directory: str | Path, shown_as: str, elsewhere: str = "write elsewhere") -> None:
    """`directory` exists and is writable, or can be made: its nearest existing ancestor is a
    writable directory. Nothing is created. The message begins with shown_as (`hydra.run.dir=...`)
    and ends with `elsewhere`, the other way out."""
    directory = Path(directory).absolute()
    existing = directory
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise NotWritable(f"{shown_as}: {existing} is a file, not a directory; move it away, or {elsewhere}")
    if not os.access(existing, os.W_OK | os.X_OK):  # also false on a read-only file system, even for root
        raise NotWritable(f"{shown_as}: {existing} is not writable by this user; fix its permissions, or {elsewhere}")


def _scratch(path: Path) -> Path:
    return path.with_name(f".{path.name}.partial-{os.getpid()}")


@contextmanager
def atomic_directory(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty scratch directory that replaces `path` only if the block succeeds."""
    path = Path(path)
    scratch = _scratch(path)
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    try:
        yield scratch
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    retired = path.with_name(f".{path.name}.old-{os.getpid()}")
    if path.exists():
        os.replace(path, retired)
    os.replace(scratch, path)
    shutil.rmtree(retired, ignore_errors=True)


@contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a scratch file path that replaces `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = _scratch(path)
    try:
        yield scratch
    except BaseException:
        scratch.unlink(missing_ok=True)
        raise
    os.replace(scratch, path)
