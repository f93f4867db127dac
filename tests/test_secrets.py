"""Credentials in URLs: shown as ***@, taken out of MLFLOW_TRACKING_URI into MLflow's own variables,
refused in tracking.uri."""

import pytest

from pipeline.config.compose import compose, validate
from pipeline.config.errors import ConfigError
from pipeline.config.secrets import credentials_to_environment, has_credentials, redact, split_credentials


def test_credentials_are_found_split_and_decoded():
    assert split_credentials("http://alice:p%40ss@host:5000/x?y=1") == ("http://host:5000/x?y=1", "alice", "p@ss")
    assert split_credentials("http://host:5000") == ("http://host:5000", None, None)
    assert has_credentials("https://token@host") and not has_credentials("sqlite:///mlflow.db")
    assert redact("see http://alice:secret@host:5000/x") == "see http://***@host:5000/x"


def test_a_uri_in_the_environment_hands_its_credentials_to_mlflows_variables():
    environ = {"MLFLOW_TRACKING_URI": "http://alice:s3cret@127.0.0.1:5000"}
    credentials_to_environment(environ)
    assert environ == {
        "MLFLOW_TRACKING_URI": "http://127.0.0.1:5000",
        "MLFLOW_TRACKING_USERNAME": "alice",
        "MLFLOW_TRACKING_PASSWORD": "s3cret",
    }
    environ = {"MLFLOW_TRACKING_URI": "http://alice:s3cret@h", "MLFLOW_TRACKING_PASSWORD": "set"}
    credentials_to_environment(environ)  # set variables win, as in MLflow
    assert environ["MLFLOW_TRACKING_PASSWORD"] == "set" and environ["MLFLOW_TRACKING_URI"] == "http://h"


def test_credentials_in_tracking_uri_are_refused_without_showing_them():
    with pytest.raises(ConfigError) as refused:
        validate(compose(["tracking.uri=http://alice:s3cret@127.0.0.1:5000"]))
    assert str(refused.value) == (
        "tracking.uri=http://***@127.0.0.1:5000: expected a URI without user:password@, which would be saved "
        "with the configuration; set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD instead"
    )
