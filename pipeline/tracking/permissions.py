"""What an account may do on a tracking server that runs MLflow's basic-auth app, asked before a
run: a training writes runs into its experiment and, when it registers its model, versions and
aliases into its registered model; each takes EDIT (or MANAGE). Without it the run would fail
at its first write, after the data was read and maybe after the training.

The server tells a user their own permission on a resource (GET users/permissions/get); one
without the basic-auth app answers 404, and is not asked further. A resource that does not exist
yet is no refusal: any account may create one, and holds MANAGE on what it creates.

    lacking(get, "alice", "threes-sevens", "threes-sevens-3-7")   # None, or one line saying what is missing
"""

from __future__ import annotations

from collections.abc import Callable

WRITES = ("EDIT", "MANAGE")
USER_PERMISSION = "/api/3.0/mlflow/users/permissions/get"
EXPERIMENT = "/api/2.0/mlflow/experiments/get-by-name"
REGISTERED_MODEL = "/api/2.0/mlflow/registered-models/get"

Get = Callable[[str, dict], "object"]  # (endpoint, params) -> a requests.Response


def grant_command(username: str, kind: str, name: str) -> str:
    option = "--experiment" if kind == "experiment" else "--registered-model"
    return f"python -m pipeline.server users grant {username} EDIT {option} {name}"


def lacking(get: Get, username: str, experiment: str, registered_model: str | None = None) -> str | None:
    """What `username` lacks to write a run into `experiment` (and a version into `registered_model`)."""
    resources = [("experiment", experiment, EXPERIMENT, {"experiment_name": experiment})]
    if registered_model:
        resources.append(("registered_model", registered_model, REGISTERED_MODEL, {"name": registered_model}))
    for kind, name, endpoint, params in resources:
        found = get(endpoint, params)
        if found.status_code == 404:
            continue  # made by this account when the run needs it
        if found.status_code == 403:
            permission = "no permission"
        elif found.status_code != 200:
            return None  # not a question this server answers
        else:
            key = found.json()["experiment"]["experiment_id"] if kind == "experiment" else name
            answer = get(USER_PERMISSION, {"username": username, "resource_type": kind, "resource_id": key})
            if answer.status_code != 200:
                return None  # no basic-auth app: nothing more to ask
            permission = answer.json()["permission"]
            if permission in WRITES:
                continue
        shown = kind.replace("_", " ")
        return (
            f"account '{username}' has {permission} on {shown} '{name}', and a training needs EDIT on it; "
            f"ask the server's admin for it: {grant_command(username, kind, name)}"
        )
    return None
