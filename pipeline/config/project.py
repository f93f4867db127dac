"""Where the project is, wherever a command starts.

Relative paths in conf/ (and in dvc.yaml, which interpolates paths.*) mean the project directory:
the nearest directory holding dvc.yaml, from the working directory up. That is where DVC runs every
stage (its wdir), so `dvc repro`, `dvc exp run` (in a temporary workspace under .dvc/tmp/exps/ too:
that experiment's data and models live there) and a command started in a subdirectory read and
write the same files. params.yaml keeps the relative paths DVC needs; `compose.validate` resolves
them, once, for every command. Every command publishes the directory it found in
$PIPELINE_PROJECT_DIR (cli.py), so a Hydra run directory (conf/config.yaml), the jobs of a sweep and
a server in other processes resolve alike. The MLflow store has its own rule (pipeline/tracking/store.py):
a DVC experiment's workspace is deleted afterwards, its runs are not.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_DIR_ENV = "PIPELINE_PROJECT_DIR"
PROJECT_MARKER = "dvc.yaml"


def project_dir() -> Path:
    """$PIPELINE_PROJECT_DIR, else the nearest directory holding dvc.yaml from the working
    directory up, else the working directory (a command outside any project)."""
    if os.environ.get(PROJECT_DIR_ENV):
        return Path(os.environ[PROJECT_DIR_ENV])
    cwd = Path.cwd()
    return next((d for d in (cwd, *cwd.parents) if (d / PROJECT_MARKER).is_file()), cwd)


def in_project(path: str) -> str:
    """A relative path as the project directory's; an absolute one as it is."""
    return path if Path(path).is_absolute() else str(project_dir() / path)
