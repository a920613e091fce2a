"""The rows of the timeline: one per bar, or groups of bars when there are too many.

Browsers and eyes give up long before 100,000 bars (Nextflow's timeline does above
10,000 tasks, nextflow#547). Above ``max_rows`` bars, bars of the same final state are
grouped, consecutive in order of submission, ``ceil(bars / max_rows)`` to a row: a row
is waiting from its first submit to its first start and running from its first start
to its last end, coloured by its bars' state (one state per row: a colour never hides
a failure among successes, nor the other way round) and labelled with its median run
time. The timeline's note says so. Pure: the HTML and PNG renderers share it.
"""

from __future__ import annotations

import html
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from jobfleet.report.model import Bar, Report, duration_label
from jobfleet.states import JobState, aggregate

__all__ = [
    "MAX_ROWS",
    "STATE_COLOURS",
    "WAITING_OPACITY",
    "Row",
    "Timeline",
    "time_unit",
    "timeline",
]

#: The most rows the HTML timeline draws; above, bars are grouped.
MAX_ROWS = 2000

#: Each state's colour (colour-blind-safe where it matters: completed and failed differ
#: in lightness too). A bar's waiting span is its colour, pale; its running span, solid.
STATE_COLOURS: dict[JobState, str] = {
    JobState.COMPLETED: "#2ca02c",
    JobState.FAILED: "#d62728",
    JobState.CANCELLED: "#9467bd",
    JobState.TIMEOUT: "#ff7f0e",
    JobState.OUT_OF_MEMORY: "#8c564b",
    JobState.LOST: "#e377c2",
    JobState.RUNNING: "#1f77b4",
    JobState.PENDING: "#bcbd22",
    JobState.UNKNOWN: "#7f7f7f",
}
#: How opaque a waiting span is drawn (its running span: fully).
WAITING_OPACITY = 0.35


@dataclass(frozen=True, slots=True)
class Row:
    """One row of the timeline; times in seconds since the report's ``t0``.

    Attributes:
        label: the bar's label, or ``FIRST..LAST (N)`` for a group.
        state: the final state (a group's worst).
        waiting: the span in the queue, if one is drawn.
        running: the span running, if one is drawn.
        text: the label at the bar's end (its duration).
        hover: what hovering over it shows (HTML-escaped).
    """

    label: str
    state: JobState
    waiting: tuple[float, float] | None
    running: tuple[float, float] | None
    text: str
    hover: str


@dataclass(frozen=True, slots=True)
class Timeline:
    """The rows and, when bars were grouped, how (one sentence for the figure)."""

    rows: list[Row]
    per_row: int
    note: str | None


def _shift(span: tuple[float, float] | None, t0: float) -> tuple[float, float] | None:
    return None if span is None else (span[0] - t0, span[1] - t0)


def _one(bar: Bar, t0: float) -> Row:
    exit_code = "" if bar.exit_code is None else f" (exit {bar.exit_code})"
    waited = bar.waiting
    lines = [
        f"{bar.label} {bar.name}",
        f"{bar.state.value}{exit_code}",
        f"waited {duration_label(waited[1] - waited[0]) if waited else '?'}, ran {bar.text}",
    ]
    if bar.reason:
        lines.append(bar.reason[:200])
    if not bar.submit_recorded:
        lines.append("submit time not recorded: jobfleet's record time shown")
    hover = "<br>".join(html.escape(line, quote=False) for line in lines)
    return Row(bar.label, bar.state, _shift(waited, t0), _shift(bar.running, t0), bar.text, hover)


def _group(bars: Sequence[Bar], t0: float) -> Row:
    waits = [w for b in bars if (w := b.waiting) is not None]
    runs = [r for b in bars if (r := b.running) is not None]
    waiting: tuple[float, float] | None = None
    running: tuple[float, float] | None = None
    if runs:
        first_start = min(r[0] for r in runs)
        running = (first_start - t0, max(r[1] for r in runs) - t0)
        if waits:
            waiting = (min(w[0] for w in waits) - t0, first_start - t0)
    elif waits:
        waiting = (min(w[0] for w in waits) - t0, max(w[1] for w in waits) - t0)
    states: dict[JobState, int] = {}
    for b in bars:
        states[b.state] = states.get(b.state, 0) + 1
    done = [s for b in bars if (s := b.run_s) is not None]
    text = f"median {duration_label(statistics.median(done))}" if done else "no run times"
    tally = ", ".join(f"{n} {s.value}" for s, n in sorted(states.items(), key=lambda kv: -kv[1]))
    label = f"{bars[0].label}..{bars[-1].label} ({len(bars)})"
    hover = "<br>".join(html.escape(line, quote=False) for line in (label, tally, text))
    # timeline() groups bars of one state; aggregate() says what a mixed group would be.
    return Row(label, aggregate(states), waiting, running, text, hover)


def timeline(report: Report, max_rows: int = MAX_ROWS) -> Timeline:
    """The rows to draw: one per bar up to ``max_rows`` bars, else groups of bars of
    one final state each (so a row's colour is true of every bar in it), in order of
    submission: at most ``max_rows`` rows plus one per state."""
    bars = report.bars
    if len(bars) <= max_rows:
        return Timeline([_one(b, report.t0) for b in bars], 1, None)
    per_row = math.ceil(len(bars) / max_rows)
    by_state: dict[JobState, list[Bar]] = {}
    for b in bars:
        by_state.setdefault(b.state, []).append(b)
    groups = [
        same[i : i + per_row] for same in by_state.values() for i in range(0, len(same), per_row)
    ]
    groups.sort(key=lambda g: g[0].submitted)  # stable: ties keep their state's order
    rows = [_group(g, report.t0) for g in groups]
    note = (
        f"{len(bars):,} bars are too many to draw one by one: each of the {len(rows):,} rows "
        f"groups up to {per_row:,} of one final state, in order of submission, waiting from "
        "its first submit to its first start, running from its first start to its last "
        "end, labelled with its median run time"
    )
    return Timeline(rows, per_row, note)


#: Units of the time axes: (name, seconds), the largest that keeps numbers readable.
_UNITS = (("days", 86400.0), ("hours", 3600.0), ("minutes", 60.0), ("seconds", 1.0))


def time_unit(span_s: float) -> tuple[str, float]:
    """The unit to show ``span_s`` seconds in: seconds below 2 minutes, minutes below
    2 hours, hours below 2 days, days beyond.

    >>> time_unit(30), time_unit(600), time_unit(86400)
    (('seconds', 1.0), ('minutes', 60.0), ('hours', 3600.0))
    """
    for name, size in _UNITS:
        if span_s >= 2 * size:
            return name, size
    return "seconds", 1.0
