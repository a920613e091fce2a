"""The report as a static PNG (matplotlib, Agg: no display needed): the timeline above,
running and pending counts over time below, on one time axis.

A picture has less room than a page: above :data:`MAX_PNG_ROWS` bars, rows are
grouped (:func:`jobfleet.report.rows.timeline`) and the figure says so.
"""

from __future__ import annotations

import os
import textwrap
from typing import Any

from jobfleet.report.extras import require
from jobfleet.report.model import Report, duration_label
from jobfleet.report.rows import STATE_COLOURS, WAITING_OPACITY, time_unit, timeline
from jobfleet.states import JobState

__all__ = ["DPI", "MAX_PNG_ROWS", "WIDTH_IN", "png_height_in", "write_png"]

#: The most timeline rows in the PNG; above, bars are grouped.
MAX_PNG_ROWS = 100
#: The picture's width in inches, and its resolution: 1400 pixels wide.
WIDTH_IN = 14.0
DPI = 100
#: The most row labels written on the timeline's axis.
_MAX_TICKS = 60


def png_height_in(rows: int) -> float:
    """The picture's height (inches) for this many timeline rows."""
    return 1.5 + max(2.0, 0.14 * rows) + 3.5


def _matplotlib() -> tuple[Any, Any]:
    mpl = require("matplotlib")
    mpl.use("Agg", force=True)  # no display: never a window, never a GUI toolkit
    figure = require("matplotlib.figure")
    patches = require("matplotlib.patches")
    return figure, patches


def write_png(
    report: Report, path: str | os.PathLike[str], *, max_rows: int = MAX_PNG_ROWS
) -> None:
    """Draw the timeline and the counts over time into ``path`` (PNG)."""
    figure, patches = _matplotlib()
    tl = timeline(report, max_rows)
    n = len(tl.rows)
    ends = [s[1] for r in tl.rows for s in (r.waiting, r.running) if s is not None]
    unit, size = time_unit(max([*ends, *report.counts.times], default=0.0))
    fig = figure.Figure(figsize=(WIDTH_IN, png_height_in(n)), dpi=DPI, layout="constrained")
    top, bottom = fig.subplots(
        2, 1, sharex=True, gridspec_kw={"height_ratios": [max(2.0, 0.14 * n), 3.0]}
    )
    for kind, alpha in (("waiting", WAITING_OPACITY), ("running", 1.0)):
        spans = [(i, r.state, s) for i, r in enumerate(tl.rows) if (s := getattr(r, kind))]
        if spans:
            top.barh(
                [i for i, _, _ in spans],
                [(s[1] - s[0]) / size for _, _, s in spans],
                left=[s[0] / size for _, _, s in spans],
                height=0.8,
                color=[STATE_COLOURS[state] for _, state, _ in spans],
                alpha=alpha,
                linewidth=0,
            )
    if n <= _MAX_TICKS:
        for i, r in enumerate(tl.rows):
            span = r.running or r.waiting
            if span is not None:
                top.text(span[1] / size, i, f" {r.text}", va="center", fontsize=7)
    step = max(1, -(-n // _MAX_TICKS))
    top.set_yticks(range(0, n, step), [tl.rows[i].label for i in range(0, n, step)], fontsize=7)
    top.set_ylim(n - 0.5, -0.5)
    present = {r.state for r in tl.rows}
    top.legend(
        handles=[
            patches.Patch(color=c, label=s.value) for s, c in STATE_COLOURS.items() if s in present
        ],
        title="final state\n(pale: waiting)",
        loc="upper left",
        bbox_to_anchor=(1.0, 1.0),
        fontsize=8,
    )
    title = f"Timeline: {len(report.bars):,} jobs and elements"
    if tl.note:
        title += "\n" + "\n".join(textwrap.wrap(tl.note, 150))
    top.set_title(title, fontsize=10)
    c = report.counts
    times = [t / size for t in c.times]
    for name, state, values in (
        ("running", JobState.RUNNING, c.running),
        ("pending", JobState.PENDING, c.pending),
    ):
        bottom.step(times, values, where="post", label=name, color=STATE_COLOURS[state])
    bottom.set_ylim(bottom=0)
    bottom.set_ylabel("jobs and elements")
    bottom.set_xlabel(f"{unit} since the first submission")
    counted = "Running and pending over time"
    if c.bucket_s is not None:
        counted += f" (the peak in each {duration_label(c.bucket_s)} bucket)"
    bottom.set_title(counted, fontsize=10)
    bottom.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    if report.notes:
        fig.text(0.01, 0.005, "; ".join(report.notes)[:400], fontsize=7, color="#555")
    fig.savefig(path, format="png")
