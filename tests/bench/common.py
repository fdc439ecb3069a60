"""What every bench returns, and how run_all.py prints it.

A bench module is tests/bench/bench_*.py with `measure(quick: bool) -> list[Figure]`;
run_all.py finds it by name, so adding a bench means adding a file.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    bar: str        # the quality bar's id and what is measured, e.g. "P1 p99"
    measured: str   # the figure, with its unit
    limit: str      # the bar, with its unit
    ok: bool
    note: str = ""  # how it was measured (runs, sample size)
    skipped: bool = False  # could not be measured here (the note says why); not a failure


def percentile(values, fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def median(values) -> float:
    return statistics.median(values)


def table(figures: list[Figure]) -> str:
    rows = [("bar", "measured", "limit", "result", "how")]
    rows += [(f.bar, f.measured, f.limit, "skip" if f.skipped else "pass" if f.ok else "FAIL", f.note)
             for f in figures]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = []
    for n, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:4])) + "  " + row[4])
        if n == 0:
            lines.append("  ".join("-" * w for w in widths) + "  ---")
    return "\n".join(lines)
