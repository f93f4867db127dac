"""The preflight: a world a run cannot run in (hardware, data, output directory, tracking store)
is refused by the run's one check, in one line, cheapest check first."""

from dataclasses import replace
from pathlib import Path

import pytest

from pipeline.config.errors import PipelineError
from pipeline.launch import preflight
from pipeline.launch.preflight import check_hardware, requested_devices
from pipeline.tracking.server import free_port
from pipeline.tracking.store import default_uri


def test_a_tracking_server_that_is_not_there_is_refused(normalized):
    port = free_port()
    cfg = replace(normalized, tracking=replace(normalized.tracking, uri=f"http://127.0.0.1:{port}"))
    with pytest.raises(PipelineError) as refused:
        preflight.check_before_run(cfg)
    assert str(refused.value).startswith(f"tracking.uri=http://127.0.0.1:{port}: connection refused")


def test_the_store_is_named_by_where_its_uri_came_from(normalized, monkeypatch):
    default = replace(normalized, tracking=replace(normalized.tracking, uri=None))
    assert preflight.tracking_store(default) == (default_uri(), f"the default tracking store {default_uri()}")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://bob:pw@127.0.0.1:5000")
    assert preflight.tracking_store(default)[1] == "MLFLOW_TRACKING_URI=http://***@127.0.0.1:5000"
    assert preflight.tracking_store(normalized)[1] == f"tracking.uri={normalized.tracking.uri}"


@pytest.mark.parametrize(
    "devices, asked",
    [(1, (1, [])), ("2", (2, [])), ("auto", (None, [])), (-1, (None, [])), ([0, 2], (2, [0, 2])), ("1,3", (2, [1, 3]))],
)
def test_requested_devices_reads_the_forms_lightning_takes(devices, asked):
    assert requested_devices(devices) == asked


def gpus(monkeypatch, count: int) -> None:
    """This machine as one with `count` CUDA devices, as Lightning sees it."""
    from pytorch_lightning.accelerators import CUDAAccelerator

    monkeypatch.setattr(CUDAAccelerator, "is_available", staticmethod(lambda: count > 0))
    monkeypatch.setattr(CUDAAccelerator, "auto_device_count", staticmethod(lambda: count))


@pytest.mark.parametrize("accelerator", ["gpu", "cuda", "GPU"])
def test_a_gpu_asked_for_where_there_is_none_is_refused(cfg, monkeypatch, accelerator):
    gpus(monkeypatch, 0)
    with pytest.raises(PipelineError) as refused:
        check_hardware(replace(cfg.trainer, accelerator=accelerator))
    assert str(refused.value) == (
        f"trainer.accelerator={accelerator}: no CUDA device on this machine; use trainer.accelerator=auto or cpu"
    )


def test_mps_asked_for_where_there_is_none_is_refused(cfg):
    from pytorch_lightning.accelerators import MPSAccelerator

    if MPSAccelerator.is_available():
        pytest.skip("this machine has an Apple GPU")
    with pytest.raises(PipelineError, match=r"^trainer.accelerator=mps: no Apple MPS device on this machine"):
        check_hardware(replace(cfg.trainer, accelerator="mps"))


@pytest.mark.parametrize("devices", [2, "3", [1], "0,1", [0, 1]])
def test_more_gpus_than_the_machine_has_are_refused(cfg, monkeypatch, devices):
    gpus(monkeypatch, 1)
    for accelerator in ("gpu", "auto"):  # auto picks the GPU when there is one
        with pytest.raises(PipelineError) as refused:
            check_hardware(replace(cfg.trainer, accelerator=accelerator, devices=devices))
        assert str(refused.value) == (
            f"trainer.devices={devices}: this machine has 1 CUDA device(s) (0..0); ask for 1 or fewer"
        )


@pytest.mark.parametrize("accelerator, devices", [("gpu", 1), ("gpu", "auto"), ("gpu", [0]), ("auto", -1), ("cpu", 4)])
def test_hardware_that_exists_passes(cfg, monkeypatch, accelerator, devices):
    gpus(monkeypatch, 1)
    check_hardware(replace(cfg.trainer, accelerator=accelerator, devices=devices))


def test_cpu_processes_need_no_gpu(cfg, monkeypatch):
    gpus(monkeypatch, 0)
    check_hardware(replace(cfg.trainer, accelerator="auto", devices=4))  # auto without a GPU: 4 CPU processes
    check_hardware(replace(cfg.trainer, accelerator="cpu", devices=2))


def test_the_checks_run_cheapest_first_and_return_the_data_read(normalized, tmp_path):
    data = preflight.check_before_run(normalized, str(tmp_path / "out"))
    assert (
        data.digits == [3, 7]
        and data.counts == {"train": 57, "valid": 23, "test": 40}
        and not (tmp_path / "out").exists()
    )
    broken = replace(
        normalized,
        tracking=replace(normalized.tracking, uri=f"http://127.0.0.1:{free_port()}"),
        data=replace(normalized.data, digits=[4, 9]),
    )
    with pytest.raises(PipelineError, match="holds digits"):  # the data, before a store that is not there
        preflight.check_before_run(broken)
    assert not Path(normalized.tracking.uri.removeprefix("sqlite:///")).exists()  # no store made
