"""The tracking store, checked before a run exists (an outage during a run is results.py's).

    check_store(uri, shown_as, timeout_s, experiment)   # StoreUnavailable, one line, when it cannot take the run

Before a run, an http(s) store is asked, without retries, with MLflow's own credentials and TLS
settings (MLFLOW_TRACKING_USERNAME/PASSWORD/TOKEN, ~/.mlflow/credentials,
MLFLOW_TRACKING_INSECURE_TLS, ...): a refused connection, an unknown host, no answer within the
timeout, a TLS failure, credentials it refuses (naming the account), or an account without EDIT
on the run's experiment or registered model (permissions.py) is one line naming the URI and what
to do. A sqlite store must be a database file that sqlite's own check finds undamaged (else one
line on how to recover it, and the file is left as it was), or a place where one can be created.
Other stores (postgresql, ...) are left to MLflow.
"""

from __future__ import annotations

import shlex
import socket
import sqlite3
import threading
import time
from contextlib import closing
from pathlib import Path
from urllib.parse import urlsplit

import requests

from pipeline.config.atomic import check_writable
from pipeline.config.errors import NotWritable, StoreUnavailable, causes
from pipeline.config.secrets import redact
from pipeline.tracking import permissions
from pipeline.tracking.store import SQLITE_BUSY_TIMEOUT_MS, default_uri, sqlite_path

PROBE = "/api/2.0/mlflow/experiments/search"  # read-only, and behind a server's authentication
SQLITE_HEADER = b"SQLite format 3\x00"
SQLITE_CORRUPT, SQLITE_NOTADB = 11, 26  # sqlite's result codes for a damaged file


def default_store() -> str:
    return f"leave tracking.uri unset for the default store {default_uri()}"


def check_store(
    uri: str, shown_as: str, timeout_s: float, experiment: str | None = None, registered_model: str | None = None
) -> None:
    """Raise StoreUnavailable (one line, starting with `shown_as`, e.g. `tracking.uri=...`) when
    the store at `uri` cannot take a run (into `experiment`, registering `registered_model`);
    return within about timeout_s."""
    scheme = uri.split(":", 1)[0].lower()
    if scheme in ("http", "https"):
        check_server(uri, shown_as, timeout_s, experiment, registered_model)
    elif sqlite_path(uri) is not None:
        check_sqlite(sqlite_path(uri), shown_as)


def check_sqlite(database: Path, shown_as: str) -> None:
    elsewhere = "set tracking.uri to a writable place" if database == sqlite_path(default_uri()) else default_store()
    if database.is_dir():
        raise StoreUnavailable(f"{shown_as}: {database} is a directory, expected an MLflow database file")
    if database.is_file():
        try:
            with open(database, "r+b") as f:  # opened for writing, nothing written
                header = f.read(len(SQLITE_HEADER))
        except OSError as err:
            raise StoreUnavailable(
                f"{shown_as}: {database} cannot be written ({err.strerror}); fix its permissions, or {elsewhere}"
            ) from None
        if header and header != SQLITE_HEADER:
            raise StoreUnavailable(
                f"{shown_as}: {database} is not an SQLite database; point tracking.uri at "
                f"an MLflow database, or {elsewhere}"
            )
        problem = sqlite_damage(database) if header else None
        if problem:
            recovered = database.with_name(f"{database.stem}-recovered{database.suffix}")
            raise StoreUnavailable(
                f"{shown_as}: {database} is damaged (sqlite: {problem}); nothing was written to it. Restore it "
                f"from a backup, or copy what sqlite can still read into a new file: sqlite3 "
                f"{shlex.quote(str(database))} .recover | sqlite3 {shlex.quote(str(recovered))} and set "
                f"tracking.uri=sqlite:///{recovered}"
            )
    try:
        check_writable(database.parent, shown_as, elsewhere)  # MLflow's journal and our lock file go beside it
    except NotWritable as err:
        raise StoreUnavailable(str(err)) from None


def sqlite_damage(database: Path) -> str | None:
    """What sqlite's own `PRAGMA quick_check` finds wrong with the database's structure (pages,
    b-trees, free list; a cut or overwritten page), on one line; None if nothing. Read only: no
    write, no journal, nothing rolled back; it waits for a writer like MLflow's own connections.
    Cost: one read of the file (bench/store_check.py). Errors other than damage (locked for longer
    than that, a hot journal to roll back, I/O) are left to MLflow."""
    url = database.resolve().as_uri() + "?mode=ro"
    try:
        with closing(sqlite3.connect(url, uri=True, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)) as connection:
            found = [row[0] for row in connection.execute("PRAGMA quick_check(1)")]
    except sqlite3.DatabaseError as err:
        if (getattr(err, "sqlite_errorcode", 0) & 0xFF) in (SQLITE_CORRUPT, SQLITE_NOTADB):  # primary code
            return str(err)
        return None
    if found == ["ok"]:
        return None
    lines = [line.strip() for text in found for line in str(text).splitlines()]
    return " ".join(line for line in lines if line and not line.startswith("***"))[:300]


def check_server(
    uri: str, shown_as: str, timeout_s: float, experiment: str | None = None, registered_model: str | None = None
) -> None:
    """A few requests to the server's API, in a thread so that a hung name lookup cannot hold us."""
    outcome: list = []
    worker = threading.Thread(
        target=lambda: outcome.append(probe(uri, timeout_s, experiment, registered_model)), daemon=True
    )
    worker.start()
    worker.join(timeout_s + 1)
    problem = outcome[0] if outcome else f"no answer within {timeout_s:g} s (tracking.connect_timeout_s)"
    if problem:
        raise StoreUnavailable(f"{shown_as}: {problem}")


def probe(uri: str, timeout_s: float, experiment: str | None = None, registered_model: str | None = None) -> str | None:
    """What keeps the server at `uri` from taking a run (None: nothing)."""
    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.rest_utils import http_request

    credentials = get_default_host_creds(uri)
    deadline = time.monotonic() + timeout_s

    def get(endpoint: str, params: dict):
        left = max(deadline - time.monotonic(), 0.5)
        return http_request(credentials, endpoint, "GET", max_retries=0, backoff_factor=0, timeout=left, params=params)

    try:
        response = get(PROBE, {"max_results": 1})
        if response.status_code in (401, 403):
            return refused(response.status_code, credentials.username, credentials.token)
        if response.status_code != 200:
            return (
                f"answered HTTP {response.status_code} to GET {PROBE}: not an MLflow tracking server, or a "
                f"failing one; check the URI, or {default_store()}"
            )
        if experiment and credentials.username:
            return permissions.lacking(get, credentials.username, experiment, registered_model)
    except Exception as err:  # MLflow wraps what requests raised: the cause says what happened
        return connection_problem(uri, err, timeout_s)
    return None


def refused(status: int, username: str | None, token: str | None) -> str:
    """The server's 401 or 403 to a read, as what to do about it."""
    if status == 403:
        who = f"account '{username}'" if username else "this client"
        return f"the server refused {who} (HTTP 403 to a read); ask the server's admin for access"
    if username:
        return (
            f"the server refused account '{username}' (HTTP 401): a wrong password, or no such account; check "
            "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or ~/.mlflow/credentials)"
        )
    if token:
        return "the server refused the token in MLFLOW_TRACKING_TOKEN (HTTP 401)"
    return (
        "the server asks for an account (HTTP 401); set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD "
        "(or MLFLOW_TRACKING_TOKEN) to an account it knows"
    )


def connection_problem(uri: str, err: BaseException, timeout_s: float) -> str:
    host, port = urlsplit(uri).hostname, urlsplit(uri).port
    start = (
        f"start it (python -m pipeline.server --port {port}), or {default_store()}"
        if port
        else f"start it, or {default_store()}"
    )
    chain = list(causes(err))

    def seen(*kinds) -> BaseException | None:
        return next((e for e in chain if isinstance(e, kinds)), None)

    if seen(requests.exceptions.SSLError):
        return (
            f"TLS error ({redact(str(chain[-1]))}); check the server's certificate "
            "(MLFLOW_TRACKING_SERVER_CERT_PATH), or use http:// for a server without TLS"
        )
    if seen(socket.gaierror):
        return f"unknown host '{host}'; check the URI, or {default_store()}"
    if seen(ConnectionRefusedError):
        return f"connection refused: no MLflow server there; {start}"
    if seen(requests.exceptions.Timeout, TimeoutError):
        return (
            f"no answer within {timeout_s:g} s (tracking.connect_timeout_s); check that the server is up "
            "and reachable, or raise tracking.connect_timeout_s"
        )
    return f"cannot connect ({redact(str(chain[-1]))}); {start}"
