#!/usr/bin/env bash
# GPU checks, for a machine with CUDA (run from the repository root, environment active):
# the default config (accelerator=auto) must train on cuda:0 with the data resident there.
#   bash bench/gpu.sh [DATA_DIR]      # DATA_DIR: normalized MNIST, default data/normalized
set -euo pipefail
DATA=${1:-data/normalized}
python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'error: no CUDA device visible to torch')"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

# 1. The training app, 20 epochs, timed; it must report the CUDA device and the usual accuracy.
python - "$DATA" "$OUT" <<'PY'
import sys, time
from pathlib import Path
import pytorch_lightning as pl
from pipeline.config.compose import compose, validate
from pipeline.data import normalized
from pipeline.data.datamodule import NormalizedMNIST
from pipeline.train import train

data, out = sys.argv[1], Path(sys.argv[2])
cfg = validate(compose([f"paths.normalized={Path(data).resolve()}", "fit.epochs=20",
                        f"tracking.uri=sqlite:///{out}/mlflow.db"]))
trainer = pl.Trainer(accelerator=cfg.trainer.accelerator, devices=cfg.trainer.devices, logger=False)
datamodule = NormalizedMNIST(normalized.read(cfg.paths.normalized), cfg.fit.batch_size, cfg.fit.shuffle, cfg.seed)
datamodule.trainer = trainer
datamodule.setup("fit")
print(f"gpu: root device {trainer.strategy.root_device}; training data on {datamodule.train_x.device}")
assert datamodule.train_x.device.type == "cuda", "the data must be resident on the GPU"
start = time.perf_counter()
results = train(cfg, out / "models")
print(f"gpu: train() 20 epochs: {time.perf_counter() - start:.2f} s wall, validation accuracy {results['acc']:.4f}")
PY

# 2. The speed benchmark (bare loop vs project, both on the GPU), with the scaling table.
python -m bench.train_speed --data "$DATA" --repeats 5 --scales 1 4 16 fit.epochs=20
