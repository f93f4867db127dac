"""Resuming a sweep: the sweep's own command plus `hydra.sweeper.resume=WHICH` continues it under
the same MLflow parent run. WHICH is `latest` (the last sweep of the experiment), a sweep's name
(its parent run's, the directory name of its first run: `2026-12-07_10-00-00`) or its parent run id.

`sweep_to_resume` is called by the MlflowSweep callback (pipeline/launch/sweep.py) before the
sweep creates anything. It finds the parent run, takes the sweep's lock (pipeline/launch/sweep_lock.py:
the sweep, or another resume of it, still running holds it), and refuses in one line a sweep that
does not exist, one still running, and a command that is not the sweep's own (its overrides, search
space, pruner, or a value of conf/ changed since): the line names the difference. A refused resume
has changed nothing. `reopen` makes the parent RUNNING again, in this process. Which jobs run
again is the sweepers' part: the grid sweeper leaves out the jobs whose child run FINISHED
(hydra_plugins/threes_sevens_grid/), the Optuna sweeper continues its study
(hydra_plugins/threes_sevens_optuna/). Children that ended KILLED or FAILED stay as they are;
their jobs run again as new children, and the parent ends with the best of all its finished children.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import TextIO

import yaml
from mlflow import MlflowClient
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from omegaconf import DictConfig, OmegaConf

from pipeline.config.cli import refuse_config
from pipeline.config.errors import SweepLocked
from pipeline.config.schema import Config
from pipeline.launch import sweep_lock
from pipeline.tracking import lifecycle, processes, run_names, store

RESUME_KEY = "hydra.sweeper.resume"
SPEC_FILE = "sweep.yaml"  # on the parent run: the sweep's overrides and sweeper
DIR_TAG, RESUMES_TAG = "sweep.dir", "sweep.resumed_in"  # the sweep's first directory; those of its resumes
# What a resume may change: how many jobs run at once, how many trials an Optuna search has in all
# (a resume runs those missing), and resume itself.
MAY_DIFFER = ("resume", "n_jobs", "n_trials", "max_batch_size")
RUN_ID = re.compile(r"[0-9a-f]{32}")
SHOWN = 3  # differences named in the refusal


def sweep_spec(config: DictConfig) -> dict:
    """What a sweep is: its command line's overrides (not tracking.*, which may carry credentials)
    and its sweeper's configuration."""
    return {
        "overrides": run_names.untracked(config.hydra.overrides.task),
        "sweeper": OmegaConf.to_container(config.hydra.sweeper, resolve=True),
    }


def find(client: MlflowClient, experiment_id: str, which: str) -> Run | None:
    """The parent run of the sweep `which` names in the experiment (None: no such sweep)."""
    sweeps = f"tags.`{DIR_TAG}` LIKE '%'"  # a sweep's parent run; its children have no such tag
    if RUN_ID.fullmatch(which):
        try:
            run = client.get_run(which)
        except MlflowException:
            return None
        return run if DIR_TAG in run.data.tags and run.info.experiment_id == experiment_id else None
    if which != "latest":
        if "'" in which:
            return None
        sweeps += f" and attributes.run_name = '{which}'"
    runs = client.search_runs([experiment_id], sweeps, order_by=["attributes.start_time DESC"], max_results=1)
    return runs[0] if runs else None


def flat(prefix: str, node) -> dict[str, str]:
    if isinstance(node, dict):
        return {k: v for key, value in node.items() for k, v in flat(f"{prefix}.{key}", value).items()}
    return {prefix: str(node)}


def comparable(spec: dict) -> dict[str, str]:
    """A sweep's spec as key -> value: each override by its key, each sweeper value by its path."""
    overrides = dict(line.partition("=")[::2] for line in spec["overrides"])
    sweeper = {k: v for k, v in flat("hydra.sweeper", spec["sweeper"]).items() if k.split(".")[2] not in MAY_DIFFER}
    return {**overrides, **sweeper}


def differences(then: dict[str, str], now: dict[str, str]) -> list[str]:
    """`key=value` as this command has it against the sweep's, for each key that differs."""
    keys = [*then, *(key for key in now if key not in then)]
    return [
        f"{key}={now.get(key, '(not given)')} here, {then.get(key, '(not given)')} in the sweep"
        for key in keys
        if then.get(key) != now.get(key)
    ]


def recorded_spec(client: MlflowClient, parent: Run) -> dict:
    with tempfile.TemporaryDirectory() as scratch:
        return yaml.safe_load(Path(client.download_artifacts(parent.info.run_id, SPEC_FILE, scratch)).read_text())


def sweep_to_resume(config: DictConfig, cfg: Config) -> tuple[Run, TextIO] | None:
    """The parent run of the sweep this multirun resumes and the sweep's lock, held (None: it starts
    a new sweep); refused in one line when there is none, it is still running, or this command is
    not its own."""
    which = OmegaConf.select(config, RESUME_KEY)
    if not which:
        return None
    shown = f"{RESUME_KEY}={which}"
    if cfg.tracking.run_name:
        refuse_config(
            f"{shown}: tracking.run_name={cfg.tracking.run_name} names every job of the sweep alike, so its "
            "finished jobs cannot be told apart; sweep without it"
        )
    uri = store.tracking_uri(cfg)
    client = store.open_client(uri)
    experiment = client.get_experiment_by_name(cfg.tracking.experiment)
    parent = find(client, experiment.experiment_id, str(which)) if experiment else None
    if parent is None:
        refuse_config(
            f"{shown}: no such sweep in experiment '{cfg.tracking.experiment}' of {store.redact(uri)}; "
            "give latest, a sweep's name (its directory's, under outputs/sweeps/) or its parent run id"
        )
    name = f"sweep {parent.info.run_name} (parent run {parent.info.run_id})"
    try:
        lock = sweep_lock.hold(Path(parent.data.tags[DIR_TAG]))
    except SweepLocked as held:
        refuse_config(f"{shown}: {name} is still running ({held}); let it end or stop it first")
    try:
        return checked(config, cfg, client, client.get_run(parent.info.run_id)), lock  # read again, under the lock
    except BaseException:
        lock.close()
        raise


def checked(config: DictConfig, cfg: Config, client: MlflowClient, parent: Run) -> Run:
    """The parent run, ready to reopen: refused in one line when its process is alive or this command
    is not its own; its runs that a dead process left RUNNING ended KILLED."""
    shown = f"{RESUME_KEY}={OmegaConf.select(config, RESUME_KEY)}"
    name = f"sweep {parent.info.run_name} (parent run {parent.info.run_id})"
    if parent.info.status == "RUNNING":  # its process may be alive without the lock (older code)
        writer = processes.writer(parent.data.tags)
        if writer is not None:
            refuse_config(f"{shown}: {name} is still running (process {writer.pid}); let it end or stop it first")
        lifecycle.mark_orphans(client, [parent.info.experiment_id])  # its process died: its runs end KILLED
        parent = client.get_run(parent.info.run_id)
    found = differences(comparable(recorded_spec(client, parent)), comparable(sweep_spec(config)))
    if not found:  # the same command, but conf/ says otherwise now
        params = {key: str(value) for key, value in store.logged_params(cfg).items()}
        found = differences(parent.data.params, params)
    if found:
        more = f" (and {len(found) - SHOWN} more)" if len(found) > SHOWN else ""
        refuse_config(
            f"{shown}: this command differs from {name}: {'; '.join(found[:SHOWN])}{more}; resume it with "
            f"its own command, or leave out {RESUME_KEY} to start a new sweep"
        )
    return parent


def reopen(client: MlflowClient, parent: Run, sweep_dir: Path) -> None:
    """The parent run RUNNING again, written by this process; this multirun's directory recorded."""
    run_id = parent.info.run_id
    client.update_run(run_id, status="RUNNING")
    if lifecycle.END_REASON_TAG in parent.data.tags:
        client.delete_tag(run_id, lifecycle.END_REASON_TAG)
    resumed_in = " ".join(filter(None, [parent.data.tags.get(RESUMES_TAG), str(sweep_dir)]))
    for key, value in {**lifecycle.process_tags(), RESUMES_TAG: resumed_in}.items():
        client.set_tag(run_id, key, value)
    print(f"sweep: resuming {parent.info.run_name} (parent run {run_id})")
