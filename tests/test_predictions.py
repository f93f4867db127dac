"""The per-image predictions each run logs: the file, reading it back, and the run's artifact."""

from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient

from pipeline.model.metric_names import FINAL_VAL_ACC, FIT_SECONDS, N_PARAMETERS
from pipeline.model.predictions import FILE, correct, read_predictions, write_predictions
from pipeline.train import train


def test_write_then_read_keeps_every_logit_exactly(tmp_path):
    logits = np.random.default_rng(0).normal(size=50).astype(np.float32)
    labels = (np.arange(50) % 2).astype(np.float32)
    path = write_predictions(tmp_path / FILE, logits, labels)
    assert path.read_text().splitlines()[0] == "index,label,logit"
    read_labels, read_logits = read_predictions(path)
    assert read_labels.tolist() == labels.astype(int).tolist()
    assert np.array_equal(read_logits.astype(np.float32), logits)


def test_correct_is_the_models_rule():
    labels = np.array([1, 1, 0, 0, 0])
    logits = np.array([2.0, -0.5, -3.0, 0.0, 0.1])  # a logit of exactly 0 says the second digit
    assert correct(labels, logits).tolist() == [True, False, True, True, False]


def test_read_refuses_another_file(tmp_path):
    (tmp_path / "other.csv").write_text("actual,predicted\n3,3\n")
    with pytest.raises(ValueError, match="other.csv: expected the header"):
        read_predictions(tmp_path / "other.csv")
    (tmp_path / "gaps.csv").write_text("index,label,logit\n0,1,0.5\n2,0,-1\n")
    with pytest.raises(ValueError, match="gaps.csv: expected rows indexed"):
        read_predictions(tmp_path / "gaps.csv")
    with pytest.raises(ValueError, match="3 logits for 2 labels"):
        write_predictions(tmp_path / FILE, [1, 2, 3], [0, 1])


def test_a_run_logs_its_predictions_its_size_and_its_training_time(normalized, tmp_path):
    results = train(normalized, tmp_path / "models")
    client = MlflowClient(normalized.tracking.uri)
    run = client.get_run(results["run_id"])
    labels, logits = read_predictions(client.download_artifacts(run.info.run_id, FILE, str(tmp_path)))
    valid_y = np.load(f"{normalized.paths.normalized}/valid_y.npy")
    assert len(labels) == len(valid_y) and labels.tolist() == (valid_y > 0.5).astype(int).tolist()
    assert correct(labels, logits).mean() == pytest.approx(run.data.metrics[FINAL_VAL_ACC])
    assert run.data.metrics[N_PARAMETERS] == 785
    assert run.data.metrics[FIT_SECONDS] > 0
    assert (tmp_path / "models" / FILE).read_text() == Path(
        client.download_artifacts(run.info.run_id, FILE, str(tmp_path / "a"))
    ).read_text()
