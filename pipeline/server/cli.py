"""`python -m pipeline.server`: an MLflow tracking server for this project, with accounts (MLflow's
basic-auth app), on loopback, answering only requests addressed to it (Host header checked against
--allowed-hosts, against DNS rebinding); `users` adds accounts and grants permissions.

    export MLFLOW_AUTH_ADMIN_PASSWORD=...                 # or MLFLOW_AUTH_ADMIN_PASSWORD_FILE=a-secret-file
    python -m pipeline.server                             # the project's mlflow.db on http://127.0.0.1:5000
    python -m pipeline.server --port 5050 --backend-store-uri postgresql+psycopg2://...
    python -m pipeline.server --no-auth                   # one person's server, on loopback only, no accounts

    export MLFLOW_TRACKING_USERNAME=admin MLFLOW_TRACKING_PASSWORD=...   # the admin's account
    python -m pipeline.server users add trainer --password-file -       # the password on standard input
    python -m pipeline.server users grant trainer EDIT --experiment threes-sevens

With no account named, `users` acts as the admin whose password the server's own environment holds
(MLFLOW_AUTH_ADMIN_PASSWORD, or the file MLFLOW_AUTH_ADMIN_PASSWORD_FILE names): in the server's container,
`docker compose exec -T mlflow python -m pipeline.server users ...` needs nothing on the host but Docker.

Its store and artifacts are the project's (`mlflow.db` and `mlartifacts/` in the project directory),
whichever directory it is started from: the store that training writes by default; its accounts
are in the store's database (`basic_auth.db` beside a sqlite store; pipeline/server/basic_auth.py).
Exposing it (`--host 0.0.0.0 --allowed-hosts mlflow.example.org`) is an explicit choice.
"""

from __future__ import annotations

import getpass
import ipaddress
import os
import sys
from pathlib import Path

from pipeline.config.cli import ArgumentParser
from pipeline.config.errors import PipelineError
from pipeline.config.project import project_dir
from pipeline.config.secrets import redact
from pipeline.server import accounts, basic_auth
from pipeline.tracking import store_check
from pipeline.tracking.server import LOOPBACK, server_command, tracking_only_env
from pipeline.tracking.store import default_uri

DEFAULT_SERVER = f"http://{LOOPBACK}:5000"
CONNECT_TIMEOUT_S = 10


def is_loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name
        return False


def serve(args) -> None:
    allowed = args.allowed_hosts.split(",") if args.allowed_hosts else None
    store = args.backend_store_uri or default_uri()
    artifacts = args.artifacts_destination or project_dir() / "mlartifacts"
    if args.no_auth:
        if not is_loopback(args.host):
            raise PipelineError(
                f"--no-auth --host {args.host}: a server without accounts lets anyone who reaches it change "
                f"every run and model; it runs on loopback only (--host {LOOPBACK}), or drop --no-auth"
            )
        environment, app = tracking_only_env(), None
    else:
        environment, app = {**tracking_only_env(), **basic_auth.server_environment(store)}, basic_auth.APP_NAME
    cmd = server_command(store, artifacts, args.port, args.host, allowed, args.workers, app_name=app)
    os.execve(cmd[0], cmd, environment)


def new_password(username: str, password_file: str | None) -> str:
    """From the file ('-': standard input, one line), else asked for twice on the terminal."""
    if password_file == "-":
        return sys.stdin.readline().rstrip("\r\n")
    if password_file:
        return Path(password_file).read_text().rstrip("\r\n")
    password = getpass.getpass(f"password for {username}: ")
    if getpass.getpass("again: ") != password:
        raise PipelineError(f"the two passwords for {username} differ; nothing was changed")
    return password


def admin_of_this_server(environ=os.environ) -> None:
    """No account named (MLFLOW_TRACKING_USERNAME, MLFLOW_TRACKING_TOKEN) but the admin's password at hand, as in
    the server's own container: the client acts as that admin."""
    if environ.get("MLFLOW_TRACKING_USERNAME") or environ.get("MLFLOW_TRACKING_TOKEN"):
        return
    if not (environ.get(basic_auth.PASSWORD_ENV) or environ.get(basic_auth.PASSWORD_FILE_ENV)):
        return
    environ["MLFLOW_TRACKING_PASSWORD"] = basic_auth.admin_password(environ)
    environ["MLFLOW_TRACKING_USERNAME"] = environ.get("MLFLOW_AUTH_ADMIN_USERNAME") or "admin"


def users(args) -> None:
    uri = args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_SERVER
    admin_of_this_server()
    store_check.check_store(uri, redact(uri), CONNECT_TIMEOUT_S)  # it answers, and knows the account
    if args.action == "add":
        accounts.add_user(uri, args.username, new_password(args.username, args.password_file))
        print(f"users: added {args.username}")
    else:
        print(f"users: {accounts.grant(uri, args.username, args.permission, args.experiment, args.registered_model)}")


def main(argv: list[str] | None = None) -> None:
    parser = ArgumentParser(prog="python -m pipeline.server", description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend-store-uri", help="default: the project's sqlite:///.../mlflow.db")
    parser.add_argument("--artifacts-destination", help="default: mlartifacts/ in the project directory")
    parser.add_argument("--host", default=LOOPBACK)
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--allowed-hosts", help="comma-separated Host header values (default: the loopback names)")
    parser.add_argument("--workers", type=int, default=1, help="server processes (default: 1)")
    parser.add_argument("--no-auth", action="store_true", help="no accounts (a server of your own, on loopback only)")
    commands = parser.add_subparsers(dest="command", metavar="users")
    users_parser = commands.add_parser("users", help="add a user, grant a permission (as MLFLOW_TRACKING_USERNAME)")
    actions = users_parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="add a user")
    grant = actions.add_parser("grant", help="grant a permission on an experiment or a registered model")
    for action in (add, grant):
        action.add_argument("username")
    add.add_argument("--password-file", help="a file holding the password ('-': standard input); default: asked for")
    grant.add_argument("permission", choices=accounts.PERMISSIONS)
    target = grant.add_mutually_exclusive_group(required=True)
    target.add_argument("--experiment", metavar="NAME", help="made if missing")
    target.add_argument("--registered-model", metavar="NAME", help="made if missing")
    for action in (add, grant):
        action.add_argument("--tracking-uri", help=f"default: $MLFLOW_TRACKING_URI, else {DEFAULT_SERVER}")
    args = parser.parse_args(argv)
    users(args) if args.command == "users" else serve(args)
