"""An NVIDIA GPU this machine has but torch cannot use: the usual cause, a driver older than the one torch's CUDA
build needs (the lock's torch 2.14.1+cu130 brings CUDA 13.0, which needs driver 580 or newer on Linux). Then
`trainer.accelerator=auto` trains on the CPU: preflight says so in one warning line, and a refusal of
`trainer.accelerator=gpu` names the driver.

The GPUs are those the NVIDIA kernel driver lists under /proc/driver/nvidia/gpus/ (one directory each), its version
the one /proc/driver/nvidia/version gives: what the driver itself publishes, whatever torch can load.
"""

from __future__ import annotations

import re
from pathlib import Path

PROC = Path("/proc/driver/nvidia")
# The oldest Linux driver each CUDA major release runs on (NVIDIA's minor-version compatibility: CUDA 12.x needs
# >= 525.60.13, CUDA 13.x >= 580.65.06; the CUDA Toolkit release notes, "CUDA Driver"; NVIDIA's "Supported Drivers
# and CUDA Toolkit Versions" page: the R580 branch is the first to support CUDA 13.x).
MINIMUM_DRIVER = {"12": "525.60.13", "13": "580.65.06"}


def nvidia_gpus(proc: Path) -> int:
    """How many GPUs the NVIDIA kernel driver has (0: no driver loaded, or none visible, as in a container
    started without the GPUs)."""
    try:
        return sum(1 for entry in (proc / "gpus").iterdir() if entry.is_dir())
    except OSError:
        return 0


def driver_version(proc: Path) -> str | None:
    """The kernel driver's version (`NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05  ...`)."""
    try:
        found = re.search(r"Kernel Module.*?\b(\d+\.\d+(?:\.\d+)*)\b", (proc / "version").read_text())
    except OSError:
        return None
    return found[1] if found else None


def needed_driver(cuda: str | None) -> str | None:
    """The oldest driver torch's CUDA build runs on (None: a CPU-only torch, or a CUDA release not listed)."""
    return MINIMUM_DRIVER.get((cuda or "").split(".")[0])


def unusable_gpus(cuda_available: bool) -> str | None:
    """Why torch cannot use this machine's NVIDIA GPUs, in words (None when it can, or there are none)."""
    proc = PROC
    count = nvidia_gpus(proc)
    if cuda_available or not count:
        return None
    import torch

    driver, cuda = driver_version(proc), torch.version.cuda
    needed = needed_driver(cuda)
    if cuda is None:
        why = f"torch {torch.__version__} is a CPU-only build"
    elif driver and needed and tuple(map(int, driver.split("."))) < tuple(map(int, needed.split("."))):
        why = f"driver {driver} is older than {needed}, which torch {torch.__version__}'s CUDA {cuda} needs"
    else:
        why = f"torch {torch.__version__} (CUDA {cuda}) cannot initialise CUDA with driver {driver or 'unknown'}"
    return f"this machine has {count} NVIDIA GPU(s) that torch cannot use: {why}"
