"""How long a user waits for each command to start: whole processes of `python -m pipeline.train`'s
imports, `pipeline.predict` on one picture (the champion of this checkout's mlflow.db: `dvc repro`
first), and `pipeline.compare --help` and `pipeline.report --help`; optionally beside the same
commands of another checkout (e.g. one before a change), alternated so a changing load hits all alike.

    python -m bench.command_start --runs 5
    python -m bench.command_start --runs 5 --checkout /path/to/older/checkout
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent


def commands(picture: Path) -> dict[str, list[str]]:
    return {
        "import pipeline.train": [sys.executable, "-c", "import pipeline.train"],
        "predict one picture": [sys.executable, "-m", "pipeline.predict", str(picture)],
        "compare --help": [sys.executable, "-m", "pipeline.compare", "--help"],
        "report --help": [sys.executable, "-m", "pipeline.report", "--help"],
    }


def timed(cmd: list[str], cwd: Path) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"error: {' '.join(cmd)} in {cwd} failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.command_start", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each command (medians)")
    parser.add_argument("--checkout", type=Path, help="also time the commands of another checkout")
    names = list(commands(Path("x.png")))
    parser.add_argument("--command", action="append", choices=names, help="time only these (default: all)")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error(f"--runs {args.runs}: expected an integer >= 1")
    names = args.command or names
    places = {"this checkout": ROOT, **({"other checkout": args.checkout.resolve()} if args.checkout else {})}
    for where in places.values():
        if "predict one picture" in names and not (where / "mlflow.db").is_file():
            raise SystemExit(f"error: {where / 'mlflow.db'}: not found; expected a registered model (`dvc repro`)")
    with tempfile.TemporaryDirectory(prefix="command_start-") as tmp:
        picture = Path(tmp) / "seven.png"
        pixels = np.zeros((28, 28), np.uint8)
        pixels[5:8, 6:22], pixels[8:23, 17:20] = 255, 255  # a bar and a stroke down: a 7
        Image.fromarray(pixels).save(picture)
        runs = {(place, name): commands(picture)[name] for place in places for name in names}
        times: dict[tuple[str, str], list[float]] = {key: [] for key in runs}
        for key, cmd in runs.items():  # warm-up: the file cache
            timed(cmd, places[key[0]])
        for _ in range(args.runs):
            for key, cmd in runs.items():
                times[key].append(timed(cmd, places[key[0]]))
    print(
        f"command_start: {args.runs} runs each (median wall s), "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    for name in names:
        here = statistics.median(times["this checkout", name])
        line = f"  {name:<22} {here:6.2f}"
        if args.checkout:
            other = statistics.median(times["other checkout", name])
            line += f"  other {other:6.2f}  this/other {here / other:5.2f}"
        print(line)


if __name__ == "__main__":
    main()
