"""The one exception type the stages turn into a one-line error and exit status 1."""


class PipelineError(Exception):
    """Bad input (a file, a key, a value) that the pipeline cannot run with."""
