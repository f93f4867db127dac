"""MLflow's `basic-auth` app on the project's tracking server: accounts (users, and their READ /
EDIT / MANAGE permissions on experiments and registered models) in the server's own database.

    environment = server_environment(store_uri)   # for `mlflow server --app-name basic-auth`

- Where the accounts live: in the tracking store's own database (PostgreSQL in
  docker/compose.yaml: MLflow's auth tables beside its tracking tables), or, for a sqlite store,
  in `basic_auth.db` beside it (MLflow's default is `basic_auth.db` in whatever directory the
  server starts from, so the accounts would change with the directory).
- The admin: MLFLOW_AUTH_ADMIN_USERNAME (default `admin`), with the password in
  MLFLOW_AUTH_ADMIN_PASSWORD, or in the file that MLFLOW_AUTH_ADMIN_PASSWORD_FILE names (a
  container secret). MLflow creates the account at the first start; a missing, empty or short
  password, or `password1234` (the admin password older MLflow versions created, known to all),
  is refused before the server starts.
- A new user may do nothing until granted (DEFAULT_PERMISSION): an account made for one purpose
  (a trainer, a model server) reaches only what it was given; MLflow's default would let every
  account read every experiment and model.
- A password once checked is trusted for AUTH_CACHE_S (MLflow checks each request's password with
  PBKDF2, ~0.6 s on a busy machine: a training's few hundred requests would wait minutes). A
  changed password or a deleted user then takes up to that long to reach the server's other
  workers; the worker that made the change forgets at once.
- MLFLOW_FLASK_SERVER_SECRET_KEY (CSRF protection of MLflow's sign-up form): as set, else a random
  one for this server's lifetime (shared by its workers; replicas behind one address must set one).
"""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path

from pipeline.config.errors import AccountError
from pipeline.tracking.store import sqlite_path

APP_NAME = "basic-auth"
DEFAULT_PERMISSION = "NO_PERMISSIONS"
PASSWORD_ENV, PASSWORD_FILE_ENV = "MLFLOW_AUTH_ADMIN_PASSWORD", "MLFLOW_AUTH_ADMIN_PASSWORD_FILE"
AUTH_CACHE_S = 30
MIN_PASSWORD_LENGTH = 12  # MLflow 3.17's own rule (mlflow/utils/validation.py)
OLD_DEFAULT_PASSWORD = "password1234"  # MLflow < 3.17's basic_auth.ini
HOW = (
    f"set {PASSWORD_ENV}, or {PASSWORD_FILE_ENV} to a file holding it (12 characters or more; "
    "read when the admin account is first created); or run a server of your own without accounts: --no-auth"
)


def admin_password(environ=os.environ) -> str:
    """The admin's password from the environment or its secret file; AccountError (one
    line, never the password) when it is missing, empty, too short or MLflow's old default."""
    if environ.get(PASSWORD_ENV):
        password, source = environ[PASSWORD_ENV], PASSWORD_ENV
    elif environ.get(PASSWORD_FILE_ENV):
        path = Path(environ[PASSWORD_FILE_ENV])
        source = f"{PASSWORD_FILE_ENV}={path}"
        try:
            password = path.read_text().rstrip("\r\n")
        except OSError as err:
            raise AccountError(f"{source}: cannot be read ({err.strerror}); {HOW}") from None
    else:
        raise AccountError(f"the tracking server's accounts need an admin password: {HOW}")
    if not password:
        raise AccountError(f"{source}: the admin password is empty; {HOW}")
    if password == OLD_DEFAULT_PASSWORD:
        raise AccountError(
            f"{source}: {OLD_DEFAULT_PASSWORD} is the admin password older MLflow versions created, "
            f"known to anyone; choose another: {HOW}"
        )
    short = password_problem(password)
    if short:
        raise AccountError(f"{source}: {short}; {HOW}")
    return password


def password_problem(password: str) -> str | None:
    """MLflow's rule for an account's password, which it applies when it creates the admin (with a
    traceback then): MLflow 3.17 writes it only in a private function, so it is restated here."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"Password must be at least {MIN_PASSWORD_LENGTH} characters"
    return None


def accounts_database(store_uri: str) -> str:
    """The database of the accounts: beside a sqlite store, else the store's own."""
    database = sqlite_path(store_uri)
    if database is None:
        return store_uri
    return f"sqlite:///{database.resolve().parent / 'basic_auth.db'}"


def write_config(store_uri: str) -> Path:
    """MLflow's auth configuration (an ini file, the only way it takes the accounts' database),
    in a private temporary file that the server reads at start and when a worker restarts."""
    descriptor, path = tempfile.mkstemp(prefix="mlflow-basic-auth-", suffix=".ini")  # mode 0600
    with os.fdopen(descriptor, "w") as ini:
        ini.write(
            "[mlflow]\n"
            f"default_permission = {DEFAULT_PERMISSION}\n"
            f"database_uri = {accounts_database(store_uri).replace('%', '%%')}\n"  # configparser's escape
            "admin_username = admin\n"  # MLflow takes MLFLOW_AUTH_ADMIN_USERNAME over it
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
            f"auth_cache_ttl_seconds = {AUTH_CACHE_S}\n"
        )
    return Path(path)


def server_environment(store_uri: str, environ=os.environ) -> dict[str, str]:
    """What `mlflow server --app-name basic-auth` needs in its environment, beside `environ`."""
    password = admin_password(environ)  # first: a refusal leaves no file behind
    return {
        "MLFLOW_AUTH_CONFIG_PATH": str(write_config(store_uri)),
        PASSWORD_ENV: password,
        "MLFLOW_FLASK_SERVER_SECRET_KEY": environ.get("MLFLOW_FLASK_SERVER_SECRET_KEY") or secrets.token_urlsafe(32),
    }
