"""What a sweep records on its parent run: created (or reopened) with the sweep's tags, params, spec
and config, published for the jobs in `<sweep dir>/mlflow_sweep.json`; at the end, its best child
named on it and that child's model gated into the registry.

`MlflowSweep` (pipeline/launch/sweep.py) calls these in the sweep's own process, with the client of
the store the jobs write.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities import Param
from omegaconf import DictConfig, OmegaConf

from pipeline.config.atomic import atomic_file
from pipeline.config.schema import Config
from pipeline.launch import resume
from pipeline.model.metric_names import COLLAPSED_TAG, FINAL_VAL_ACC, FINAL_VAL_LOSS, TEST_ACC
from pipeline.tracking import lifecycle, registry, run_names, store
from pipeline.tracking.lineage import validation_digest
from pipeline.tracking.sweep_runs import SWEEP_FILE, children, counts, swept_keys


def open_parent(client: MlflowClient, config: DictConfig, cfg: Config, base: DictConfig, resumed) -> tuple[str, str]:
    """The sweep's parent run, (experiment id, run id): `resumed` reopened, else a new run of
    `cfg.tracking.experiment` with the sweep's tags, `cfg`'s params, the sweep's spec (what resume
    compares) and `base` as config.yaml."""
    sweep_dir = Path(config.hydra.sweep.dir)
    if resumed:
        resume.reopen(client, resumed, sweep_dir)
        return resumed.info.experiment_id, resumed.info.run_id
    overrides = run_names.untracked(config.hydra.overrides.task)  # no URI (it may carry credentials)
    tags = {
        resume.DIR_TAG: str(sweep_dir),
        "sweep.overrides": " ".join(overrides),
        "sweep.swept_keys": ",".join(swept_keys(config)),
        "sweep.sweeper": config.hydra.sweeper._target_,
        "sweep.launcher": config.hydra.launcher._target_,
        **store.source_tags(),
        **lifecycle.process_tags(),  # mark-orphans ends the parent KILLED after `kill -9`
    }
    experiment_id = store.experiment_id(client, cfg.tracking.experiment)
    parent_id = client.create_run(experiment_id, run_name=sweep_dir.name, tags=tags).info.run_id
    client.log_batch(parent_id, params=[Param(key, str(value)) for key, value in store.logged_params(cfg).items()])
    client.log_dict(parent_id, resume.sweep_spec(config), resume.SPEC_FILE)
    client.log_text(parent_id, OmegaConf.to_yaml(base, resolve=True), "config.yaml")
    return experiment_id, parent_id


def publish(config: DictConfig, uri: str, experiment_id: str, parent_id: str, home: str) -> None:
    """`<sweep dir>/mlflow_sweep.json`: the store and the parent every job joins (sweep_runs.join),
    and this process, which mark-orphans checks; `home` is the sweep's first directory."""
    published = {
        "tracking_uri": uri,
        "parent_run_id": parent_id,
        "experiment_id": experiment_id,
        "swept_keys": swept_keys(config),
        "pid": os.getpid(),
        "started": float(lifecycle.process_tags()[lifecycle.STARTED_TAG]),
        "home": home,
    }
    with atomic_file(Path(config.hydra.sweep.dir) / SWEEP_FILE) as scratch:  # jobs never read half a file
        scratch.write_text(json.dumps(published, indent=2))


def record_best(client: MlflowClient, parent_id: str):
    """Tags the parent with its children (how many, how many finished) and its best finished child,
    prints one line, and returns that child: None when no child finished."""
    runs = children(client, client.get_run(parent_id))
    finished = [run for run in runs if counts(run)]
    client.set_tag(parent_id, "sweep.children", str(len(runs)))
    client.set_tag(parent_id, "sweep.children_finished", str(len(finished)))
    if not finished:
        return None
    best = finished[0]
    client.log_metric(parent_id, f"best_{FINAL_VAL_ACC}", best.data.metrics[FINAL_VAL_ACC])
    client.set_tag(parent_id, "best_run_id", best.info.run_id)
    client.set_tag(parent_id, "best_run_name", best.info.run_name)
    others = f" ({len(runs) - len(finished)} more cut short or failed)" if len(runs) > len(finished) else ""
    print(
        f"sweep: parent run {parent_id}: best {best.info.run_name} "
        f"(validation accuracy {best.data.metrics[FINAL_VAL_ACC]:.4f}) of {len(finished)} finished runs{others}"
    )
    return best


def register_best(client: MlflowClient, name: str, best) -> None:
    """The best child's model through the registry's gate, in the store the jobs wrote; raises what
    the registry raised."""
    registry.gate_run(
        client.tracking_uri,
        name,
        best.info.run_id,
        best.data.tags[registry.MODEL_URI_TAG],
        valid={"acc": best.data.metrics[FINAL_VAL_ACC], "loss": best.data.metrics[FINAL_VAL_LOSS]},
        digest=validation_digest(best),  # what the job recorded of its validation data
        collapsed=best.data.tags.get(COLLAPSED_TAG),
        test_acc=best.data.metrics.get(TEST_ACC),  # a tag of the version, for the record: chosen on validation
    )
