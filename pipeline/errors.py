"""The one exception type the stages turn into a one-line error and exit status 1."""


class PipelineError(Exception):
    """Bad input (a file, a key, a value) that the pipeline cannot run with."""


class MissingInput(PipelineError):
    """A file an earlier stage makes is not there."""

    def __init__(self, path) -> None:
        super().__init__(f"{path}: not found; run `dvc repro` to make it")
