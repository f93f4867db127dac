"""The stages' input files, read whole or refused in one line that names the file, what is wrong
with it, and the command that remakes it.

    read_split(directory, "train.npz")   # (x, y, digits) of a normalized split
    read_identity(directory)             # what data/normalized holds: digits, counts, raw data hash
    check_identity(cfg)                  # ... and that it is what the configuration asks for
    load_model(path)                     # models/model.ckpt as a DigitClassifier (imports torch)
    check_recorded_data(runs)            # MLflow runs trained on the digits their params claim

`normalize` writes the identity into stats.json (`digits`, `raw_sha256`, and each split's
`count`); train, evaluate, the report and compare check it before any run or output exists.
NumPy only at import: the data stages may use it.
"""

from __future__ import annotations

import json
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.config import Config
from pipeline.errors import PipelineError

SPLITS = ("train", "valid")
N_PIXELS = 784
REMAKE_DATA = "remake it with `dvc repro`, or restore the committed version with `dvc checkout {target}`"


class InputError(PipelineError):
    """An input file that is missing, unreadable, or not what the configuration asks for."""


def unreadable(path: Path, what: str, target: Path | None = None) -> InputError:
    """`path: what; remake it with ...` (target: the DVC output that holds path, its directory by default)."""
    return InputError(f"{path}: {what}; " + REMAKE_DATA.format(target=target or path.parent))


def require_file(path: Path, target: Path | None = None) -> None:
    if path.is_dir():
        raise unreadable(path, "is a directory, expected a file", target)
    if not path.is_file():
        raise unreadable(path, "missing", target)


def read_split(directory: str | Path, name: str) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """(x float32 (N, 784) in 0..1, y float32 (N,) of 0/1, digits) of one normalized split,
    every byte read (a zip CRC error shows up only then)."""
    path = Path(directory) / name
    require_file(path)
    try:
        with np.load(path) as split:
            missing = [name for name in ("x", "y", "digits") if name not in split.files]
            if missing:
                raise unreadable(
                    path, f"no {', '.join(missing)} in it, expected x, y and digits (written by normalize)"
                )
            x, y, digits = split["x"], split["y"], [int(d) for d in split["digits"]]
    except (zipfile.BadZipFile, EOFError) as err:
        raise unreadable(path, f"truncated or corrupt ({err})") from None
    except (OSError, ValueError) as err:
        raise unreadable(path, f"not a NumPy .npz file ({str(err).splitlines()[0]})") from None
    if x.dtype != np.float32 or x.ndim != 2 or x.shape[1] != N_PIXELS or y.shape != (len(x),) or len(digits) != 2:
        raise unreadable(
            path,
            f"x {x.dtype}{list(x.shape)}, y {list(y.shape)}, digits {digits}; expected float32 "
            f"x [N, {N_PIXELS}], y [N] and two digits",
        )
    return x, y, digits


def read_stats(directory: str | Path) -> dict:
    path = Path(directory) / "stats.json"
    require_file(path)
    try:
        stats = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise unreadable(path, f"not valid JSON ({err})") from None
    missing = [key for key in ("digits", "raw_sha256", *SPLITS) if key not in stats]
    if missing:
        raise unreadable(path, f"no {', '.join(missing)} in it (written by an older normalize)")
    return stats


@dataclass(frozen=True)
class DataIdentity:
    """What a directory of normalized data holds."""

    directory: Path
    digits: list[int]
    counts: dict[str, int]  # split -> images
    raw_sha256: str  # of the four raw MNIST files it was made from (pipeline/filter.py)

    def as_params(self) -> dict[str, str | int]:
        """MLflow params describing the data a run actually used (beside the configured data.digits)."""
        return {"data.raw_sha256": self.raw_sha256, **{f"data.count.{split}": n for split, n in self.counts.items()}}


def read_identity(directory: str | Path) -> DataIdentity:
    """stats.json's identity, checked against the splits themselves (every file read whole)."""
    directory = Path(directory)
    stats = read_stats(directory)
    for split in SPLITS:
        path = directory / f"{split}.npz"
        _, y, digits = read_split(directory, path.name)
        if digits != stats["digits"] or len(y) != stats[split]["count"]:
            raise unreadable(
                path,
                f"holds {len(y)} images of digits {digits}, but stats.json says "
                f"{stats[split]['count']} of {stats['digits']}: the directory mixes two versions",
            )
    return DataIdentity(directory, list(stats["digits"]), {s: stats[s]["count"] for s in SPLITS}, stats["raw_sha256"])


def check_identity(cfg: Config) -> DataIdentity:
    """The normalized data, refused when it is not the pair the configuration asks for."""
    identity = read_identity(cfg.paths.normalized)
    wanted = list(cfg.data.digits)
    if identity.digits != wanted:
        held = ",".join(map(str, identity.digits))
        raise InputError(
            f"{cfg.paths.normalized} holds digits {identity.digits}; the configuration asks for "
            f"{wanted}: run dvc repro (or dvc exp apply / dvc checkout), or pass data.digits=[{held}]"
        )
    return identity


def load_model(path: str | Path):
    """The trained DigitClassifier in `path` (a Lightning checkpoint), on the CPU."""
    from pipeline.model import DigitClassifier

    path = Path(path)
    require_file(path, target=path.parent)
    try:
        return DigitClassifier.load_from_checkpoint(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise unreadable(path, f"not a readable model checkpoint ({first_line})") from None


def dataset_name(digits: list[int], split: str) -> str:
    """The MLflow dataset name of a normalized split (`mnist-3-vs-7-train`)."""
    return f"mnist-{digits[0]}-vs-{digits[1]}-{split}"


DATASET_DIGITS = re.compile(r"mnist-(\d)-vs-(\d)-")


def check_recorded_data(runs) -> None:
    """Refuse MLflow runs whose dataset inputs are of other digits than their `data.digits` param
    says (recorded before training checked its data): their metrics are not what they claim."""
    for run in runs:
        claimed = run.data.params.get("data.digits")
        names = [i.dataset.name for i in run.inputs.dataset_inputs] if run.inputs else []
        used = {f"[{m[1]}, {m[2]}]" for m in map(DATASET_DIGITS.match, names) if m}
        if claimed and used and used != {claimed}:
            raise InputError(
                f"MLflow run {run.info.run_id} ({run.info.run_name}) says data.digits={claimed} but "
                f"trained on {', '.join(sorted(names))}: its metrics are not of {claimed}; delete it "
                f"(mlflow runs delete --run-id {run.info.run_id}) and train again"
            )
