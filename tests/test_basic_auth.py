"""The tracking server's accounts, set up before `mlflow server` starts: the admin password refused
when it must be, where the accounts live, MLflow's configuration file."""

import configparser
import os
from pathlib import Path

import pytest

from pipeline.config.errors import AccountError
from pipeline.server import basic_auth


def refusal(environ: dict) -> str:
    with pytest.raises(AccountError) as raised:
        basic_auth.admin_password(environ)
    assert "\n" not in str(raised.value)
    return str(raised.value)


def test_no_empty_short_or_old_default_admin_password_and_one_line_says_how_to_set_one(tmp_path):
    how = "set MLFLOW_AUTH_ADMIN_PASSWORD, or MLFLOW_AUTH_ADMIN_PASSWORD_FILE to a file holding it"
    assert refusal({}).startswith(f"the tracking server's accounts need an admin password: {how}")
    assert refusal({"MLFLOW_AUTH_ADMIN_PASSWORD_FILE": ""}).startswith("the tracking server's accounts need")
    (tmp_path / "empty").write_text("\n")
    assert refusal({"MLFLOW_AUTH_ADMIN_PASSWORD_FILE": str(tmp_path / "empty")}).startswith(
        f"MLFLOW_AUTH_ADMIN_PASSWORD_FILE={tmp_path}/empty: the admin password is empty; {how}"
    )
    old = refusal({"MLFLOW_AUTH_ADMIN_PASSWORD": "password1234"})
    assert old.startswith("MLFLOW_AUTH_ADMIN_PASSWORD: password1234 is the admin password older MLflow versions")
    assert refusal({"MLFLOW_AUTH_ADMIN_PASSWORD": "short"}).startswith(
        "MLFLOW_AUTH_ADMIN_PASSWORD: Password must be at least 12 characters;"
    )
    missing = refusal({"MLFLOW_AUTH_ADMIN_PASSWORD_FILE": str(tmp_path / "none")})
    assert missing.startswith(f"MLFLOW_AUTH_ADMIN_PASSWORD_FILE={tmp_path}/none: cannot be read (No such file")


def test_the_admin_password_comes_from_the_environment_or_its_secret_file(tmp_path):
    (tmp_path / "secret").write_text("from-the-file-0001\n")
    assert basic_auth.admin_password({"MLFLOW_AUTH_ADMIN_PASSWORD_FILE": str(tmp_path / "secret")}) == (
        "from-the-file-0001"
    )
    both = {"MLFLOW_AUTH_ADMIN_PASSWORD": "from-the-variable", "MLFLOW_AUTH_ADMIN_PASSWORD_FILE": "ignored"}
    assert basic_auth.admin_password(both) == "from-the-variable"


def test_the_accounts_live_beside_a_sqlite_store_or_in_the_stores_own_database(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert basic_auth.accounts_database("sqlite:///store/mlflow.db") == f"sqlite:///{tmp_path}/store/basic_auth.db"
    postgres = "postgresql+psycopg2://mlflow:p%40ss@db:5432/mlflow"
    assert basic_auth.accounts_database(postgres) == postgres


def test_the_server_environment_names_a_private_config_that_mlflow_reads_as_written(tmp_path):
    store = "postgresql+psycopg2://mlflow:p%40ss@db:5432/mlflow"  # a % that configparser would take for its own
    environment = basic_auth.server_environment(store, {"MLFLOW_AUTH_ADMIN_PASSWORD": "admin-pass-0001"})
    ini = environment["MLFLOW_AUTH_CONFIG_PATH"]
    try:
        assert os.stat(ini).st_mode & 0o777 == 0o600
        config = configparser.ConfigParser()  # as MLflow reads it (mlflow/server/auth/config.py)
        config.read(ini)
        assert config["mlflow"]["database_uri"] == store
        assert config["mlflow"]["default_permission"] == "NO_PERMISSIONS"
        assert "admin-pass-0001" not in Path(ini).read_text()  # the password travels in the environment only
    finally:
        os.unlink(ini)
    assert environment["MLFLOW_AUTH_ADMIN_PASSWORD"] == "admin-pass-0001"
    assert len(environment["MLFLOW_FLASK_SERVER_SECRET_KEY"]) >= 32
    kept = basic_auth.server_environment(
        store, {"MLFLOW_AUTH_ADMIN_PASSWORD": "admin-pass-0001", "MLFLOW_FLASK_SERVER_SECRET_KEY": "shared"}
    )
    os.unlink(kept["MLFLOW_AUTH_CONFIG_PATH"])
    assert kept["MLFLOW_FLASK_SERVER_SECRET_KEY"] == "shared"  # several servers behind one address share one
