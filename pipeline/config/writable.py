"""Where a command writes must be writable before it starts: one line naming the path otherwise."""

from __future__ import annotations

import os
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
