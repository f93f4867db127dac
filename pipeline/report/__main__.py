"""`python -m pipeline.report`: see pipeline/report/build.py."""

import sys

from pipeline.config.cli import run_command
from pipeline.report.build import main

if __name__ == "__main__":
    run_command(main, sys.argv[1:])
