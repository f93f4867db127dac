"""`python -m pipeline.server`: the server it would start (os.execve intercepted), its refusals, and
the `users` command's bad arguments; each refusal one line and exit 1. The accounts against a
real server: tests/test_server_auth.py."""

import os
from pathlib import Path

import pytest

from pipeline.config.cli import run_command
from pipeline.server import cli as server


@pytest.fixture
def started(monkeypatch):
    """What the command would exec: [(argv, environment)]."""
    calls = []
    monkeypatch.setattr(server.os, "execve", lambda path, argv, env: calls.append((argv, env)))
    return calls


def refused(capsys, *argv: str) -> str:
    with pytest.raises(SystemExit) as ended:
        run_command(server.main, list(argv))
    assert ended.value.code == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    return lines[0]


def test_the_server_runs_mlflows_basic_auth_app_by_default(started, monkeypatch, tmp_path):
    monkeypatch.setenv("MLFLOW_AUTH_ADMIN_PASSWORD", "admin-pass-0001")
    run_command(server.main, ["--port", "5050", "--backend-store-uri", f"sqlite:///{tmp_path}/mlflow.db"])
    [(argv, env)] = started
    assert argv[argv.index("--app-name") + 1] == "basic-auth"
    assert argv[argv.index("--host") + 1] == "127.0.0.1" and argv[argv.index("--port") + 1] == "5050"
    assert env["MLFLOW_AUTH_ADMIN_PASSWORD"] == "admin-pass-0001"
    assert f"database_uri = sqlite:///{tmp_path}/basic_auth.db" in Path(env["MLFLOW_AUTH_CONFIG_PATH"]).read_text()
    os.unlink(env["MLFLOW_AUTH_CONFIG_PATH"])


def test_without_an_admin_password_nothing_starts(started, monkeypatch, capsys):
    monkeypatch.delenv("MLFLOW_AUTH_ADMIN_PASSWORD", raising=False)
    monkeypatch.delenv("MLFLOW_AUTH_ADMIN_PASSWORD_FILE", raising=False)
    assert refused(capsys).startswith("error: the tracking server's accounts need an admin password: set ")
    monkeypatch.setenv("MLFLOW_AUTH_ADMIN_PASSWORD", "password1234")
    assert "password1234 is the admin password older MLflow versions created" in refused(capsys)
    assert started == []


def test_a_server_without_accounts_only_on_loopback_and_only_when_asked(started, monkeypatch, capsys):
    monkeypatch.delenv("MLFLOW_AUTH_ADMIN_PASSWORD", raising=False)
    assert refused(capsys, "--no-auth", "--host", "0.0.0.0").startswith(
        "error: --no-auth --host 0.0.0.0: a server without accounts lets anyone who reaches it change every run"
    )
    assert started == []
    run_command(server.main, ["--no-auth"])
    [(argv, env)] = started
    assert "--app-name" not in argv and "MLFLOW_AUTH_CONFIG_PATH" not in env
    assert server.is_loopback("::1") and server.is_loopback("localhost") and not server.is_loopback("mlflow")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["users"], "the following arguments are required: ACTION"),
        (["users", "grant", "alice", "WRITE", "--experiment", "e"], "argument permission: invalid choice: 'WRITE'"),
        (["users", "grant", "alice", "READ"], "one of the arguments --experiment --registered-model is required"),
        (["users", "grant", "alice", "READ", "--experiment", "e", "--registered-model", "m"], "not allowed with"),
        (["users", "add"], "the following arguments are required: username"),
    ],
)
def test_bad_users_arguments_are_one_line(capsys, argv, message):
    assert message in refused(capsys, *argv)


def test_users_without_an_account_act_as_the_admin_whose_password_the_server_holds(monkeypatch, tmp_path):
    """`docker compose exec mlflow python -m pipeline.server users ...`: the container's admin password serves."""
    (tmp_path / "admin").write_text("admin-pass-0002\n")
    inside = {"MLFLOW_AUTH_ADMIN_PASSWORD_FILE": str(tmp_path / "admin")}
    server.admin_of_this_server(inside)
    assert (inside["MLFLOW_TRACKING_USERNAME"], inside["MLFLOW_TRACKING_PASSWORD"]) == ("admin", "admin-pass-0002")
    named = {"MLFLOW_AUTH_ADMIN_PASSWORD": "admin-pass-0003", "MLFLOW_TRACKING_USERNAME": "alice"}
    server.admin_of_this_server(named)  # an account named: it stays
    assert "MLFLOW_TRACKING_PASSWORD" not in named and named["MLFLOW_TRACKING_USERNAME"] == "alice"
    elsewhere = {}
    server.admin_of_this_server(elsewhere)  # no admin password here: MLflow's credentials, as before
    assert elsewhere == {}
