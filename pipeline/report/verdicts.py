"""The report's comparisons: two variants, seed by seed, on the same test images, and what to say.

The verdict, "significant" or "within noise", comes from McNemar's exact test on the paired per-image
predictions of each seed (pipeline/report/significance.py), never from the size of the raw difference: a
comparison is significant when p < alpha on more than half of its seeds with the same variant ahead.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

import numpy as np

from pipeline.report.markup import percent, spread_text, table
from pipeline.report.significance import ALPHA, SeedTests, Spread, seed_tests, spread

SIGNIFICANT, WITHIN_NOISE = "significant", "within noise"


@dataclass(frozen=True)
class Comparison:
    """Variant a against variant b: accuracy over the shared seeds and the paired test of each seed."""

    a: str
    b: str
    images: int  # test images per run
    accuracy_a: Spread
    accuracy_b: Spread
    tests: SeedTests
    alpha: float = ALPHA

    @property
    def difference(self) -> float:
        """Mean accuracy of a minus that of b, over the shared seeds."""
        return self.accuracy_a.mean - self.accuracy_b.mean

    @property
    def significant(self) -> bool:
        return self.tests.significant(self.alpha)

    @property
    def word(self) -> str:
        return SIGNIFICANT if self.significant else WITHIN_NOISE

    @property
    def ahead(self) -> str:
        """The variant the significant seeds favour (a when none is significant and a's mean is higher)."""
        hits = [self.tests.tests[s] for s in self.tests.significant_seeds(self.alpha)]
        if hits:
            return self.a if hits[0].b > hits[0].c else self.b
        return self.a if self.difference >= 0 else self.b


def compare(a: str, b: str, correct: dict[str, dict[int, np.ndarray]], alpha: float = ALPHA) -> Comparison:
    """a vs b from per-image correctness (variant -> seed -> booleans), on the seeds both ran."""
    tests = seed_tests(correct[a], correct[b])
    seeds = list(tests.tests)
    return Comparison(
        a,
        b,
        len(correct[a][seeds[0]]),
        spread(correct[a][s].mean() for s in seeds),
        spread(correct[b][s].mean() for s in seeds),
        tests,
        alpha,
    )


def verdict(c: Comparison) -> str:
    """One sentence: the difference, then the test's verdict and why."""
    seeds = len(c.tests.tests)
    hits = c.tests.significant_seeds(c.alpha)
    difference = (
        f"{escape(c.a)} − {escape(c.b)}: <b>{100 * c.difference:+.2f}</b> percentage points "
        f"(mean of {seeds} seed{'s' if seeds > 1 else ''})"
    )
    test = (
        f"McNemar's exact test on the same {c.images:,} images gives p &lt; {c.alpha:g} "
        f"on {len(hits)} of {seeds} seed{'s' if seeds > 1 else ''}"
    )
    if c.significant:
        return f"{difference}. {test}, {escape(c.ahead)} ahead on each: the difference is <b>{SIGNIFICANT}</b>."
    return (
        f"{difference}. {test}: the difference is <b>{WITHIN_NOISE}</b>; the two disagree on too few "
        f"images, too evenly, to tell them apart."
    )


def seed_table(c: Comparison) -> str:
    """Per seed: both accuracies, the discordant images and the p-value."""
    rows = [
        [
            str(seed),
            percent(c.accuracy_a.values[i]),
            percent(c.accuracy_b.values[i]),
            str(t.b),
            str(t.c),
            f"{t.p_value:.3g}" + (" *" if t.significant(c.alpha) else ""),
        ]
        for i, (seed, t) in enumerate(c.tests.tests.items())
    ]
    return table(["seed", c.a, c.b, f"only {c.a} right", f"only {c.b} right", "p (McNemar)"], rows)


def comparison_html(c: Comparison) -> str:
    """The verdict, both spreads, and the per-seed table folded under it."""
    return (
        f'<p class="verdict">{verdict(c)}</p>'
        f"<p><small>{escape(c.a)}: {spread_text(c.accuracy_a)}; {escape(c.b)}: {spread_text(c.accuracy_b)}."
        f"</small></p><details><summary>seed by seed</summary>{seed_table(c)}"
        f"<p><small>* p &lt; {c.alpha:g}. A run's errors are paired with the other's on the same image; "
        f"only images exactly one of them gets right count.</small></p></details>"
    )
