"""What the benchmarks measured, for scripts: each figure with the baseline it is compared with and the ratio, as
JSON; and a latency histogram of round trips as an SVG picture (written here, no plotting dependency).

Each benchmark collects its figures in a :class:`Results` and, given ``--json FILE``, writes them there;
``./scripts/bench --json FILE`` (benchmarks/run.py) runs them all and merges their files into one:

    {"machine": {...}, "runs": [{"benchmark": ..., "config": {...}, "seconds": ...}],
     "figures": [{"benchmark", "name", "value", "unit", "better": "lower"|"higher",
                  "baseline": {"name", "value"} | null, "ratio": value / baseline | null}]}

A baseline is also a figure of its own (with ``"baseline": null``). ``better`` says which way is good, so a script
can check "ratio <= 3" for a latency and "ratio >= 0.5" for a rate alike.

``./scripts/bench --runs N`` (N > 1) runs the selection N times and merges the runs with :func:`merge_runs`: each
figure's ``value`` is the median of its N values and its ``ratio`` the median of the N ratios, each taken against
the baseline measured in the same run (its ``baseline.value`` the baseline's median); ``"runs": {"values": [...],
"ratios": [...]}`` keeps every run's, so the spread is there too.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any


@dataclass
class Results:
    benchmark: str
    config: dict[str, Any]
    figures: list[dict[str, Any]] = field(default_factory=list)

    def add(
        self, name: str, value: float, unit: str, *, better: str, baseline: tuple[str, float] | None = None
    ) -> float:
        """Record one figure (``baseline``: the name and value of the figure it is compared with); returns
        ``value``, so a benchmark can record as it prints."""
        if better not in ("lower", "higher"):
            raise ValueError(f"better must be 'lower' or 'higher', not {better!r}")
        self.figures.append(
            {
                "benchmark": self.benchmark,
                "name": name,
                "value": value,
                "unit": unit,
                "better": better,
                "baseline": {"name": baseline[0], "value": baseline[1]} if baseline is not None else None,
                "ratio": value / baseline[1] if baseline is not None and baseline[1] else None,
            }
        )
        return value

    def to_dict(self) -> dict[str, Any]:
        return {"benchmark": self.benchmark, "config": self.config, "figures": self.figures}

    def write(self, path: str | Path | None) -> None:
        if path is not None:
            Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")


# ---------------------------------------------------------------------------------------------------------
# latency histogram

BINS = 48
PANEL_W, PANEL_H, LEFT, TOP, GAP = 720, 150, 60, 40, 70


@dataclass(frozen=True)
class Histogram:
    """``counts[i]`` samples in ``[edges[i], edges[i + 1])`` microseconds (the last bin includes its top edge, the
    slowest sample), bins of equal width on a log scale: round trips have a long tail (a preempted process costs
    milliseconds where a round trip costs microseconds), and a linear axis would squash the bulk into one bar."""

    title: str
    samples: int
    p50: float
    p99: float
    edges: tuple[float, ...]
    counts: tuple[int, ...]


def histogram(title: str, samples_us: Sequence[float], bins: int = BINS) -> Histogram:
    """Every sample, binned from the fastest to the slowest on a log scale."""
    s = sorted(samples_us)
    if not s or s[0] <= 0:
        raise ValueError(f"{title}: want positive samples, got {len(s)} (smallest {s[0] if s else None})")
    lo, hi = math.log(s[0]), math.log(s[-1])
    if hi - lo < 1e-9:
        hi = lo + math.log(1.01)
    step = (hi - lo) / bins
    counts = [0] * bins
    for v in s:
        counts[min(bins - 1, int((math.log(v) - lo) / step))] += 1
    edges = tuple(math.exp(lo + step * i) for i in range(bins + 1))
    p99 = s[min(len(s) - 1, int(len(s) * 0.99))]
    return Histogram(title, len(s), statistics.median(s), p99, edges, tuple(counts))


def histogram_svg(panels: Sequence[Histogram], title: str) -> str:
    """The histograms one under another, each with its own log axis (microseconds) and its p50 and p99 marked;
    every bar carries its bin and count as data attributes, so a test (or a script) can read them back."""
    width = LEFT + PANEL_W + 40
    height = TOP + len(panels) * (PANEL_H + GAP)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        'font-family="DejaVu Sans Mono, monospace" font-size="11">',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
        f'<text x="8" y="22" font-size="14" font-weight="bold">{escape(title)}</text>',
    ]
    for n, h in enumerate(panels):
        y0 = TOP + n * (PANEL_H + GAP) + 20  # top of the plot area
        base = y0 + PANEL_H
        lo, hi = math.log(h.edges[0]), math.log(h.edges[-1])
        peak = max(h.counts)

        def x_of(us: float, lo: float = lo, hi: float = hi) -> float:
            return LEFT + PANEL_W * (math.log(us) - lo) / (hi - lo)

        out.append(
            f'<g class="histogram" data-title="{escape(h.title)}" data-samples="{h.samples}" '
            f'data-p50="{h.p50:.3f}" data-p99="{h.p99:.3f}">'
        )
        out.append(
            f'<text x="{LEFT}" y="{y0 - 8}" font-weight="bold">{escape(h.title)}: {h.samples} round trips, '
            f"p50 {h.p50:.2f} us, p99 {h.p99:.2f} us</text>"
        )
        out.append(f'<line x1="{LEFT}" y1="{base}" x2="{LEFT + PANEL_W}" y2="{base}" stroke="#444444"/>')
        out.append(f'<line x1="{LEFT}" y1="{y0}" x2="{LEFT}" y2="{base}" stroke="#444444"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y0 + 4}" text-anchor="end">{peak}</text>')
        out.append(f'<text x="{LEFT - 6}" y="{base}" text-anchor="end">0</text>')
        bar_w = PANEL_W / len(h.counts)
        for i, count in enumerate(h.counts):
            bar_h = PANEL_H * count / peak
            out.append(
                f'<rect class="bar" data-from="{h.edges[i]:.3f}" data-to="{h.edges[i + 1]:.3f}" data-count="{count}" '
                f'x="{LEFT + i * bar_w:.1f}" y="{base - bar_h:.1f}" width="{max(bar_w - 1, 0.5):.1f}" '
                f'height="{bar_h:.1f}" fill="#5e81ac"/>'
            )
        for us in _ticks(h.edges[0], h.edges[-1]):
            x = x_of(us)
            out.append(f'<line x1="{x:.1f}" y1="{base}" x2="{x:.1f}" y2="{base + 4}" stroke="#444444"/>')
            out.append(f'<text x="{x:.1f}" y="{base + 16}" text-anchor="middle">{us:g}</text>')
        out.append(f'<text x="{LEFT + PANEL_W + 6}" y="{base + 16}">us</text>')
        for label, us, colour, dy in (("p50", h.p50, "#2e7d32", 10), ("p99", h.p99, "#c62828", 22)):
            x = x_of(us)
            out.append(
                f'<line class="{label}" x1="{x:.1f}" y1="{y0}" x2="{x:.1f}" y2="{base}" stroke="{colour}" '
                'stroke-dasharray="4 3"/>'
            )
            out.append(f'<text x="{x + 3:.1f}" y="{y0 + dy}" fill="{colour}">{label}</text>')
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _ticks(lo: float, hi: float) -> list[float]:
    """1, 2, 5 times the powers of ten between ``lo`` and ``hi`` (only the powers when that is too many)."""
    ticks = []
    exp = math.floor(math.log10(lo))
    while 10**exp <= hi:
        ticks += [m * 10.0**exp for m in (1, 2, 5) if lo <= m * 10.0**exp <= hi]
        exp += 1
    if len(ticks) > 10:
        ticks = [t for t in ticks if math.isclose(t, 10 ** round(math.log10(t)))]
    return ticks or [lo, hi]


def merge_runs(runs: Sequence[Sequence[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The figures of several runs of the same benchmarks as one list, in the first run's order: medians, and every
    run's value and ratio (a ratio is only ever taken within one run). A figure missing from a run is a mistake."""
    if not runs:
        return []
    keyed = [{(f["benchmark"], f["name"]): f for f in run} for run in runs]
    merged = []
    for figure in runs[0]:
        key = (figure["benchmark"], figure["name"])
        missing = [i + 1 for i, run in enumerate(keyed) if key not in run]
        if missing:
            raise ValueError(f"{key[0]}: {key[1]!r} is missing from run(s) {missing}")
        same = [run[key] for run in keyed]
        values = [f["value"] for f in same]
        ratios = [f["ratio"] for f in same]
        out = dict(figure, value=statistics.median(values), runs={"values": values, "ratios": ratios})
        if figure["baseline"] is not None:
            out["baseline"] = {
                "name": figure["baseline"]["name"],
                "value": statistics.median(f["baseline"]["value"] for f in same),
            }
            out["ratio"] = statistics.median(r for r in ratios if r is not None) if any(ratios) else None
        merged.append(out)
    return merged
