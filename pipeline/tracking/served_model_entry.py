"""Run by MLflow when it loads the served model ("models from code"): never imported.

MLflow copies this file into each logged model and executes it to get the model object, so the
model holds code by reference to this project (pipeline.tracking.served_model) and no pickle.
"""

import mlflow

from pipeline.tracking.served_model import DigitModel

mlflow.models.set_model(DigitModel())
