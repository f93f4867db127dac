"""`python -m pipeline.report`: see pipeline/report/build.py."""

import sys

from pipeline.cli import run_stage
from pipeline.report.build import main

if __name__ == "__main__":
    run_stage(main, sys.argv[1:])
