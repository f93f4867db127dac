"""Credentials written into URLs (`http://user:password@host`): found, cut out, never shown.

A URL's credentials would travel wherever the URL goes: run params and tags, Hydra's saved config,
params.yaml, dvc.lock, logs and error lines. `redact` is how a URL is shown; `split_credentials`
takes them out of a tracking URI so that the URI itself can go anywhere, and
`credentials_to_environment` hands them to MLflow by its own variables instead (every command
does, at its start: pipeline/config/cli.py).
"""

from __future__ import annotations

import os
import re
from urllib.parse import unquote, urlsplit, urlunsplit

from pipeline.config.errors import ConfigError

_URL_CREDENTIALS = re.compile(r"(?<=://)[^/@\s]+@")


def redact(value):
    """A string with any URL's user:password@ replaced by ***@ (other values unchanged)."""
    return _URL_CREDENTIALS.sub("***@", value) if isinstance(value, str) else value


def has_credentials(url: str | None) -> bool:
    """Whether the URL carries a user (and maybe a password) before its host."""
    return bool(url) and urlsplit(url).username is not None


def refuse_in_tracking_uri(uri: str | None) -> None:
    """ConfigError for a tracking.uri that carries credentials: Hydra's .hydra/, params.yaml and
    dvc.lock would keep them."""
    if has_credentials(uri):
        raise ConfigError(
            f"tracking.uri={redact(uri)}: expected a URI without user:password@, which would be "
            "saved with the configuration; set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD instead"
        )


def split_credentials(url: str) -> tuple[str, str | None, str | None]:
    """(the URL without its user:password@, the user name, the password), both decoded; the URL
    unchanged and (None, None) when it carries none."""
    parts = urlsplit(url)
    if parts.username is None:
        return url, None, None
    host = parts.netloc.rsplit("@", 1)[1]
    password = unquote(parts.password) if parts.password is not None else None
    return urlunsplit(parts._replace(netloc=host)), unquote(parts.username), password


def credentials_to_environment(environ=os.environ) -> None:
    """A user:password@ in $MLFLOW_TRACKING_URI moved into MLFLOW_TRACKING_USERNAME and
    MLFLOW_TRACKING_PASSWORD, MLflow's own channel for them (set ones win, as they do in MLflow).
    The URI left behind can then be shown, logged and passed to other processes: MLflow prints a
    run's URL when the run ends, and puts the URL in its errors."""
    uri = environ.get("MLFLOW_TRACKING_URI")
    if not has_credentials(uri):
        return
    environ["MLFLOW_TRACKING_URI"], username, password = split_credentials(uri)
    environ.setdefault("MLFLOW_TRACKING_USERNAME", username)
    if password is not None:
        environ.setdefault("MLFLOW_TRACKING_PASSWORD", password)
