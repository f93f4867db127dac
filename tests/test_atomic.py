"""A place to write is checked before a stage starts; nothing is created by the check."""

import os

import pytest

from pipeline.config.atomic import check_writable
from pipeline.config.errors import NotWritable


def test_a_directory_to_be_made_under_a_writable_one_passes_and_is_not_made(tmp_path):
    check_writable(tmp_path / "a" / "b", "hydra.run.dir")
    assert list(tmp_path.iterdir()) == []


def test_a_path_under_a_file_is_refused_naming_the_file(tmp_path):
    (tmp_path / "a").write_text("")
    with pytest.raises(NotWritable) as refused:
        check_writable(tmp_path / "a" / "b", "paths.plots=x", "set paths.plots elsewhere")
    assert str(refused.value) == (
        f"paths.plots=x: {tmp_path}/a is a file, not a directory; move it away, or set paths.plots elsewhere"
    )


@pytest.mark.skipif(
    os.geteuid() == 0,
    reason="root writes through chmod 555 (CI runs as root); the path-under-a-file test covers the refusal",
)
def test_a_read_only_directory_is_refused(tmp_path):
    (tmp_path / "ro").mkdir(mode=0o555)
    with pytest.raises(NotWritable, match=f"{tmp_path}/ro is not writable by this user"):
        check_writable(tmp_path / "ro" / "out", "hydra.run.dir=x")
