"""Every exception the pipeline raises. Those for bad input (PipelineError and its kinds) end a
command with one line `error: ...` naming the file or key and what was expected, and exit status 1
(pipeline/config/cli.py); `Interrupted` is a signal and `TrialPruned` a sweep's pruner, each of
which ends a run KILLED; `SweepLocked` is another process running a sweep, refused in one line.
Any other exception is a bug and keeps its traceback. `causes` walks what an exception wraps."""


class PipelineError(Exception):
    """Bad input (a file, a key, a value) that the pipeline cannot run with."""


class ConfigError(PipelineError):
    """A configuration value that the pipeline cannot run with."""


class NotWritable(PipelineError):
    """A directory that a command would write in cannot be written or made."""


class IdxError(PipelineError):
    """An IDX file that does not hold what it declares."""


class FetchError(PipelineError):
    """A source that could not deliver verified MNIST."""


class InputError(PipelineError):
    """An input file that is missing, unreadable, or not what the configuration asks for."""


class Diverged(PipelineError):
    """The loss became NaN or infinite: the model is garbage and must not be saved."""


class StoreUnavailable(PipelineError):
    """The tracking store cannot take a run."""


class ImageError(PipelineError):
    """A file that is not a picture of a digit that `predict` can read."""


class ReportError(PipelineError):
    """The runs the report needs are not in MLflow."""


class AccountError(PipelineError):
    """An account on the tracking server that cannot do what the command needs: no or a bad admin
    password, credentials the server refuses, a permission missing, a user that cannot be made."""


class StoreLost(PipelineError):
    """The tracking store went away after the model was saved, for longer than tracking.outage_s:
    the run waits on disk to be recorded (`python -m pipeline.tracking record`)."""


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived; Lightning shuts a fit down gracefully on a KeyboardInterrupt."""


class TrialPruned(Exception):
    """Not bad input and not a failure: a trial of an Optuna search that its pruner stopped early
    (pipeline/launch/pruning.py). Its run ends KILLED with the reason; the sweeper tells the study PRUNED."""


class SweepLocked(Exception):
    """Not bad input: another process runs the sweep, holding its lock (pipeline/launch/sweep_lock.py).
    `pid` is that process (None: it has not written its pid yet), its text `process 12345`; the
    caller refuses in one line."""

    def __init__(self, pid: int | None) -> None:
        super().__init__(f"process {pid}" if pid else "another process")
        self.pid = pid


def causes(err: BaseException):
    """err and what it wraps: urllib3's `reason`, an exception argument, __cause__ / __context__."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        yield err
        wrapped = getattr(err, "reason", None)
        if not isinstance(wrapped, BaseException):
            wrapped = next((arg for arg in err.args if isinstance(arg, BaseException)), None)
        err = wrapped or err.__cause__ or err.__context__
