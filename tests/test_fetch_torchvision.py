"""The torchvision source against mirrors on 127.0.0.1 serving small generated IDX .gz files.

torchvision's MNIST.resources lists real MNIST's MD5s; each test sets it to the MD5s of the
files it serves, as a mirror of other data would need.
"""

import functools
import gzip
import hashlib
import http.server
import socket
import threading
import time

import pytest
from torchvision.datasets import MNIST

from pipeline.config.errors import FetchError
from pipeline.fetch import fetch
from tests.conftest import make_config, write_idx_dir


@pytest.fixture
def serve(tmp_path):
    """serve(directory) -> base URL of an HTTP server on 127.0.0.1 for that directory."""
    servers = []

    def start(directory) -> str:
        handler = functools.partial(QuietHandler, directory=str(directory))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def mirror_dir(tmp_path, monkeypatch):
    """Four generated MNIST .gz files, and MNIST.resources set to their MD5s."""
    directory = tmp_path / "mirror"
    decoded = write_idx_dir(directory, gz=True)
    set_resources(monkeypatch, directory)
    return directory, decoded


def set_resources(monkeypatch, directory):
    resources = [(name, hashlib.md5((directory / name).read_bytes()).hexdigest()) for name, _ in MNIST.resources]
    monkeypatch.setattr(MNIST, "resources", resources)


def torchvision_config(tmp_path, mirrors=None, timeout_s=2):
    overrides = [f"fetch.timeout_s={timeout_s}"]
    if mirrors is not None:
        overrides.append("fetch.mirrors=[" + ",".join(f"'{m}'" for m in mirrors) + "]")
    return make_config(tmp_path, overrides, fetch="torchvision")


def assert_no_output(tmp_path):
    assert not (tmp_path / "data/raw").exists()
    assert not list(tmp_path.glob("data/.*partial*"))


def test_downloads_from_torchvisions_mirror_list_and_records_the_served_files(
    tmp_path, serve, mirror_dir, monkeypatch, capsys
):
    directory, decoded = mirror_dir
    url = serve(directory)
    monkeypatch.setattr(MNIST, "mirrors", [url])  # fetch.mirrors=null: torchvision's own list
    manifest = fetch(torchvision_config(tmp_path))

    served = {
        p.name.removesuffix(".gz"): hashlib.sha256(gzip.decompress(p.read_bytes())).hexdigest()
        for p in directory.glob("*.gz")
    }
    assert manifest["files"] == served
    assert served == {name: hashlib.sha256(data).hexdigest() for name, data in decoded.items()}
    assert manifest["source"] == "torchvision" and manifest["origin"] == url
    assert manifest["counts"] == {"train": 400, "test": 200}
    for name, digest in served.items():
        assert hashlib.sha256((tmp_path / "data/raw" / name).read_bytes()).hexdigest() == digest
    assert "B/s" in capsys.readouterr().err  # torchvision's tqdm progress bar


def test_a_mirror_that_answers_404_falls_through_to_the_next(tmp_path, serve, mirror_dir, capsys):
    directory, _ = mirror_dir
    (tmp_path / "empty").mkdir()
    missing, good = serve(tmp_path / "empty"), serve(directory)
    manifest = fetch(torchvision_config(tmp_path, [missing, good]))
    assert manifest["origin"] == good
    assert manifest["counts"] == {"train": 400, "test": 200}
    err = capsys.readouterr().err
    assert f"{missing}train-images-idx3-ubyte.gz: HTTPError: HTTP Error 404" in err
    assert "trying the next mirror" in err


def test_md5_mismatch_is_an_error_and_leaves_the_previous_output_intact(tmp_path, serve, mirror_dir, monkeypatch):
    directory, _ = mirror_dir
    (directory / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"not the file torchvision listed"))
    url = serve(directory)
    previous = tmp_path / "data/raw"
    previous.mkdir(parents=True)
    (previous / "manifest.json").write_text("previous")

    with pytest.raises(
        FetchError,
        match=r"t10k-labels-idx1-ubyte.gz: every mirror failed: .*: MD5 [0-9a-f]{32}, "
        r"expected [0-9a-f]{32}",
    ):
        fetch(torchvision_config(tmp_path, [url]))
    assert [p.name for p in previous.iterdir()] == ["manifest.json"]
    assert (previous / "manifest.json").read_text() == "previous"
    assert not list(tmp_path.glob("data/.*partial*"))


def test_truncated_gzip_is_an_error(tmp_path, serve, mirror_dir, monkeypatch):
    directory, _ = mirror_dir
    archive = directory / "train-labels-idx1-ubyte.gz"
    archive.write_bytes(archive.read_bytes()[:-20])
    set_resources(monkeypatch, directory)  # MD5 of the truncated file: the gzip check must catch it
    with pytest.raises(FetchError, match="train-labels-idx1-ubyte.gz: every mirror failed: .*not a complete gzip"):
        fetch(torchvision_config(tmp_path, [serve(directory)]))
    assert_no_output(tmp_path)


def test_truncated_transfer_fails_the_md5_check(tmp_path, serve, mirror_dir):
    directory, _ = mirror_dir
    archive = directory / "train-images-idx3-ubyte.gz"
    archive.write_bytes(archive.read_bytes()[:100])  # MD5s still those of the whole files
    with pytest.raises(FetchError, match="train-images-idx3-ubyte.gz: every mirror failed: .*MD5"):
        fetch(torchvision_config(tmp_path, [serve(directory)]))
    assert_no_output(tmp_path)


def test_a_mirror_that_never_answers_times_out_within_the_configured_limit(tmp_path, mirror_dir):
    silent = socket.create_server(("127.0.0.1", 0))  # the kernel accepts connections; nothing ever replies
    url = f"http://127.0.0.1:{silent.getsockname()[1]}/"
    started = time.monotonic()
    try:
        with pytest.raises(FetchError, match=r"every mirror failed: .*no answer within fetch.timeout_s=1 s"):
            fetch(torchvision_config(tmp_path, [url], timeout_s=1))
    finally:
        silent.close()
    assert time.monotonic() - started < 5  # one 1 s wait, not a hang
    assert socket.getdefaulttimeout() is None  # the process-wide default is restored
    assert_no_output(tmp_path)
