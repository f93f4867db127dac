"""The report's words follow the test, not the raw difference: "significant" or "within noise"."""

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient

from pipeline.model.predictions import TEST_FILE, read_predictions, write_predictions
from pipeline.report.build import build
from pipeline.report.verdicts import SIGNIFICANT, WITHIN_NOISE, compare, comparison_html, verdict

IMAGES = 2038


def correctness(errors_per_seed: list[int], offset: int = 0) -> dict[int, np.ndarray]:
    """Per seed, a model right on all images but `errors` of them (from `offset` on)."""
    seeds = {}
    for seed, errors in enumerate(errors_per_seed):
        right = np.ones(IMAGES, bool)
        right[offset : offset + errors] = False
        seeds[seed] = right
    return seeds


def test_a_consistent_gap_is_significant():
    # b: 20 errors per seed; a: 4 others. 20 vs 4 discordant images: p = 0.0015 on each seed.
    c = compare("a", "b", {"a": correctness([4] * 5, offset=100), "b": correctness([20] * 5)})
    assert [(t.b, t.c) for t in c.tests.tests.values()] == [(20, 4)] * 5
    assert c.significant and c.word == SIGNIFICANT and c.ahead == "a"
    sentence = verdict(c)
    assert f"<b>{SIGNIFICANT}</b>" in sentence and WITHIN_NOISE not in sentence
    assert "+0.79</b> percentage points" in sentence and "p &lt; 0.05 on 5 of 5 seeds, a ahead on each" in sentence


def test_a_small_gap_is_within_noise_however_it_looks():
    # 4 images in 2,038 (0.20 points, the size of the bias's effect): 6 vs 2 discordant, p = 0.29.
    c = compare(
        "linear", "linear_no_bias", {"linear": correctness([2] * 5, offset=100), "linear_no_bias": correctness([6] * 5)}
    )
    assert c.difference == pytest.approx(4 / IMAGES) and not c.significant and c.word == WITHIN_NOISE
    sentence = verdict(c)
    assert f"<b>{WITHIN_NOISE}</b>" in sentence and SIGNIFICANT not in sentence
    assert "+0.20</b> percentage points" in sentence and "p &lt; 0.05 on 0 of 5 seeds" in sentence


def test_the_same_mean_gap_reads_differently_when_it_is_not_paired():
    """Equal accuracies can hide models that disagree on many images, evenly: within noise."""
    a = correctness([30] * 5, offset=0)
    b = correctness([30] * 5, offset=30)  # 30 errors each, on different images: 30 vs 30 discordant
    c = compare("a", "b", {"a": a, "b": b})
    assert c.difference == 0 and [t.discordant for t in c.tests.tests.values()] == [60] * 5
    assert c.word == WITHIN_NOISE


def test_significant_on_a_minority_of_seeds_is_within_noise():
    c = compare("a", "b", {"a": correctness([0] * 5), "b": correctness([12, 12, 2, 1, 0])})
    assert c.tests.significant_seeds() == [0, 1] and c.word == WITHIN_NOISE
    assert "p &lt; 0.05 on 2 of 5 seeds" in verdict(c)


def test_the_seed_by_seed_table_shows_each_test():
    html = comparison_html(compare("a", "b", {"a": correctness([0] * 2), "b": correctness([12, 1])}))
    assert "<td>12</td><td>0</td><td>0.000488 *</td>" in html  # p = 2 / 2**12, significant
    assert "<td>1</td><td>0</td><td>1</td>" in html  # one discordant image: p = 1


def doctor(client: MlflowClient, run, errors: int, keep: Path) -> Path:
    """Flip the first `errors` predictions of a run's stored test_predictions.csv (a copy kept in `keep`)."""
    stored = Path(run.info.artifact_uri.removeprefix("file://")) / TEST_FILE
    shutil.copy(stored, keep)
    labels, logits = read_predictions(stored)
    wrong = np.where(labels == 1, -1.0, 1.0)  # a logit that says the other digit
    write_predictions(stored, np.concatenate([wrong[:errors], logits[errors:]]), labels)
    return stored


@pytest.mark.parametrize(("errors", "word"), [(0, WITHIN_NOISE), (12, SIGNIFICANT)])
def test_the_reports_bias_verdict_follows_the_runs_predictions(learner_runs, tmp_path, errors, word):
    """The same runs, their no-bias predictions as trained (identical here) or with 12 extra errors."""
    uri, overrides, _ = learner_runs
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("learner")
    runs = [r for r in client.search_runs([experiment.experiment_id]) if r.info.run_name.startswith("linear_no_bias,")]
    originals = []
    try:
        for i, run in enumerate(runs):
            originals.append((doctor(client, run, errors, tmp_path / f"{i}.csv"), tmp_path / f"{i}.csv"))
        page = build(tmp_path / "report", overrides).read_text()
    finally:
        for stored, copy in originals:
            shutil.copy(copy, stored)
    [said] = re.findall(r"linear − linear_no_bias: .*? the difference is <b>([a-z ]+)</b>", page)
    assert said == word
