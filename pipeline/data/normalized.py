"""The normalized data as a run reads it: every file of data/normalized read once, whole, and
refused in one line that names the file, what is wrong with it, and the command that remakes it.

    data = read(directory)        # arrays, digits, counts, and each file's MD5 (from the same bytes)
    data = read_for(cfg)          # ... and refused unless it is the pair the configuration asks for

On disk (written by the normalize stage): `{split}_x.npy` (float32 (N, 784) in 0..1) and
`{split}_y.npy` (float32 (N,), 1 for digits[0]) for the splits train, valid and test
(pipeline/filter.py), and `stats.json` (`digits`, `valid_last`, `raw_sha256` of the raw files, each
split's `count`, each array file's `md5`, class balance and pixel statistics). Plain .npy files:
their bytes depend only on the arrays, not on the Python or NumPy patch version that wrote them (a
zip container's headers do), so dvc.lock is reproducible anywhere; the MD5s recorded beside them
catch a damaged file.
NumPy only: the data stages may use it.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.config.errors import InputError
from pipeline.config.schema import Config

SPLITS = ("train", "valid", "test")  # pipeline/filter.py says what each is
N_PIXELS = 784
STATS = "stats.json"
REMAKE_DATA = "remake it with `dvc repro`, or restore the committed version with `dvc checkout {target}`"


def x_file(split: str) -> str:
    return f"{split}_x.npy"


def y_file(split: str) -> str:
    return f"{split}_y.npy"


def unreadable(path: Path, what: str, target: Path | None = None) -> InputError:
    """`path: what; remake it with ...` (target: the DVC output that holds path, its directory by default)."""
    return InputError(f"{path}: {what}; " + REMAKE_DATA.format(target=target or path.parent))


def require_file(path: Path, target: Path | None = None) -> None:
    if path.is_dir():
        raise unreadable(path, "is a directory, expected a file", target)
    if not path.is_file():
        raise unreadable(path, "missing", target)


def load_npy(path: Path, data: bytes) -> np.ndarray:
    """A .npy file's array from its bytes; no pickles (allow_pickle=False)."""
    try:
        return np.load(io.BytesIO(data), allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise unreadable(path, f"not a NumPy .npy file ({str(err).splitlines()[0]})") from None


@dataclass(frozen=True)
class NormalizedData:
    """What a directory of normalized data holds, read once."""

    directory: Path
    digits: list[int]
    valid_last: int  # the validation split: the last this many of MNIST's training images (pipeline/filter.py)
    raw_sha256: str  # of the four raw MNIST files it was made from (pipeline/filter.py)
    arrays: dict[str, tuple[np.ndarray, np.ndarray]]  # split -> (x, y)
    md5: dict[str, str]  # every file of the directory (relative path) -> the MD5 of its bytes, as DVC hashes it

    @property
    def counts(self) -> dict[str, int]:
        return {split: len(y) for split, (_, y) in self.arrays.items()}

    def digest(self, split: str) -> str:
        """One MD5 for a split's two files: what says two runs were scored on the same images."""
        return hashlib.md5(f"{self.md5[x_file(split)]} {self.md5[y_file(split)]}".encode()).hexdigest()

    def as_params(self) -> dict[str, str | int]:
        """MLflow params describing the data a run actually used: they replace the configured
        data.valid_last with the data's own, and add the raw data's hash and each split's count."""
        counts = {f"data.count.{split}": n for split, n in self.counts.items()}
        return {"data.valid_last": self.valid_last, "data.raw_sha256": self.raw_sha256, **counts}


def read(directory: str | Path) -> NormalizedData:
    """Every file of the directory read once: stats.json's identity, checked against the arrays."""
    directory = Path(directory)
    for name in (STATS, *(f(split) for split in SPLITS for f in (x_file, y_file))):
        require_file(directory / name)
    contents = {
        path.relative_to(directory).as_posix(): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }
    md5 = {name: hashlib.md5(data, usedforsecurity=False).hexdigest() for name, data in contents.items()}
    stats_path = directory / STATS
    try:
        stats = json.loads(contents[STATS])
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise unreadable(stats_path, f"not valid JSON ({err})") from None
    missing = [key for key in ("digits", "valid_last", "raw_sha256", "md5", *SPLITS) if key not in stats]
    if missing:
        raise unreadable(stats_path, f"no {', '.join(missing)} in it (written by an older normalize)")
    for name, expected in stats["md5"].items():
        if md5.get(name) != expected:
            raise unreadable(directory / name, f"damaged: its MD5 is not the {expected} normalize wrote ({STATS})")
    arrays = {}
    for split in SPLITS:
        x_path, y_path = directory / x_file(split), directory / y_file(split)
        x, y = load_npy(x_path, contents[x_file(split)]), load_npy(y_path, contents[y_file(split)])
        if x.dtype != np.float32 or x.ndim != 2 or x.shape[1] != N_PIXELS:
            raise unreadable(x_path, f"{x.dtype} {list(x.shape)}; expected float32 [N, {N_PIXELS}]")
        if y.shape != (len(x),):
            raise unreadable(y_path, f"shape {list(y.shape)}; expected [{len(x)}], one label per row of {x_path.name}")
        if len(y) != stats[split]["count"]:
            raise unreadable(
                x_path,
                f"holds {len(y)} images, but {STATS} says {stats[split]['count']}: the directory mixes two versions",
            )
        arrays[split] = (x, y)
    digits = [int(d) for d in stats["digits"]]
    return NormalizedData(directory, digits, int(stats["valid_last"]), stats["raw_sha256"], arrays, md5)


def read_for(cfg: Config) -> NormalizedData:
    """The normalized data, refused when it is not the pair the configuration asks for."""
    data = read(cfg.paths.normalized)
    wanted = list(cfg.data.digits)
    if data.digits != wanted:
        held = ",".join(map(str, data.digits))
        raise InputError(
            f"{cfg.paths.normalized} holds digits {data.digits}; the configuration asks for "
            f"{wanted}: run dvc repro (or dvc exp apply / dvc checkout), or pass data.digits=[{held}]"
        )
    return data
