"""`python -m pipeline.predict IMAGE...`: see pipeline/predict/cli.py."""

from pipeline.predict.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
