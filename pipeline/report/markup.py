"""The report's HTML building blocks: percentages, spreads, tables and figures."""

from __future__ import annotations

from html import escape

from pipeline.report.significance import Spread


def percent(value: float) -> str:
    return f"{100 * value:.2f}%"


def spread_text(accuracy: Spread) -> str:
    """'98.45% ± 0.05 (98.38-98.53%, 5 seeds)': mean, standard deviation and range, in percent."""
    seeds = len(accuracy.values)
    if seeds == 1:
        return f"{percent(accuracy.mean)} (1 seed)"
    return (
        f"{percent(accuracy.mean)} ± {100 * accuracy.std:.2f} "
        f"({100 * accuracy.low:.2f}–{percent(accuracy.high)}, {seeds} seeds)"
    )


def figure(name: str, caption: str) -> str:
    return (
        f'<figure><img src="{escape(name)}" alt="{escape(caption)}"><figcaption>{escape(caption)}</figcaption></figure>'
    )


def table(header: list[str], rows: list[list[str]]) -> str:
    """A table; header cells are text (escaped), row cells are HTML."""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
