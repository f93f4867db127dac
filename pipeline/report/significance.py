"""How sure we are: the spread of an accuracy over seeds, and McNemar's exact test on paired predictions.

Two models scored on the same images agree on most of them. Only the images where exactly one of
the two is right tell them apart: b (A right, B wrong) and c (A wrong, B right). If the models were
equally good, each such image would be b or c with probability 1/2, so b ~ Binomial(b + c, 1/2).
McNemar's exact test asks how likely a split at least as lopsided as the observed one is under that
assumption: p = min(1, 2 * P(X <= min(b, c))), X ~ Binomial(b + c, 1/2) (scipy.stats.binomtest(b, b + c)).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

import numpy as np

ALPHA = 0.05  # a difference is "significant" when p < ALPHA


@dataclass(frozen=True)
class McNemar:
    """McNemar's exact test on one pair of models scored on the same images."""

    b: int  # images only model A gets right
    c: int  # images only model B gets right
    p_value: float

    @property
    def discordant(self) -> int:
        return self.b + self.c

    def significant(self, alpha: float = ALPHA) -> bool:
        return self.p_value < alpha


def exact_p_value(b: int, c: int) -> float:
    """Two-sided exact binomial p-value of b successes in b + c trials with p = 1/2.

    Integer arithmetic: sum of C(n, i) for i <= min(b, c), over 2**n, doubled; exact for any n
    (Python divides big integers to the nearest float).
    """
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be >= 0, got b={b}, c={c}")
    n, k = b + c, min(b, c)
    if 2 * k == n:  # b == c (n = 0 included): the most likely split there is
        return 1.0
    tail = sum(math.comb(n, i) for i in range(k + 1))
    return min(1.0, 2 * tail / 2**n)


def mcnemar(a_correct, b_correct) -> McNemar:
    """The test on per-image correctness (booleans, same images in the same order) of models A and B."""
    a_correct, b_correct = np.asarray(a_correct, bool), np.asarray(b_correct, bool)
    if a_correct.shape != b_correct.shape or a_correct.ndim != 1:
        raise ValueError(
            f"paired predictions must be two 1-d arrays of one length, "
            f"got shapes {a_correct.shape} and {b_correct.shape}"
        )
    b = int(np.sum(a_correct & ~b_correct))
    c = int(np.sum(~a_correct & b_correct))
    return McNemar(b, c, exact_p_value(b, c))


@dataclass(frozen=True)
class Spread:
    """A metric over seeds: mean, sample standard deviation (0 for one seed) and range."""

    values: tuple[float, ...]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def std(self) -> float:
        return statistics.stdev(self.values) if len(self.values) > 1 else 0.0

    @property
    def low(self) -> float:
        return min(self.values)

    @property
    def high(self) -> float:
        return max(self.values)


def spread(values) -> Spread:
    values = tuple(float(v) for v in values)
    if not values:
        raise ValueError("a spread needs at least one value")
    return Spread(values)


@dataclass(frozen=True)
class SeedTests:
    """One comparison (A vs B) tested on each seed: run A of seed s against run B of seed s."""

    tests: dict[int, McNemar]  # seed -> the test on that seed's pair of runs

    def significant_seeds(self, alpha: float = ALPHA) -> list[int]:
        return [seed for seed, test in self.tests.items() if test.significant(alpha)]

    def significant(self, alpha: float = ALPHA) -> bool:
        """Significant on more than half of the seeds, with the same model ahead on each of them."""
        chosen = [self.tests[seed] for seed in self.significant_seeds(alpha)]
        same_way = all(t.b > t.c for t in chosen) or all(t.b < t.c for t in chosen)
        return 2 * len(chosen) > len(self.tests) and same_way


def seed_tests(a_correct: dict[int, np.ndarray], b_correct: dict[int, np.ndarray]) -> SeedTests:
    """McNemar on each seed both models ran with (per-image correctness keyed by seed)."""
    seeds = sorted(set(a_correct) & set(b_correct))
    if not seeds:
        raise ValueError("no seed in common: nothing to pair")
    return SeedTests({seed: mcnemar(a_correct[seed], b_correct[seed]) for seed in seeds})
