"""The tests and CI send no usage reports (tests/conftest.py): DVC's analytics and MLflow's telemetry are off
in the commands they start, as the README's "Usage reports" tells a user to do."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

# What else turns them off, so that only the tests' own setting is checked: DVC's test mode, and the CI and
# pytest variables that MLflow reads as "not a user".
OTHER_SIGNALS = ("DVC_TEST", "CI", "PYTEST_CURRENT_TEST", "GITHUB_ACTIONS")


def commands_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in OTHER_SIGNALS}


def test_a_dvc_command_started_by_the_tests_sends_no_analytics(tmp_path):
    dvc = shutil.which("dvc", path=str(Path(sys.executable).parent))
    subprocess.run([dvc, "init", "--no-scm", "-q"], cwd=tmp_path, env=commands_env(), check=True)
    done = subprocess.run([dvc, "status", "-v"], cwd=tmp_path, env=commands_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "Analytics is disabled." in done.stdout + done.stderr


def test_mlflow_in_a_process_started_by_the_tests_sends_no_telemetry():
    check = "from mlflow.telemetry.utils import is_telemetry_disabled; print(is_telemetry_disabled())"
    done = subprocess.run([sys.executable, "-c", check], env=commands_env(), capture_output=True, text=True)
    assert done.stdout.strip() == "True", done.stderr
