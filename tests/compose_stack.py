"""docker/compose.yaml of a checkout, run for tests/test_image.py as a user runs it with each engine: `PodmanStack`
with podman-compose 1.0.3 (Debian 12's, and where it differs from Docker Compose: docs/scaling.md), `DockerStack`
with Docker Compose v2 (`docker compose`). Both read their settings from the checkout's docker/.env."""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from mlflow import MlflowClient

PROJECT = "threes-sevens-test"  # not the file's `name:`: a user's own stack is never touched


class PodmanStack:
    """A checkout's docker/compose.yaml run by podman-compose as project PROJECT, its variables `env` written to the
    checkout's docker/.env (single-quoted: taken as written), where compose reads them."""

    name = "podman"

    def __init__(self, engine, checkout: Path, env: dict):
        self.engine, self.checkout, self.env = engine, checkout, env
        (checkout / "docker/.env").write_text("".join(f"{key}='{value}'\n" for key, value in env.items()))
        self.url = f"http://{env['PUBLISH_ADDRESS']}:{env['MLFLOW_PORT']}"

    def compose(self, *args, **kwargs):
        return self.engine.compose("-p", PROJECT, "-f", self.checkout / "docker/compose.yaml", *args, env={}, **kwargs)

    def container(self, service: str) -> str:
        return f"{PROJECT}_{service}_1"  # podman-compose 1.0.3's names

    def up_server(self) -> None:
        """PostgreSQL, then the tracking server, each waited for until healthy: podman-compose 1.0.3 ignores
        `depends_on` conditions (and podman schedules no healthchecks without systemd: the test runs them)."""
        self.up("postgres")
        self.up("mlflow")

    def up(self, service: str, timeout_s: float = 180) -> None:
        """`up -d SERVICE`, then wait until its own compose healthcheck passes. --no-build: the image is built
        already, and a name that missed it would build it again, for minutes."""
        self.compose("up", "-d", "--no-build", service)
        container, deadline = self.container(service), time.monotonic() + timeout_s
        while self.engine("healthcheck", "run", container, check=False).returncode != 0:
            if time.monotonic() > deadline:
                logs = self.engine("logs", container, check=False)
                raise AssertionError(f"{service} not healthy after {timeout_s} s:\n{logs.stdout[-4000:]}{logs.stderr}")
            time.sleep(1)

    def up_serve(self) -> None:
        """`up -d serve` (podman-compose 1.0.3 starts it whatever its profile)."""
        self.compose("up", "-d", "--no-build", "serve")

    def run_trainer(self, *command: str, status: int = 0) -> str:
        """`run trainer [COMMAND]`; its output, its exit status checked. podman-compose 1.0.3 exits 0 whatever the
        container did, so the container is named and its status read. --no-deps: the services are up, and 1.0.3
        would build the image again before starting them."""
        name = f"{PROJECT}_trainer_run"
        done = self.compose("run", "--no-deps", "-T", f"--name={name}", "trainer", *command)
        exited = self.engine("inspect", "--format={{.State.ExitCode}}", name).stdout.strip()
        self.engine("rm", name)
        output = done.stdout + done.stderr
        assert exited == str(status), f"trainer {' '.join(command) or '(its command)'}: exit {exited}\n{output[-8000:]}"
        return output

    def users(self, *args: str, stdin: str | None = None) -> None:
        """`python -m pipeline.server users ARGS` through the stack, in the server's container as its admin: how
        docs/scaling.md ("Docker") adds and grants accounts with nothing on the host but the engine."""
        command = ["python", "-m", "pipeline.server", "users", *args]
        self.engine("exec", "-i", self.container("mlflow"), *command, input=stdin)

    def down(self) -> None:
        """Nothing: the podman fixture's teardown removes every container, volume and network."""

    @contextmanager
    def as_admin(self):
        """An MLflow client of the server as its admin (MLflow reads the account from the environment)."""
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
            patch.setenv("MLFLOW_TRACKING_PASSWORD", self.env["MLFLOW_AUTH_ADMIN_PASSWORD"])
            yield MlflowClient(self.url)

    def sql(self, query: str) -> list[str]:
        """Rows of `query` in the tracking server's PostgreSQL database, as psql's unaligned `a|b` lines."""
        psql = ["psql", "--username=mlflow", "--dbname=mlflow", "--tuples-only", "--no-align", f"--command={query}"]
        password = f"--env=PGPASSWORD={self.env['POSTGRES_PASSWORD']}"
        return self.engine("exec", password, self.container("postgres"), *psql).stdout.split()


class DockerStack(PodmanStack):
    """The same with Docker Compose v2, as docs/scaling.md ("Docker") says: `depends_on` conditions and
    healthchecks honoured, `run` exits with the container's status, accounts through `compose exec`."""

    name = "docker"

    def container(self, service: str) -> str:
        return f"{PROJECT}-{service}-1"

    def up_server(self) -> None:
        """`up -d --wait mlflow`: compose starts PostgreSQL first and the server once PostgreSQL is healthy
        (`depends_on: condition: service_healthy`), then waits for the server's own healthcheck."""
        done = self.compose("up", "-d", "--wait", "--wait-timeout=180", "--no-build", "mlflow", check=False)
        if done.returncode != 0:
            logs = self.compose("logs", "--no-color", check=False)
            raise AssertionError(f"up mlflow: exit {done.returncode}\n{done.stderr[-3000:]}\n{logs.stdout[-6000:]}")
        health = "--format={{.State.Health.Status}}"
        assert self.engine("inspect", health, self.container("postgres")).stdout.strip() == "healthy"

    def up_serve(self) -> None:
        """`up -d serve`: named, its profile is started; not waited for (it waits for a champion)."""
        self.compose("up", "-d", "--no-build", "serve")

    def run_trainer(self, *command: str, status: int = 0) -> str:
        """`run --rm trainer [COMMAND]`, whose exit status is the container's."""
        done = self.compose("run", "--rm", "-T", "trainer", *command, check=False)
        output = done.stdout + done.stderr
        what = " ".join(command) or "(its command)"
        assert done.returncode == status, f"trainer {what}: exit {done.returncode}\n{output[-8000:]}"
        return output

    def users(self, *args: str, stdin: str | None = None) -> None:
        """`docker compose exec -T mlflow python -m pipeline.server users ARGS`, as docs/scaling.md writes it."""
        self.compose("exec", "-T", "mlflow", "python", "-m", "pipeline.server", "users", *args, input=stdin)

    def down(self) -> None:
        """`down --volumes`: its containers, network and volumes (the engine may be a user's own)."""
        self.compose("down", "--volumes", "--remove-orphans", "--timeout=5", check=False)
