"""Everything MLflow: a training's run as the training sees it (training_run.py: what the run
receives, its per-epoch metrics), where runs go (store.py) and whether that store can take one
(store_check.py, permissions.py), the data a run used (lineage.py), how a run starts and ends and
which process writes it (lifecycle.py), what it records once its model is on disk and how it waits
out an outage (results.py), its name (run_names.py), a sweep's runs (sweep_runs.py) and the
processes writing them, which a sweep stops (processes.py), the model as MLflow serves it
(served_model.py), the Model Registry's gate (registry.py), and starting a tracking server process
(server.py: a sweep's own; a team's server and its accounts are pipeline/server/).

    python -m pipeline.tracking mark-orphans [URI]   # RUNNING runs whose process is gone -> KILLED
    python -m pipeline.tracking record DIR           # complete the run of a training whose store was away
"""
