"""What a trained model is measured by (pipeline/model/metrics.py): a collapse is told from a model
that tells the digits apart, and from data that holds (nearly) one digit."""

import numpy as np

from pipeline.model.metrics import collapse


def test_a_model_answering_one_digit_for_every_image_has_collapsed():
    labels = np.array([1, 0] * 50, np.float32)
    assert collapse(np.full(100, -2.0), labels, [3, 7]) == "answers 7 for 100 of 100 validation images"
    assert collapse(np.full(100, 0.5), labels, [3, 7]) == "answers 3 for 100 of 100 validation images"
    assert collapse(np.r_[np.full(99, 1.0), -1.0], labels, [3, 7]) == "answers 3 for 99 of 100 validation images"


def test_a_model_that_tells_the_digits_apart_has_not():
    labels = np.array([1, 0] * 50, np.float32)
    assert collapse(np.where(labels > 0.5, 1.0, -1.0), labels, [3, 7]) is None
    assert collapse(np.r_[np.full(98, 1.0), -1.0, -1.0], labels, [3, 7]) is None  # 98%: a bad model, not one answer


def test_one_answer_for_data_of_one_digit_is_no_collapse():
    assert collapse(np.full(100, 1.0), np.ones(100, np.float32), [3, 7]) is None
