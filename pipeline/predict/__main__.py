"""`python -m pipeline.predict IMAGE...`: see pipeline/predict/cli.py."""

import sys

from pipeline.predict.cli import run

if __name__ == "__main__":
    raise SystemExit(run(sys.argv[1:]))
