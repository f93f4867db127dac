"""dvc.yaml's train and evaluate stages pin the CPU kernels (torch's ATEN_CPU_CAPABILITY, MKL's MKL_CBWR),
so that `dvc repro` gives the same bits, models/ and dvc.lock on Intel and AMD processors alike."""

import os
import subprocess
import sys

import yaml

from tests.conftest import REPO

# A bare linear training like the default one (40 epochs of SGD, lr 1.0, batch 256, a seeded permutation each
# epoch) on synthetic images made from integers, so every machine starts from the same bytes.
BARE_TRAINING = """
import hashlib
import numpy as np
import torch
from torch.nn import functional as F

pixels = np.random.default_rng(0).integers(0, 256, size=(12_000, 784), dtype=np.int64)
labels = pixels[:, :392].sum(1) > pixels[:, 392:].sum(1)
x = torch.from_numpy(pixels.astype(np.float32) / np.float32(255))
y = torch.from_numpy(labels.astype(np.float32))
torch.manual_seed(42)
net = torch.nn.Linear(784, 1)
opt = torch.optim.SGD(net.parameters(), lr=1.0)
for epoch in range(40):
    order = torch.randperm(len(y))
    for i in range(0, len(y), 256):
        rows = order[i : i + 256]
        loss = F.binary_cross_entropy_with_logits(net(x[rows]).squeeze(-1), y[rows])
        opt.zero_grad()
        loss.backward()
        opt.step()
w = np.concatenate([net.weight.detach().numpy().ravel(), net.bias.detach().numpy()])
print(hashlib.md5(w.tobytes()).hexdigest())
"""
# What the pinned training gives on AMD EPYC processors, AVX2-only and AVX-512 ones alike (unpinned, both
# give 3aa504bd3905c7bb030874873d44761f). An Intel machine that gets another MD5 here is one where `dvc repro`
# does not reproduce the committed dvc.lock either: the pins no longer make the vendors agree.
PINNED_MD5 = "59f1d78638e1f33a29fd7fe7cf4571dc"


def stage_pins(stage: str) -> dict[str, str]:
    """The VAR=value words before `python` in a dvc.yaml stage's command."""
    words = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"][stage]["cmd"].split()
    return dict(word.split("=", 1) for word in words[: words.index("python")])


def test_the_stages_that_train_and_score_pin_the_same_kernels():
    assert stage_pins("train") == stage_pins("evaluate") == {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2"}
    assert all(stage_pins(stage) == {} for stage in ("fetch", "filter", "normalize"))  # NumPy only, exact


def test_a_training_with_the_train_stages_pins_gives_the_recorded_bits(tmp_path):
    unpinned = {k: v for k, v in os.environ.items() if k not in ("ATEN_CPU_CAPABILITY", "MKL_CBWR")}
    script = tmp_path / "bare_training.py"
    script.write_text(BARE_TRAINING)
    done = subprocess.run(
        [sys.executable, str(script)], env={**unpinned, **stage_pins("train")}, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == PINNED_MD5
