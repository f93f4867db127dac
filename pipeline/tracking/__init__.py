"""Where runs go and what they record in MLflow: the store (store.py), the data a run used
(lineage.py), how a run ends (lifecycle.py), sweeps as parent and child runs (sweep.py).

    python -m pipeline.tracking mark-orphans [URI]   # RUNNING runs whose process is gone -> KILLED
"""
