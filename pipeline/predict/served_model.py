"""The name models logged before the folders by role (December 2026) import their class by: each
logged model carries a copy of the code file that loads it, which imports
`pipeline.predict.served_model.DigitModel`. The class lives in pipeline/tracking/served_model.py
(tests/test_served_model.py loads such a model, tests/fixtures/logged_model/)."""

from pipeline.tracking.served_model import DigitModel

__all__ = ["DigitModel"]
