import gc
import subprocess
import sys
import weakref

from pipeline.config.startup import long_lived_imports


class Node:
    pass


def test_imports_run_without_collection_then_survivors_are_frozen_and_garbage_is_freed():
    assert gc.isenabled()
    frozen_before = gc.get_freeze_count()
    with long_lived_imports():
        assert not gc.isenabled()  # no collections while the heavy modules load
        garbage = Node()
        garbage.self = garbage  # a reference cycle: only the cyclic collector frees it
        gone = weakref.ref(garbage)
        del garbage
    assert gc.isenabled()
    assert gone() is None  # collected before the freeze, not frozen forever
    assert gc.get_freeze_count() > frozen_before
    gc.unfreeze()  # leave the test process as it was


def test_nested_blocks_leave_collection_to_the_outer_one():
    with long_lived_imports():
        with long_lived_imports():
            pass
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.unfreeze()


def test_the_training_app_starts_with_its_imports_frozen_and_collection_on():
    out = subprocess.run(
        [sys.executable, "-c", "import gc, pipeline.train; print(gc.isenabled(), gc.get_freeze_count())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out[0] == "True" and int(out[1]) > 100_000  # torch, Lightning, MLflow, Hydra: ~600k objects
