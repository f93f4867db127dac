"""How a training run ends when things go wrong: divergence, signals, errors.

`recorded(client, run_id)` wraps a training: the MLflow run ends FINISHED, FAILED (an error,
or a diverged loss) or KILLED (SIGINT/SIGTERM), never left RUNNING, with the reason in the
`end_reason` tag; a signal during a fit takes effect at the next batch or optimizer step (`StopOnSignal`).
`StopOnNonFiniteLoss` is Lightning's EarlyStopping reduced to its
finiteness check; `raise_if_diverged` turns its stop into an error.
"""

from __future__ import annotations

import math
import signal
import sys
import threading
from contextlib import contextmanager

import pytorch_lightning as pl
from mlflow import MlflowClient
from pytorch_lightning.callbacks import Callback, EarlyStopping
from pytorch_lightning.callbacks.early_stopping import EarlyStoppingReason

from pipeline.errors import PipelineError
from pipeline.tracking import END_REASON_TAG

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Diverged(PipelineError):
    """The loss became NaN or infinite: the model is garbage and must not be saved."""


class StopOnNonFiniteLoss(EarlyStopping):
    """Stops training at the end of the first epoch whose loss is NaN or infinite (the epoch's
    loss is a sum over its batches, so one bad batch is enough). Never stops for any other reason."""

    def __init__(self, monitor: str = "train_loss"):
        super().__init__(monitor=monitor, check_finite=True, patience=math.inf, check_on_train_epoch_end=True)


def raise_if_diverged(trainer: pl.Trainer) -> None:
    for callback in trainer.callbacks:
        if isinstance(callback, StopOnNonFiniteLoss) and callback.stopping_reason is EarlyStoppingReason.NON_FINITE_METRIC:
            raise Diverged(f"diverged at epoch {callback.stopped_epoch}: {callback.stopping_reason_message.split('.')[0]}"
                           " (try a smaller optim.lr); no model written")


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived; Lightning shuts a fit down gracefully on a KeyboardInterrupt."""


# Signals received during `recorded`, and whether a fit is running. An exception raised by
# the signal handler in the middle of an MLflow write can leave the process's own sqlite
# transaction open and the store locked; during a fit the handler only takes note and
# StopOnSignal raises at the next batch boundary, where no write is in progress.
_received: list[int] = []
_fitting = False


class StopOnSignal(Callback):
    def on_train_start(self, trainer, pl_module) -> None:
        global _fitting
        _fitting = True

    def on_train_end(self, trainer, pl_module) -> None:
        global _fitting
        _fitting = False

    def on_train_batch_end(self, *args) -> None:
        if _received:
            raise Interrupted(signal.Signals(_received[0]).name)

    on_validation_batch_end = on_train_batch_end
    # A Lightning batch can be a chunk of many mini-batches (trainer.batches_per_step): stop
    # before each optimizer step too, not only at the end of the chunk.
    on_before_optimizer_step = on_train_batch_end


@contextmanager
def recorded(client: MlflowClient, run_id: str):
    """End the run FINISHED if the block succeeds, FAILED if it raises, KILLED on SIGINT/SIGTERM
    (then exit with status 128 + signal number, the shell's convention)."""
    global _fitting
    received = _received
    received.clear()
    _fitting = False

    def interrupt(signum, _frame):
        received.append(signum)
        if not _fitting:
            raise Interrupted(signal.Signals(signum).name)

    # Python lets only the main thread set handlers; elsewhere the defaults stay.
    in_main = threading.current_thread() is threading.main_thread()
    previous = {signum: signal.signal(signum, interrupt) for signum in STOP_SIGNALS} if in_main else {}
    try:
        yield
    except BaseException as err:
        # Lightning answers a KeyboardInterrupt inside fit with sys.exit(1): `received` says why.
        for signum in previous:  # a second Ctrl+C must not cut the bookkeeping short
            signal.signal(signum, signal.SIG_IGN)
        if received or isinstance(err, KeyboardInterrupt):
            name = signal.Signals(received[0]).name if received else "KeyboardInterrupt"
            end(client, run_id, "KILLED", f"interrupted by {name}")
            print(f"train: interrupted by {name}; MLflow run {run_id} marked KILLED", file=sys.stderr)
            raise SystemExit(128 + (received[0] if received else signal.SIGINT)) from None
        end(client, run_id, "FAILED", f"{type(err).__name__}: {err}")
        raise
    else:
        end(client, run_id, "FINISHED")
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def end(client: MlflowClient, run_id: str, status: str, reason: str | None = None) -> None:
    if reason:
        client.set_tag(run_id, END_REASON_TAG, reason[:5000])
    client.set_terminated(run_id, status)
