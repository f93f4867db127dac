"""The data stages are NumPy only: run them in a fresh interpreter and look at sys.modules."""

import json
import subprocess
import sys

from omegaconf import OmegaConf

from tests.conftest import REPO

STAGES = """
import json, sys
from pipeline.config.compose import load_params
from pipeline.fetch import fetch
from pipeline.filter import filter_digits
from pipeline.normalize import normalize
cfg = load_params()
fetch(cfg); filter_digits(cfg); normalize(cfg)
heavy = ("torch", "torchvision", "pytorch_lightning", "lightning")
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in heavy)))
"""


def test_fetch_filter_normalize_never_import_torch(cfg, tmp_path):
    (tmp_path / "params.yaml").write_text(OmegaConf.to_yaml(OmegaConf.structured(cfg)))
    done = subprocess.run(
        [sys.executable, "-c", STAGES],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "data/normalized/train_x.npy").is_file()  # the stages did run
    assert json.loads(done.stdout.splitlines()[-1]) == []
