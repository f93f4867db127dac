"""`python tests/counted_train.py COUNTS DATA_DIR [train args...]`: `python -m pipeline.train`, in this
process, counting what tests/test_train.py::test_one_check_* asks about: the configuration's
validations, the opens of each file of DATA_DIR, the probes of the tracking store. Each count is
filed under `task` when it happens inside train.main (a run, or a sweep's job), else `sweep` (the
Hydra callbacks); the counts go to the JSON file COUNTS when the process exits."""

import atexit
import json
import os
import runpy
import sys
from collections import Counter
from pathlib import Path

counts_file, data_dir, *args = sys.argv[1:]
counts: Counter = Counter()


def phase() -> str:
    frame = sys._getframe(1)  # CPython: the call stack, to tell a job's work from the sweep's
    while frame:
        if frame.f_code.co_name == "main" and frame.f_code.co_filename.endswith("pipeline/train.py"):
            return "task"
        frame = frame.f_back
    return "sweep"


def audit(event: str, event_args: tuple) -> None:
    if event == "open" and isinstance(event_args[0], str | os.PathLike):
        path = os.fspath(event_args[0])
        if isinstance(path, str) and path.startswith(data_dir):
            counts[f"{phase()} open {os.path.basename(path)}"] += 1


def counted(module, name: str) -> None:
    original = getattr(module, name)

    def wrapper(*a, **k):
        counts[f"{phase()} {name}"] += 1
        return original(*a, **k)

    setattr(module, name, wrapper)


sys.addaudithook(audit)
from pipeline.config import compose  # noqa: E402 - patched before anything imports its names
from pipeline.tracking import store_check  # noqa: E402

counted(compose, "validate")
counted(store_check, "check_store")
atexit.register(lambda: Path(counts_file).write_text(json.dumps(counts)))
sys.argv = ["pipeline/train.py", *args]
runpy.run_module("pipeline.train", run_name="__main__")
