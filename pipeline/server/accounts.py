"""Users and their permissions on a tracking server that runs MLflow's basic-auth app
(pipeline/server/basic_auth.py), through MLflow's own client
(`mlflow.server.get_app_client("basic-auth", tracking_uri)`), as the account that
MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD name: the admin adds users; the admin, or a
user with MANAGE on an experiment or registered model, grants permissions on it.

    add_user(uri, "trainer", password)
    grant(uri, "trainer", "EDIT", experiment="threes-sevens")         # the experiment made if missing
    grant(uri, "serve", "READ", registered_model="threes-sevens-3-7")  # the model made if missing

A grant names an experiment by its name (MLflow keys permissions by the experiment's id, and
accepts a grant on an id that does not exist) and replaces the user's earlier permission on it.
Each failure is one line naming the user, the resource and MLflow's reason.
"""

from __future__ import annotations

import re
import warnings

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException, RestException
from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS, ErrorCode

from pipeline.config.errors import AccountError
from pipeline.config.secrets import redact
from pipeline.server.basic_auth import APP_NAME
from pipeline.tracking import registry, store

PERMISSIONS = ("READ", "EDIT", "MANAGE", "NO_PERMISSIONS")  # MLflow's, weakest last


def acting_account() -> str:
    from mlflow.utils.credentials import read_mlflow_creds

    return read_mlflow_creds().username or "(none: MLFLOW_TRACKING_USERNAME unset)"


def refusal(doing: str, who_may: str, err: MlflowException) -> AccountError:
    """One line: what could not be done, by which account, and why (MLflow's first line)."""
    account = acting_account()
    status = re.search(r"error code (401|403) ", str(err))
    if status and status[1] == "401":
        return AccountError(
            f"cannot {doing}: the server did not accept account '{account}' (HTTP 401); "
            "check MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"
        )
    if status:
        return AccountError(f"cannot {doing}: account '{account}' may not (HTTP 403); {who_may}")
    reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return AccountError(f"cannot {doing} as account '{account}': {redact(reason)}")


def auth_client(uri: str):
    from mlflow.server import get_app_client

    with warnings.catch_warnings():  # mlflow.server's import: Starlette's deprecation of its WSGI middleware
        warnings.simplefilter("ignore")
        return get_app_client(APP_NAME, tracking_uri=uri)


def add_user(uri: str, username: str, password: str) -> None:
    try:
        auth_client(uri).create_user(username, password)
    except MlflowException as err:
        raise refusal(f"add user '{username}'", "only the admin adds users", err) from None


def resource(client: MlflowClient, experiment: str | None, registered_model: str | None) -> tuple[str, str, str]:
    """(resource type, id, how to name it) of the experiment or registered model, made if missing."""
    if experiment is not None:
        return "experiment", store.experiment_id(client, experiment), f"experiment '{experiment}'"
    registry.create_model(client, registered_model)
    return "registered_model", registered_model, f"registered model '{registered_model}'"


def grant(
    uri: str, username: str, permission: str, experiment: str | None = None, registered_model: str | None = None
) -> str:
    """Give `username` `permission` on the experiment or the registered model; returns what was done."""
    client = MlflowClient(uri)
    shown = f"experiment '{experiment}'" if experiment is not None else f"registered model '{registered_model}'"
    doing = f"grant {permission} on {shown} to '{username}'"
    auth = auth_client(uri)
    try:
        kind, key, shown = resource(client, experiment, registered_model)
        try:
            auth.grant_user_permission(username, kind, key, permission)
        except RestException as err:
            if err.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
                raise
            auth.revoke_user_permission(username, kind, key)  # the user had one: replace it
            auth.grant_user_permission(username, kind, key, permission)
    except MlflowException as err:
        raise refusal(doing, "only the admin, or a user with MANAGE on it, grants", err) from None
    return f"{username}: {permission} on {shown}"
