"""A second name for the served model's class, which the models logged by older checkouts import:
each logged model carries a copy of the code file that loads it (served_model_entry.py), and in
those it imports `pipeline.predict.served_model.DigitModel`. The class lives in
pipeline/tracking/served_model.py (tests/test_served_model.py loads such a model,
tests/fixtures/logged_model/)."""

from pipeline.tracking.served_model import DigitModel

__all__ = ["DigitModel"]
