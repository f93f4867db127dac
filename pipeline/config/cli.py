"""The one command wrapper: how every `python -m pipeline.<command>` starts and how it ends on bad
input: one line `error: ...` on stderr and exit status 1.

Commands run their main through `run_command` (argparse and plain functions) or `run_hydra_app`
(a @hydra.main app). Both find the project directory once and publish it in the environment, so
a command started in a subdirectory reads and writes what it would from the root, and so do the
processes it starts (a sweep's jobs, a tracking server). Both also move a user:password@ out of
$MLFLOW_TRACKING_URI into MLflow's credential variables (secrets.py), before anything can show or
record the URI. Code that must stop at once calls `fail`.

The training processes (train, evaluate) start with `long_lived_imports` around their heavy imports.
torch, Lightning, MLflow and Hydra leave ~600,000 Python objects behind when they import, and
they live as long as the process. CPython's cyclic collector walks every tracked object in each
full collection: while they import that is ~1.5 s of collections that free next to nothing,
and afterwards every full collection during a sweep, and the interpreter's exit, walk them all
again (bench/RESULTS.md, "Speed tricks"). `long_lived_imports` turns collection off for the imports,
collects once, and moves what is left to the permanent generation (`gc.freeze`), which later
collections skip. Nothing is leaked: garbage made by the imports is collected before the freeze.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from contextlib import contextmanager
from typing import NoReturn

from pipeline.config.errors import ConfigError, PipelineError
from pipeline.config.project import PROJECT_DIR_ENV, project_dir
from pipeline.config.secrets import credentials_to_environment


def fail(message: object) -> NoReturn:
    """Print `error: message` and exit with status 1 (SystemExit: Hydra's callbacks do not swallow it)."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(1)


def refuse_config(message: object) -> NoReturn:
    """`fail` for a refused configuration. Under a DVC stage (DVC sets DVC_STAGE for its commands),
    params.yaml holds the refused value: `dvc exp run -S` composed it and does not restore it."""
    if "DVC_STAGE" in os.environ:
        message = (
            f"{message} (params.yaml keeps it; `git checkout params.yaml && dvc checkout` restores the last commit)"
        )
    fail(message)


class ArgumentParser(argparse.ArgumentParser):
    """argparse, with a bad command line as one line `error: ...` and exit status 1 like any bad input."""

    def error(self, message: str) -> NoReturn:
        fail(f"{message} (see {self.prog} --help)")


def no_arguments(prog: str, doc: str, argv: list[str] | None = None) -> None:
    """A stage that reads only params.yaml: `--help` prints its usage, anything else is refused."""
    ArgumentParser(
        prog=prog, description=doc.split("\n\n")[0], epilog="Reads params.yaml (`make params`; `dvc repro` runs it)"
    ).parse_args(argv)


def one_line(err: Exception) -> str:
    """A Hydra or config error as one line (for a config group that does not exist: the ones that do)."""
    from hydra.errors import MissingConfigException, OverrideParseException
    from omegaconf.errors import OmegaConfBaseException

    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    if isinstance(err, OverrideParseException):
        lines.insert(0, f"override '{err.override}':")
    if isinstance(err, MissingConfigException) and err.options:  # `model=foo`: say what exists
        return f"{lines[0]}; available: {', '.join(err.options)}"
    if isinstance(err.__cause__, OmegaConfBaseException):
        lines.append(f"({str(err.__cause__).splitlines()[0]})")
    return " ".join(lines)


def run_command(main, *args):
    """Run a command's main from the project directory's point of view; bad input (a PipelineError,
    a missing file, a bad Hydra override) ends the process with one line and exit status 1, any
    other error with its traceback. Returns what main returns."""
    from hydra.errors import CompactHydraException

    published = PROJECT_DIR_ENV not in os.environ
    os.environ.setdefault(PROJECT_DIR_ENV, str(project_dir()))
    credentials_to_environment()
    try:
        return main(*args)
    except ConfigError as err:
        refuse_config(err)
    except (PipelineError, FileNotFoundError, CompactHydraException) as err:
        fail(one_line(err))
    finally:
        if published:  # for this command and what it starts, not for whatever runs next in this process
            del os.environ[PROJECT_DIR_ENV]


def run_hydra_app(main) -> None:
    """Run a @hydra.main app the same way (Hydra's own multi-line report becomes one line).
    conf/config.yaml puts Hydra's run and sweep directories in the project directory."""
    os.environ.setdefault("HYDRA_FULL_ERROR", "1")  # Hydra hands its errors to us unformatted
    run_command(main)


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
