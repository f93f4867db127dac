"""The report's own charts, comparing runs: accuracy per arm, metric per epoch, accuracy per learning
rate. The pictures of one run are pipeline/model/pictures.py's."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.model.pictures import save, subplots


def accuracy_points(rows: list[tuple[str, list[float]]], references: list[tuple[str, float]], path: str | Path) -> Path:
    """Test accuracy per arm, best mean at the top: a dot per seed, a tick at the mean and a
    line over mean +- one standard deviation; published figures (references) as hollow diamonds."""
    entries = [(label, 100 * np.asarray(values, np.float64), False) for label, values in rows]
    entries += [(label, np.array([100 * accuracy]), True) for label, accuracy in references]
    entries.sort(key=lambda entry: entry[1].mean())
    fig, ax = subplots(figsize=(7.5, 0.35 * len(entries) + 1.2), dpi=100)
    for i, (_label, values, reference) in enumerate(entries):
        mean = values.mean()
        if reference:
            ax.plot(mean, i, marker="D", markerfacecolor="white", color="tab:gray", markersize=6)
        else:
            std = values.std(ddof=1) if len(values) > 1 else 0.0
            ax.plot([mean - std, mean + std], [i, i], color="tab:blue", linewidth=1)
            ax.plot(mean, i, marker="|", color="tab:blue", markersize=14, markeredgewidth=2)
            ax.plot(values, np.full(len(values), i), "o", color="tab:blue", alpha=0.6, markersize=4)
        ax.text(values.max() + 0.05, i, f"{mean:.2f}%", va="center", fontsize=8)
    ax.set_yticks(range(len(entries)), [label for label, _, _ in entries], fontsize=8)
    ax.set_xlim(min(values.min() for _, values, _ in entries) - 0.5, 100.4)
    ax.set_xlabel("test accuracy (%): dot a seed, | the mean, line ±1 std, diamond fastbook")
    fig.tight_layout()
    return save(fig, path)


def epoch_curves(series: dict[str, list[float]], ylabel: str, path: str | Path) -> Path:
    """One line per run: a metric after each epoch."""
    fig, ax = subplots(figsize=(7.0, 4.0), dpi=100)
    for label, values in series.items():
        ax.plot(range(len(values)), values, marker="o" if len(values) == 1 else None, markersize=4, label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save(fig, path)


def learning_rate_chart(rates: list[float], accuracies: list[list[float]], path: str | Path) -> Path:
    """Test accuracy against the learning rate (log scale): a dot per seed, a line through the means."""
    order = np.argsort(rates)
    rates = np.asarray(rates, np.float64)[order]
    accuracies = [100 * np.asarray(accuracies[i], np.float64) for i in order]
    fig, ax = subplots(figsize=(4.5, 3.0), dpi=100)
    for rate, values in zip(rates, accuracies):
        ax.plot(np.full(len(values), rate), values, "o", color="tab:blue", alpha=0.5, markersize=4)
    ax.plot(rates, [values.mean() for values in accuracies], color="tab:blue")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("dots: one seed each; line: the mean", fontsize=9)
    fig.tight_layout()
    return save(fig, path)
