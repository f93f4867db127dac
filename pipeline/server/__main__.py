"""`python -m pipeline.server`: see pipeline/server/cli.py."""

import sys

from pipeline.config.cli import run_command
from pipeline.server.cli import main

if __name__ == "__main__":
    run_command(main, sys.argv[1:])
