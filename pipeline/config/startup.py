"""Start-up of the training processes: the garbage collector and the heavy imports.

torch, Lightning, MLflow and Hydra leave ~600,000 Python objects behind when they import, and
they live as long as the process. CPython's cyclic collector walks every tracked object in each
full collection: while they import that is ~1.5 s of collections that free next to nothing,
and afterwards every full collection during a sweep, and the interpreter's exit, walk them all
again (bench/RESULTS.md, "Speed tricks"). `long_lived_imports` turns collection off for the imports,
collects once, and moves what is left to the permanent generation (`gc.freeze`), which later
collections skip. Nothing is leaked: garbage made by the imports is collected before the freeze.
"""

from __future__ import annotations

import gc
from contextlib import contextmanager


@contextmanager
def long_lived_imports():
    """Wrap a module's heavy imports: `with long_lived_imports(): import torch ...`."""
    if not gc.isenabled():  # nested in another `long_lived_imports`, or collection is off anyway
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.collect()
        gc.freeze()
        gc.enable()
