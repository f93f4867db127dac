"""A throwaway PostgreSQL cluster on 127.0.0.1 for the tracking-server tests (initdb + pg_ctl).
PostgreSQL refuses to run as root, so as root it runs as the `postgres` user that Debian's
package creates."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.tracking.server import free_port
from tests import system_deps


def postgres_bin(name: str) -> str:
    return str(system_deps.postgres_bindir() / name)


@contextmanager
def postgres_cluster(database: str = "mlflow") -> Iterator[int]:
    """A cluster holding an empty `database`, user `postgres` without a password; yields its port."""
    directory = Path(tempfile.mkdtemp(prefix="pg-"))  # not under pytest's root-only tmp_path
    as_owner = []
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres")
        as_owner = ["runuser", "-u", "postgres", "--"]
    data, port = directory / "data", free_port()
    subprocess.run(
        [*as_owner, postgres_bin("initdb"), "-D", data, "-U", "postgres", "--auth=trust", "--no-sync"],
        check=True,
        capture_output=True,
    )
    server_options = f"-c listen_addresses=127.0.0.1 -p {port} -k {directory} -c fsync=off"
    subprocess.run(
        [*as_owner, postgres_bin("pg_ctl"), "-D", data, "-l", directory / "log", "-w", "-o", server_options, "start"],
        check=True,
        capture_output=True,
    )
    try:
        subprocess.run(
            [postgres_bin("createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", database],
            check=True,
            capture_output=True,
        )
        yield port
    finally:
        subprocess.run([*as_owner, postgres_bin("pg_ctl"), "-D", data, "-m", "fast", "-w", "stop"], capture_output=True)
        shutil.rmtree(directory, ignore_errors=True)
