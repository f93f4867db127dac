"""What the checks before a run cost, and how long a refused command takes.

    python -m bench.preflight_checks                      # data/normalized (real MNIST 3s and 7s)
    python -m bench.preflight_checks --data DIR --repeats 5

In this process: each check of preflight.check_before_run on its own (hardware; the data's
identity, every split read whole; the output directory; a sqlite store; an http store at a
closed port), median of the repeats. As commands: `python -m pipeline.train` refused for a
closed tracking port, against a Python process that only imports pipeline.train and exits (the
start-up every training pays anyway); the difference is what the refusal itself costs.
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

from pipeline.config.atomic import check_writable
from pipeline.config.compose import compose, validate
from pipeline.config.errors import StoreUnavailable
from pipeline.data import normalized
from pipeline.launch import preflight
from pipeline.tracking import store_check
from pipeline.tracking.server import free_port


def median_ms(call, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def commands_s(commands: dict[str, tuple[list[str], int]], repeats: int) -> dict[str, float]:
    """Median wall time of each command (args, expected exit status), run alternately (load drifts)."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}, "PYTHONPATH": str(Path.cwd())}
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(repeats):
        for name, (args, expect) in commands.items():
            with tempfile.TemporaryDirectory() as cwd:
                start = time.perf_counter()
                done = subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, env=env)
                times[name].append(time.perf_counter() - start)
            assert done.returncode == expect, done.stderr[-2000:]
    return {name: statistics.median(values) for name, values in times.items()}


def refused_store(uri: str) -> None:
    try:
        store_check.check_store(uri, "tracking.uri", 5)
    except StoreUnavailable:
        return
    raise AssertionError(f"{uri} was not refused")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.preflight_checks", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("data/normalized"))
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    data = args.data.resolve()
    identity = normalized.read(data)
    print(f"data: {data} ({identity.counts['train']:,} + {identity.counts['valid']:,} images of {identity.digits})")

    with tempfile.TemporaryDirectory() as tmp:
        cfg = validate(
            compose(
                [
                    f"paths.normalized={data}",
                    f"tracking.uri=sqlite:///{tmp}/mlflow.db",
                    f"data.digits=[{identity.digits[0]},{identity.digits[1]}]",
                ]
            )
        )
        closed = f"http://127.0.0.1:{free_port()}"
        rows = {
            "hardware (trainer.accelerator, devices)": lambda: preflight.check_hardware(cfg.trainer),
            "the data, read once (every file whole, its MD5 checked)": lambda: normalized.read_for(cfg),
            "output directory": lambda: check_writable(Path(tmp) / "outputs" / "run", "hydra.run.dir"),
            "sqlite store": lambda: store_check.check_store(cfg.tracking.uri, "tracking.uri", 5),
            "http store at a closed port (refused)": lambda: refused_store(closed),
            "all of check_before_run (sqlite store)": lambda: preflight.check_before_run(cfg, f"{tmp}/outputs/run"),
        }
        for name, call in rows.items():
            print(f"{name:<55} {median_ms(call, args.repeats):8.1f} ms")

    start_up, command = commands_s(
        {
            "start-up": (["-c", "import pipeline.train"], 0),
            "refused": (["-m", "pipeline.train", f"paths.normalized={data}", f"tracking.uri={closed}"], 1),
        },
        args.repeats,
    ).values()
    print(f"{'python -c import pipeline.train (start-up)':<55} {start_up:8.2f} s")
    print(
        f"{'python -m pipeline.train tracking.uri=<closed port>':<55} {command:8.2f} s "
        f"(refusal: +{command - start_up:.2f} s over the start-up)"
    )


if __name__ == "__main__":
    main()
