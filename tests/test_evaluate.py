import json

from pipeline.evaluate import evaluate
from pipeline.train import train


def test_evaluate_writes_metrics_and_plots(normalized, tmp_path):
    cfg = normalized
    trained = train(cfg, tmp_path / "models")
    metrics = evaluate(cfg)
    assert json.loads((tmp_path / "metrics.json").read_text()) == metrics
    valid, test = metrics["valid"], metrics["test"]
    assert metrics["train"]["count"] == 57 and valid["count"] == 23 and test["count"] == 40
    assert valid["acc"] == trained["acc"] and test["acc"] == trained["test_acc"]  # what the run recorded
    for figures in (valid, test):  # the same names for every pair and split
        assert set(figures) == {"count", "loss", "acc", "acc_first", "acc_second"}
    lines = (tmp_path / "plots/predictions.csv").read_text().splitlines()
    assert lines[0] == "actual,predicted" and len(lines) == 41  # the test images
    pairs = [tuple(line.split(",")) for line in lines[1:]]  # what DVC draws as the confusion matrix
    assert sum(actual == predicted for actual, predicted in pairs) / 40 == test["acc"]
    threes = [predicted for actual, predicted in pairs if actual == "3"]
    assert len(threes) == 20 and threes.count("3") / 20 == test["acc_first"]  # data.digits=[3, 7]: 3 first
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["predictions.csv"]  # the weights picture: train's


def test_evaluate_reloads_pixel_similarity_templates(tmp_path, synthetic_idx):
    from tests.conftest import make_config

    cfg = make_config(tmp_path, ["model=pixel_similarity", "fit.epochs=1", "tracking.log_model=false"])
    from pipeline.fetch import fetch
    from pipeline.filter import filter_digits
    from pipeline.normalize import normalize

    fetch(cfg), filter_digits(cfg), normalize(cfg)
    trained = train(cfg, tmp_path / "models")
    metrics = evaluate(cfg)
    assert metrics["valid"]["acc"] == trained["acc"] > 0.9 and metrics["test"]["acc"] == trained["test_acc"] > 0.9
