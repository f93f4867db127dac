"""McNemar's exact test on known tables, and the spread over seeds."""

import math

import numpy as np
import pytest

from pipeline.report.significance import McNemar, SeedTests, exact_p_value, mcnemar, seed_tests, spread


@pytest.mark.parametrize(
    ("b", "c", "p"),
    [
        (3, 10, 2 * (1 + 13 + 78 + 286) / 2**13),  # 0.0923: P(X <= 3) for Binomial(13, 1/2), doubled
        (1, 9, 2 * (1 + 10) / 2**10),  # 0.0215
        (0, 5, 2 / 2**5),  # 0.0625: five of five discordant images one way is not enough at 5%
        (0, 6, 2 / 2**6),  # 0.03125: six of six is
        (5, 5, 1.0),
        (0, 0, 1.0),  # no discordant image: nothing tells the models apart
        (1, 0, 1.0),  # the doubled tail 2 * 1/2 is capped at 1
        (2, 1, 1.0),
    ],
)
def test_exact_p_value_on_known_tables(b, c, p):
    assert exact_p_value(b, c) == p
    assert exact_p_value(c, b) == p  # two-sided: symmetric in the two models


def test_exact_p_value_on_many_discordant_images_matches_the_binomial_tail():
    """n = 2,038 (every validation image discordant): 2**n overflows floats, the integer formula does not."""
    b, c = 980, 1058
    n = b + c
    log_pmf = [math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) - n * math.log(2) for i in range(b + 1)]
    assert exact_p_value(b, c) == pytest.approx(2 * sum(math.exp(v) for v in log_pmf), rel=1e-9)
    assert 0.08 < exact_p_value(b, c) < 0.10


def test_exact_p_value_refuses_negative_counts():
    with pytest.raises(ValueError, match="b=-1"):
        exact_p_value(-1, 3)


def test_mcnemar_counts_only_the_discordant_images():
    a = np.array([1, 1, 1, 1, 0, 0, 1, 1], bool)
    b = np.array([1, 0, 0, 0, 0, 1, 1, 1], bool)
    test = mcnemar(a, b)
    assert (test.b, test.c, test.discordant) == (3, 1, 4)
    assert test.p_value == 2 * (1 + 4) / 16
    assert not test.significant()


def test_mcnemar_significant_when_one_model_wins_nearly_every_disagreement():
    a = np.ones(2038, bool)
    b = a.copy()
    b[:12] = False
    test = mcnemar(a, b)
    assert (test.b, test.c) == (12, 0) and test.p_value == 2 / 2**12 and test.significant()
    assert not test.significant(alpha=1e-4)


def test_mcnemar_needs_paired_arrays():
    with pytest.raises(ValueError, match="shapes"):
        mcnemar(np.ones(5, bool), np.ones(4, bool))


def significant(a_ahead: bool) -> McNemar:
    return McNemar(10, 0, 0.002) if a_ahead else McNemar(0, 10, 0.002)


NOISE = McNemar(3, 4, 1.0)


@pytest.mark.parametrize(
    ("tests", "expected"),
    [
        ([significant(True)] * 5, True),
        ([significant(True)] * 3 + [NOISE] * 2, True),  # a majority of the seeds
        ([significant(True)] * 2 + [NOISE] * 3, False),
        ([significant(True)] * 2 + [significant(False)] + [NOISE] * 2, False),
        ([significant(True)] * 2 + [significant(False)] * 1, False),  # a majority, but not the same way
        ([NOISE] * 5, False),
    ],
)
def test_seed_tests_significant_on_most_seeds_the_same_way(tests, expected):
    assert SeedTests(dict(enumerate(tests))).significant() is expected


def test_seed_tests_pair_runs_of_the_same_seed():
    right, wrong = np.ones(20, bool), np.zeros(20, bool)
    tests = seed_tests({0: right, 1: right, 2: right}, {1: wrong, 2: right, 3: wrong})
    assert list(tests.tests) == [1, 2]
    assert (tests.tests[1].b, tests.tests[1].c) == (20, 0) and tests.tests[2].discordant == 0
    with pytest.raises(ValueError, match="no seed in common"):
        seed_tests({0: right}, {1: right})


def test_spread_mean_std_and_range():
    s = spread([0.98, 0.985, 0.99])
    assert s.mean == pytest.approx(0.985) and s.std == pytest.approx(0.005)  # sample std (n - 1)
    assert (s.low, s.high) == (0.98, 0.99)
    assert spread([0.9]).std == 0.0
    with pytest.raises(ValueError):
        spread([])
