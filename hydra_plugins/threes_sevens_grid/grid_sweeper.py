"""The project's grid sweeper: Hydra's basic sweeper (the cartesian product of the sweep's values),
which a resumed sweep runs in part. Its own name, `hydra/sweeper=grid`, which conf/config.yaml selects
(`override hydra/sweeper: grid`): every grid sweep of the project is resumable, and Hydra's `basic`
stays Hydra's own for every other Hydra app of the environment.

    python -m pipeline.train -m +experiment=learner                              # interrupted ...
    python -m pipeline.train -m +experiment=learner hydra.sweeper.resume=latest  # ... runs the rest

With `hydra.sweeper.resume` (pipeline/launch/resume.py finds the sweep and checks the command is its
own) the jobs whose child run FINISHED under the sweep's parent run are left out: their recorded
results count. A job is known by its name, its values of the swept keys (sweep_runs.job_name), as
its run was named.

Why a subclass: Hydra 1.3 offers no public hook to leave jobs out of a grid sweep; BasicSweeper
launches the whole product. Its `sweep` (Hydra 1.3.8) builds the batches with
`self.split_arguments(overrides, max_batch_size)`; this class filters the jobs there and is
otherwise Hydra's own (batches, job numbering, `multirun.yaml`, `validate_batch_is_legal`).
"""

# No `from __future__ import annotations`: Hydra loads plugin modules outside sys.modules,
# where dataclasses cannot resolve string annotations.
import logging
from dataclasses import dataclass
from typing import List, Optional, Set

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper, BasicSweeperConf
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.types import Override

log = logging.getLogger(__name__)


@dataclass
class GridSweeperConf(BasicSweeperConf):
    _target_: str = "hydra_plugins.threes_sevens_grid.grid_sweeper.GridSweeper"
    resume: Optional[str] = None  # latest, a sweep's name or its parent run id: continue that sweep


ConfigStore.instance().store(group="hydra/sweeper", name="grid", node=GridSweeperConf, provider="threes-sevens")


def finished_jobs(sweep_dir: str) -> Set[str]:
    """The names of the jobs whose child run FINISHED under the parent run of the sweep in sweep_dir."""
    from pipeline.tracking import store, sweep_runs

    sweep = sweep_runs.published(sweep_dir)
    if sweep is None:
        raise RuntimeError("hydra.sweeper.resume: needs the MlflowSweep callback (hydra.callbacks.mlflow_sweep)")
    client = store.open_client(sweep["tracking_uri"])
    return {run.info.run_name for run in sweep_runs.finished(client, client.get_run(sweep["parent_run_id"]))}


class GridSweeper(BasicSweeper):
    def __init__(
        self, max_batch_size: Optional[int], params: Optional[dict] = None, resume: Optional[str] = None
    ) -> None:
        super().__init__(max_batch_size, params)
        self.resume = resume
        self.finished: Set[str] = set()
        self.swept: List[str] = []

    def setup(self, *, hydra_context, task_function, config) -> None:
        super().setup(hydra_context=hydra_context, task_function=task_function, config=config)
        if self.resume:
            from pipeline.tracking.sweep_runs import swept_keys

            self.finished, self.swept = finished_jobs(config.hydra.sweep.dir), swept_keys(config)

    def split_arguments(self, overrides: List[Override], max_batch_size: Optional[int]) -> List[List[List[str]]]:
        """BasicSweeper's batches of the jobs still to run."""
        if not self.resume:
            return BasicSweeper.split_arguments(overrides, max_batch_size)
        from pipeline.tracking.sweep_runs import job_name

        jobs = BasicSweeper.split_arguments(overrides, None)[0]
        pending = [job for job in jobs if job_name(job, self.swept) not in self.finished]
        log.info(f"Resuming: {len(jobs) - len(pending)} of {len(jobs)} jobs finished before; {len(pending)} to run")
        return list(self.split_overrides_to_chunks(pending, max_batch_size)) if pending else []
