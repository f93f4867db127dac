"""The networks and their training: the networks (nets.py), the LightningModule (classifier.py),
what a model is measured by (metrics.py), the Lightning Trainer on one process or several
(trainer.py), and what a training writes: its outputs (outputs.py), pictures (pictures.py) and
predictions (predictions.py). Nothing here knows MLflow: runs are recorded by pipeline/tracking/."""
