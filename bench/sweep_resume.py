"""The learner sweep interrupted half way (SIGINT) and resumed, against the same sweep uninterrupted.

    python -m bench.sweep_resume --data data/normalized              # seeds 0-4: 30 + 15 runs per store
    python -m bench.sweep_resume --data DIR --threads 2 seed=0,1      # shorter: 12 + 6

Two fresh sqlite stores. In the first, `python -m pipeline.train -m +experiment=learner` runs
whole; in the second it gets SIGINT as the job that makes half of them ends, then the same command
with `hydra.sweeper.resume=latest` continues it. The SIGINT comes from a Hydra callback of this
file's (`InterruptAt`) inside the sweep, so it falls at the same place on any machine: a poll from
outside raced the tests' jobs of a second or two, and could find the whole sweep ended. Both stores
then get the learning-rate study (`+experiment=learning_rates`), which the report also reads.
Prints the jobs the resume ran (its new child runs) against the jobs missing when it started, the
wall time of each step, and whether the report built from each store is the same: every arm's
accuracy per seed and its per-image predictions (what the report's numbers are made of), and
report/index.html itself once run ids, times and the store's path are set aside.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hydra.experimental.callback import Callback
from mlflow import MlflowClient

from bench.sweep_overhead import jobs_env, timed
from pipeline.tracking.sweep_runs import PARENT_TAG, published

VOLATILE = re.compile(
    r"[0-9a-f]{32}|<code>[0-9a-f]{8}</code>|[\d.]+ s\b|\d{4}-\d\d-\d\d[ T]\d\d:\d\d(:\d\d)?|sqlite:///[^<\s\"]*"
)


def train(store: Path, *overrides: str) -> list[str]:
    return [sys.executable, "-m", "pipeline.train", "-m", f"tracking.uri=sqlite:///{store}/mlflow.db", *overrides]


def finished_children(sweep_dir: Path) -> list:
    sweep = published(sweep_dir)
    if sweep is None:
        return []
    client = MlflowClient(sweep["tracking_uri"])
    runs = client.search_runs([sweep["experiment_id"]], f"tags.`{PARENT_TAG}` = '{sweep['parent_run_id']}'")
    return [run for run in runs if run.info.status == "FINISHED"]


class InterruptAt(Callback):
    """The sweep's process sends itself SIGINT as its `job`-th job ends (Hydra's basic launcher runs
    the jobs in that process): what Ctrl+C between two jobs does, at a place that does not depend
    on how fast the machine is."""

    def __init__(self, job: int) -> None:
        self.job, self.ended = job, 0

    def on_job_end(self, config, job_return, **kwargs) -> None:
        self.ended += 1
        if self.ended == self.job:
            os.kill(os.getpid(), signal.SIGINT)


def interrupted(command: list[str], jobs: int, env: dict) -> float:
    """Seconds until the sweep, interrupted by SIGINT as half its jobs have ended, has exited."""
    start = time.perf_counter()
    interrupt = [
        "+hydra.callbacks.interrupt._target_=bench.sweep_resume.InterruptAt",
        f"+hydra.callbacks.interrupt.job={jobs // 2}",
    ]
    checkout = str(Path(__file__).resolve().parents[1])  # where `bench` imports from, whatever the cwd
    env = {**env, "PYTHONPATH": os.pathsep.join(filter(None, [checkout, env.get("PYTHONPATH")]))}
    sweep = subprocess.run([*command, *interrupt], env=env, capture_output=True, text=True)
    if sweep.returncode != 128 + signal.SIGINT:
        last = (sweep.stderr.strip().splitlines() or ["(no output)"])[-1]
        sys.exit(f"error: the interrupted sweep exited {sweep.returncode}, expected {128 + signal.SIGINT}: {last}")
    return time.perf_counter() - start


def report(store: Path, overrides: list[str], env: dict) -> tuple[dict, str]:
    """What the report is made of (arm -> seed -> accuracy, per-image correctness) and its page."""
    from pipeline.report.artifacts import correctness
    from pipeline.report.runs import find_runs

    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{store}/mlflow.db"
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    measured, uri, _ = find_runs(list(overrides))
    made_of = {
        m.name: {seed: run.data.metrics["final_val_acc"] for seed, run in sorted(m.runs.items())} for m in measured
    }
    correct = correctness(MlflowClient(uri), measured)
    made_of["correct"] = {name: {seed: c.tolist() for seed, c in seeds.items()} for name, seeds in correct.items()}
    out = store / "report"
    uri_override = f"tracking.uri=sqlite:///{store}/mlflow.db"
    timed([sys.executable, "-m", "pipeline.report", "--out", str(out), uri_override, *overrides], env=env)
    return made_of, VOLATILE.sub("", (out / "index.html").read_text())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("data/normalized"), help="normalized MNIST directory")
    parser.add_argument("--threads", type=int, help="torch threads of every job (OMP_NUM_THREADS); default: torch's")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of both sweeps and the report, e.g. seed=0,1")
    args = parser.parse_args(argv)
    env = jobs_env(args.data, args.threads)
    common = [f"paths.normalized={args.data.resolve()}", *args.overrides]
    from pipeline.report.runs import arms, split_seeds

    seeds, _ = split_seeds(args.overrides)
    jobs = len([arm for arm in arms() if arm.experiment == "learner"]) * len(seeds)
    loads, seconds = [os.getloadavg()[0]], {}
    with tempfile.TemporaryDirectory(prefix="sweep_resume-") as tmp:
        whole, cut = Path(tmp) / "whole", Path(tmp) / "cut"
        learner = ["+experiment=learner", *common]
        seconds["uninterrupted"] = timed(train(whole, *learner, f"hydra.sweep.dir={whole}/learner"), env=env)
        loads.append(os.getloadavg()[0])
        first = train(cut, *learner, f"hydra.sweep.dir={cut}/learner")
        seconds["interrupted"] = interrupted(first, jobs, env)
        before = len(finished_children(cut / "learner"))
        resumed = [*learner, f"hydra.sweep.dir={cut}/resumed", "hydra.sweeper.resume=latest"]
        seconds["resume"] = timed(train(cut, *resumed), env=env)
        loads.append(os.getloadavg()[0])
        client = MlflowClient(f"sqlite:///{cut}/mlflow.db")
        parent = client.get_run(published(cut / "resumed")["parent_run_id"])
        children = client.search_runs([parent.info.experiment_id], f"tags.`{PARENT_TAG}` = '{parent.info.run_id}'")
        ran = sum(run.info.start_time >= resume_started(parent) for run in children)  # the resume's children
        for store in (whole, cut):
            timed(train(store, "+experiment=learning_rates", *common, f"hydra.sweep.dir={store}/rates"), env=env)
        (made_whole, page_whole), (made_cut, page_cut) = (report(store, args.overrides, env) for store in (whole, cut))
        loads.append(os.getloadavg()[0])
    print(
        f"sweep_resume: +experiment=learner {' '.join(args.overrides)} ({jobs} jobs); threads "
        f"{args.threads or 'torch default'}; load average {min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} CPUs"
    )
    print(f"  uninterrupted sweep: {seconds['uninterrupted']:.1f} s")
    print(
        f"  interrupted after {before} of {jobs} jobs finished: {seconds['interrupted']:.1f} s; resume: "
        f"{seconds['resume']:.1f} s, ran {ran} jobs for the {jobs - before} missing "
        f"({'only the missing ones' if ran == jobs - before else 'NOT only the missing ones'}); parent "
        f"{parent.info.status}, {parent.data.tags.get('sweep.children_finished')} children finished"
    )
    print(
        f"  (interrupted + resume) / uninterrupted: "
        f"{(seconds['interrupted'] + seconds['resume']) / seconds['uninterrupted']:.2f}"
    )
    same_numbers, same_page = made_whole == made_cut, page_whole == page_cut
    print(
        f"  report: accuracies and per-image predictions {'the same' if same_numbers else 'DIFFER'}; "
        f"index.html {'the same' if same_page else 'DIFFERS'} (run ids, times and paths aside)"
    )
    if not same_page:
        whole_lines, cut_lines = page_whole.splitlines(), page_cut.splitlines()
        for line in difflib.unified_diff(whole_lines, cut_lines, "uninterrupted", "resumed", n=0, lineterm=""):
            print(f"    {line[:200]}")


def resume_started(parent) -> int:
    """When the resume began (ms): the parent's process tags are the resume's process."""
    return int(float(parent.data.tags["process.started"]) * 1000)


if __name__ == "__main__":
    main()
