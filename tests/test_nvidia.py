"""An NVIDIA GPU torch cannot use (pipeline/launch/nvidia.py, preflight's check_hardware): what the NVIDIA kernel
driver publishes under /proc/driver/nvidia is a directory made here, and torch's CUDA probe (Lightning's
CUDAAccelerator) is mocked: `trainer.accelerator=auto` warns in one line and trains on the CPU, `gpu` is refused in
one line naming the driver, a usable GPU or none at all says nothing."""

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from pipeline.config.compose import compose, validate
from pipeline.config.errors import PipelineError
from pipeline.launch import nvidia
from pipeline.launch.preflight import check_hardware
from tests.test_preflight import gpus

OLD_DRIVER = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05  Sat Aug 19 01:15:15 UTC 2023\nGCC version:\n"
NEW_DRIVER = "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.65.06  Release Build\n"


def driver(monkeypatch, tmp_path: Path, version_text: str | None, count: int) -> None:
    """This machine as one whose NVIDIA kernel driver (version_text; None: none loaded) lists `count` GPUs."""
    proc = tmp_path / "driver-nvidia"
    monkeypatch.setattr(nvidia, "PROC", proc)
    if version_text is None:
        return
    proc.mkdir(parents=True)
    for index in range(count):
        (proc / "gpus" / f"0000:0{index}:00.0").mkdir(parents=True)
    (proc / "version").write_text(version_text)


@pytest.fixture
def trainer():
    return validate(compose([])).trainer


def test_the_default_accelerator_is_auto(trainer):
    assert trainer.accelerator == "auto"


def test_auto_with_a_gpu_its_driver_too_old_for_warns_in_one_line(trainer, monkeypatch, tmp_path, capsys):
    driver(monkeypatch, tmp_path, OLD_DRIVER, 2)
    gpus(monkeypatch, 0)  # torch's probe: no usable CUDA device
    check_hardware(trainer)  # trains, on the CPU
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        f"warning: this machine has 2 NVIDIA GPU(s) that torch cannot use: driver 535.104.05 is older than "
        f"580.65.06, which torch {torch.__version__}'s CUDA {torch.version.cuda} needs; trainer.accelerator=auto "
        "trains on the CPU (trainer.accelerator=cpu says so on purpose, without this line)"
    ]


def test_gpu_insisted_on_with_a_driver_too_old_is_refused_naming_the_driver(trainer, monkeypatch, tmp_path, capsys):
    driver(monkeypatch, tmp_path, OLD_DRIVER, 1)
    gpus(monkeypatch, 0)
    with pytest.raises(PipelineError) as refused:
        check_hardware(replace(trainer, accelerator="gpu"))
    assert str(refused.value) == (
        "trainer.accelerator=gpu: this machine has 1 NVIDIA GPU(s) that torch cannot use: driver 535.104.05 is "
        f"older than 580.65.06, which torch {torch.__version__}'s CUDA {torch.version.cuda} needs; "
        "use trainer.accelerator=auto or cpu"
    )
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("version_text", "count", "usable"),
    [
        (None, 0, 0),  # no NVIDIA driver: a CPU machine
        (NEW_DRIVER, 1, 1),  # a GPU torch uses
        (OLD_DRIVER, 0, 0),  # the driver loaded, no GPU visible (a container started without them)
    ],
)
def test_nothing_is_said_when_torch_uses_the_gpus_or_there_are_none(
    trainer, monkeypatch, tmp_path, capsys, version_text, count, usable
):
    driver(monkeypatch, tmp_path, version_text, count)
    gpus(monkeypatch, usable)
    check_hardware(trainer)
    check_hardware(replace(trainer, accelerator="cpu"))
    assert capsys.readouterr().err == ""


def test_cpu_asked_for_says_nothing_even_beside_an_unusable_gpu(trainer, monkeypatch, tmp_path, capsys):
    driver(monkeypatch, tmp_path, OLD_DRIVER, 1)
    gpus(monkeypatch, 0)
    check_hardware(replace(trainer, accelerator="cpu"))
    assert capsys.readouterr().err == ""


def test_a_new_enough_driver_that_still_fails_is_named_as_such(monkeypatch, tmp_path):
    driver(monkeypatch, tmp_path, NEW_DRIVER, 1)
    assert nvidia.unusable_gpus(cuda_available=False) == (
        f"this machine has 1 NVIDIA GPU(s) that torch cannot use: torch {torch.__version__} (CUDA "
        f"{torch.version.cuda}) cannot initialise CUDA with driver 580.65.06"
    )
    assert nvidia.unusable_gpus(cuda_available=True) is None


def test_the_driver_each_cuda_release_needs():
    assert nvidia.needed_driver(torch.version.cuda) == "580.65.06"  # the lock's torch: CUDA 13.0
    assert nvidia.needed_driver("12.8") == "525.60.13" and nvidia.needed_driver(None) is None
