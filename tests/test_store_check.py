"""The tracking store checked before a run, against real sockets and servers on loopback; and
MLflow's HTTP retries set to span an outage."""

import http.server
import os
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from pipeline.config.errors import StoreUnavailable
from pipeline.tracking import store_check
from pipeline.tracking.results import MAX_RETRIES, retry_span_s, tolerate_outages
from pipeline.tracking.server import free_port
from pipeline.tracking.store import default_uri
from pipeline.tracking.store_check import check_store
from tests.conftest import damaged_copies, mlflow_store


def default() -> str:
    """The way out every refusal offers: the default store (found from the working directory)."""
    return f"or leave tracking.uri unset for the default store {default_uri()}"


def refusal(uri: str, timeout_s: float = 5) -> str:
    with pytest.raises(StoreUnavailable) as raised:
        check_store(uri, f"tracking.uri={uri}", timeout_s)
    assert "\n" not in str(raised.value)
    return str(raised.value)


@contextmanager
def http_server(status: int):
    """A loopback HTTP server answering every GET with `status` and a JSON body; yields its port."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b'{"experiments": []}' if status == 200 else b'{"error_code": "X"}'
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_a_closed_port_is_refused_at_once_naming_the_uri_and_the_server_command():
    port = free_port()  # bound, then released: nothing listens there
    uri = f"http://127.0.0.1:{port}"
    assert refusal(uri) == (
        f"tracking.uri={uri}: connection refused: no MLflow server there; start it "
        f"(python -m pipeline.server --port {port}), {default()}"
    )


def test_an_unknown_host_is_named():
    assert refusal("http://no-such-host.invalid:5000") == (
        "tracking.uri=http://no-such-host.invalid:5000: unknown host 'no-such-host.invalid'; check the URI, "
        + default()
    )


def test_a_server_that_never_answers_is_given_up_after_the_timeout():
    with socket.socket() as listener:  # accepts connections (the kernel's backlog), never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        uri = f"http://127.0.0.1:{listener.getsockname()[1]}"
        started = time.monotonic()
        message = refusal(uri, timeout_s=1)
        waited = time.monotonic() - started
    assert message.startswith(f"tracking.uri={uri}: no answer within 1 s (tracking.connect_timeout_s)")
    assert waited < 10  # not MLflow's minutes of retries


def test_tls_to_a_server_without_tls_is_a_tls_error():
    with http_server(200) as port:
        message = refusal(f"https://127.0.0.1:{port}")
    assert message.startswith(f"tracking.uri=https://127.0.0.1:{port}: TLS error (")
    assert message.endswith("or use http:// for a server without TLS")


@pytest.fixture
def no_account(monkeypatch, tmp_path):
    """No MLflow credentials: none in the environment, no ~/.mlflow/credentials."""
    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))


def test_a_server_asking_for_an_account_says_how_to_give_one(no_account):
    with http_server(401) as port:
        assert refusal(f"http://127.0.0.1:{port}") == (
            f"tracking.uri=http://127.0.0.1:{port}: the server asks for an account (HTTP 401); set "
            "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN) to an account it knows"
        )


def test_a_refused_account_is_named_and_its_password_is_not(no_account, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "not-her-password")
    with http_server(401) as port:
        assert refusal(f"http://127.0.0.1:{port}") == (
            f"tracking.uri=http://127.0.0.1:{port}: the server refused account 'alice' (HTTP 401): a wrong "
            "password, or no such account; check MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD "
            "(or ~/.mlflow/credentials)"
        )
    with http_server(403) as port:
        assert "refused account 'alice' (HTTP 403 to a read)" in refusal(f"http://127.0.0.1:{port}")


def test_a_server_that_is_not_mlflow_is_named():
    with http_server(404) as port:
        assert "answered HTTP 404 to GET /api/2.0/mlflow/experiments/search: not an MLflow tracking server" in refusal(
            f"http://127.0.0.1:{port}"
        )


def test_a_server_that_answers_passes():
    with http_server(200) as port:
        check_store(f"http://127.0.0.1:{port}", "tracking.uri", 5)


def test_credentials_in_the_uri_stay_out_of_the_message():
    uri = f"http://alice:s3cr3t@127.0.0.1:{free_port()}"
    with pytest.raises(StoreUnavailable) as raised:
        check_store(uri, "tracking.uri=http://***@127.0.0.1", 5)
    assert "s3cr3t" not in str(raised.value)


def test_a_sqlite_store_under_a_file_is_refused(tmp_path):
    (tmp_path / "runs").write_text("")
    uri = f"sqlite:///{tmp_path}/runs/mlflow.db"
    assert refusal(uri) == f"tracking.uri={uri}: {tmp_path}/runs is a file, not a directory; move it away, " + default()
    assert not (tmp_path / "runs.lock").exists()


def test_a_sqlite_store_that_is_a_directory_or_not_a_database_is_refused(tmp_path):
    (tmp_path / "m.db").mkdir()
    assert refusal(f"sqlite:///{tmp_path}/m.db").endswith("m.db is a directory, expected an MLflow database file")
    (tmp_path / "n.db").write_text("not sqlite at all")
    assert f"{tmp_path}/n.db is not an SQLite database" in refusal(f"sqlite:///{tmp_path}/n.db")
    assert (tmp_path / "n.db").read_text() == "not sqlite at all"  # opened for writing, nothing written


@pytest.mark.skipif(
    os.geteuid() == 0,
    reason="root writes through chmod 555 (CI runs as root); the path-is-a-file test covers this code path",
)
def test_a_sqlite_store_in_a_read_only_directory_is_refused(tmp_path):
    (tmp_path / "ro").mkdir(mode=0o555)
    assert f"{tmp_path}/ro is not writable by this user" in refusal(f"sqlite:///{tmp_path}/ro/mlflow.db")


def test_a_new_sqlite_store_where_one_can_be_made_passes(tmp_path):
    check_store(f"sqlite:///{tmp_path}/not/yet/made/mlflow.db", "tracking.uri", 5)
    assert list(tmp_path.iterdir()) == []  # nothing created by the check


@pytest.fixture(scope="module")
def damaged(tmp_path_factory) -> dict[str, Path]:
    """An MLflow store, and its truncated and flipped copies."""
    database = mlflow_store(tmp_path_factory.mktemp("stores"))
    return {"intact": database, **damaged_copies(database)}


def recovery(database: Path) -> str:
    recovered = database.with_name(f"{database.stem}-recovered.db")
    return (
        "nothing was written to it. Restore it from a backup, or copy what sqlite can still read into a new "
        f"file: sqlite3 {database} .recover | sqlite3 {recovered} and set tracking.uri=sqlite:///{recovered}"
    )


@pytest.mark.parametrize("damage", ["truncated", "flipped"])
def test_a_damaged_sqlite_store_is_refused_with_the_way_to_recover_and_left_untouched(damaged, damage):
    database = damaged[damage]
    before = (database.read_bytes(), database.stat().st_mtime_ns)
    message = refusal(f"sqlite:///{database}")
    assert message.startswith(f"tracking.uri=sqlite:///{database}: {database} is damaged (sqlite: ")
    assert message.endswith(recovery(database))
    if damage == "truncated":
        assert "(sqlite: database disk image is malformed)" in message
    assert (database.read_bytes(), database.stat().st_mtime_ns) == before
    assert sorted(p.name for p in database.parent.iterdir()) == ["flipped.db", "mlflow.db", "truncated.db"]


def test_an_intact_sqlite_store_passes(damaged):
    check_store(f"sqlite:///{damaged['intact']}", "tracking.uri", 5)
    assert store_check.sqlite_damage(damaged["intact"]) is None


@pytest.fixture
def retry_settings(monkeypatch):
    """MLflow's retry settings as they were after the test (tolerate_outages changes this process's)."""
    for key in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"):
        monkeypatch.setenv(key, "0")
        monkeypatch.delenv(key)


def test_retries_span_the_outage_with_the_fewest_retries(retry_settings):
    assert tolerate_outages(60) == {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "6", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"}
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "6"
    assert retry_span_s(6, 1) == 2 + 4 + 8 + 16 + 32 >= 60 > retry_span_s(5, 1)
    for outage_s in (0, 1, 10, 300, 600, 1000):
        settings = tolerate_outages(outage_s)
        retries, factor = (
            int(settings["MLFLOW_HTTP_REQUEST_MAX_RETRIES"]),
            int(settings["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"]),
        )
        assert retry_span_s(retries, factor) >= outage_s and retries <= MAX_RETRIES
    assert tolerate_outages(10**6) == {
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "10",
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "120",
    }  # MLflow's most


def test_mlflow_accepts_the_settings_and_waits_as_computed(monkeypatch, retry_settings):
    """MLflow's own client, against a closed port: it retries for the computed span, then fails."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_JITTER", "0")
    tolerate_outages(6)  # 3 retries: waits of 0, 2 and 4 s
    started = time.monotonic()
    with pytest.raises(MlflowException):
        MlflowClient(f"http://127.0.0.1:{free_port()}").get_experiment("0")
    assert retry_span_s(3, 1) == 6 <= time.monotonic() - started < 30
