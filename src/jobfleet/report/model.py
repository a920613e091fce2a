"""What ``jobfleet report`` draws, from job records alone: pure values, no plotting.

One bar per single job or array element: waiting in the queue (submitted -> started),
then running (started -> ended), its final state, a duration label. From the bars:
running and pending counts over time, a histogram of run durations, a summary (counts
per state, and each bar that did not complete with its state, exit code and reason).

Times come from :class:`~jobfleet.usage.Usage` (each backend fills what its accounting
tells). What is missing stays missing: no start time is ever made up. A bar without a
submit time uses its job's ``created_at`` (when jobfleet recorded it, just before
submitting) and the report says how many did; a bar without a start is drawn as
waiting only; an ended bar without an end time has no span to draw after its start,
and the report says so (:attr:`Report.notes`). Bars still active (pending, running,
unknown) are drawn up to the report's time (:attr:`Report.as_of`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from jobfleet.states import ACTIVE, TERMINAL, JobRecord, JobState
from jobfleet.units import short_duration

__all__ = [
    "Bar",
    "Counts",
    "Histogram",
    "Report",
    "Summary",
    "build_report",
    "counts_over_time",
    "duration_label",
    "histogram",
    "make_bar",
]

#: Above this many counting events, counts over time are given as the peak in each of
#: :data:`COUNT_BUCKETS` buckets (a step line of 400,000 points helps nobody).
MAX_COUNT_POINTS = 4000
COUNT_BUCKETS = 1000
#: The most histogram bins.
MAX_BINS = 40


def duration_label(seconds: float | None) -> str:
    """A short duration: ``0.4s``, ``45s``, ``3m05s``, ``2h03m``, ``4d02h`` (``?``: unknown).

    >>> duration_label(0.42), duration_label(185), duration_label(7380), duration_label(None)
    ('0.4s', '3m05s', '2h03m', '?')
    """
    if seconds is None:
        return "?"
    if seconds < 10:
        return f"{max(0.0, seconds):.1f}s"
    return short_duration(seconds)


class Bar(NamedTuple):
    """One single job or array element on the timeline (made by :func:`make_bar`).

    A named tuple, not a frozen dataclass: a study has up to 100,000 of them, and a
    tuple is made several times faster.

    Attributes:
        label: ``ID`` or ``ID[INDEX]``.
        job_id: the jobfleet id.
        element: the array index (None: a single job).
        name: the job's name.
        state: its state as last recorded.
        exit_code: its exit code, if known.
        reason: why it pends or how it ended, if known.
        submitted: when it was submitted (Unix time), or its job's ``created_at``.
        submit_recorded: False when ``submitted`` is the job's ``created_at``.
        started: when it started, if recorded.
        ended: when it ended, if recorded.
        waiting: the span in the queue (submitted -> started, or -> ended for one that
            never started, or -> the report's time while active); None when its end
            is not known.
        running: the span running (started -> ended, or -> the report's time while
            running); None when it never started or its end is not known.
        run_s: how long it ran, when both its start and its end were recorded.
        as_of: the report's time.
    """

    label: str
    job_id: str
    element: int | None
    name: str
    state: JobState
    exit_code: int | None
    reason: str | None
    submitted: float
    submit_recorded: bool
    started: float | None
    ended: float | None
    waiting: tuple[float, float] | None
    running: tuple[float, float] | None
    run_s: float | None
    as_of: float

    @property
    def active(self) -> bool:
        """Still pending, running or unknown (its spans end at the report's time)."""
        return self.state in ACTIVE

    @property
    def text(self) -> str:
        """The label drawn at the bar's end: its duration, or why there is none."""
        if self.run_s is not None:
            return duration_label(self.run_s)
        if self.state is JobState.RUNNING and self.started is not None:
            return f"running {duration_label(self.as_of - self.started)}"
        if self.state in ACTIVE:
            return self.state.value
        return "not started" if self.started is None else "end not recorded"


def make_bar(
    label: str,
    job_id: str,
    element: int | None,
    name: str,
    state: JobState,
    exit_code: int | None,
    reason: str | None,
    submitted: float | None,
    created_at: float,
    started: float | None,
    ended: float | None,
    as_of: float,
) -> Bar:
    """A bar, its spans worked out: spans of an active bar end at ``as_of``; a missing
    submit time is ``created_at`` (the bar says so); nothing else is made up."""
    submit = created_at if submitted is None else submitted
    active = state in ACTIVE
    wait_end = started if started is not None else ended
    if wait_end is None and active:
        wait_end = as_of
    # A clock that went backwards (end before start) draws an empty span, not a negative one.
    waiting = None if wait_end is None else (submit, wait_end if wait_end > submit else submit)
    running = None
    run_s = None
    if started is not None:
        run_end = ended
        if ended is not None:
            run_s = ended - started if ended > started else 0.0
        elif state is JobState.RUNNING:
            run_end = as_of
        if run_end is not None:
            running = (started, run_end if run_end > started else started)
    return Bar(
        label,
        job_id,
        element,
        name,
        state,
        exit_code,
        reason,
        submit,
        submitted is not None,
        started,
        ended,
        waiting,
        running,
        run_s,
        as_of,
    )


@dataclass(frozen=True, slots=True)
class Counts:
    """How many bars were running and pending over time (seconds since :attr:`Report.t0`).

    Attributes:
        times: where the values change (or each bucket's start when bucketed).
        running, pending: the counts from each time on (bucketed: each bucket's peak).
        bucket_s: None when exact; else the width of the buckets the peaks are of.
    """

    times: list[float]
    running: list[int]
    pending: list[int]
    bucket_s: float | None = None


@dataclass(frozen=True, slots=True)
class Histogram:
    """Run durations (seconds) in equal bins, counted per final state.

    Attributes:
        edges: ``len(bins) + 1`` bin edges; empty when no bar has a duration.
        counts: per state, the number of bars in each bin.
    """

    edges: list[float]
    counts: dict[JobState, list[int]]

    @property
    def total(self) -> int:
        return sum(sum(c) for c in self.counts.values())


@dataclass(frozen=True, slots=True)
class Summary:
    """Counts per state, and each bar that did not complete (in timeline order)."""

    jobs: int
    per_state: dict[JobState, int]
    not_completed: list[Bar]


@dataclass(frozen=True, slots=True)
class Report:
    """Everything the pictures show.

    Attributes:
        bars: every single job and array element, by submit time.
        t0: the earliest submit time: the origin of every time axis.
        as_of: when the report was made (where active spans end).
        counts: running and pending counts over time.
        histogram: run durations.
        summary: counts per state and what did not complete.
        notes: what was not known, one sentence each (shown with the pictures).
    """

    bars: list[Bar]
    t0: float
    as_of: float
    counts: Counts
    histogram: Histogram
    summary: Summary
    notes: list[str] = field(default_factory=list)


def _bars(records: Iterable[JobRecord], as_of: float) -> list[Bar]:
    keyed: list[tuple[float, int, int, Bar]] = []
    for r in records:
        number = int(r.id) if r.id.isdigit() else 0
        if not r.elements:
            u = r.usage
            bar = make_bar(
                r.id, r.id, None, r.name, r.state, r.exit_code, r.reason,
                u.submitted_at, r.created_at, u.started_at, u.ended_at, as_of,
            )  # fmt: skip
            keyed.append((bar.submitted, number, 0, bar))
            continue
        for index, e in r.elements.items():
            # An element's own submit time, else the array's (one submission), else
            # the record's creation; never the array's start or end for an element.
            u = e.usage
            submitted = u.submitted_at if u.submitted_at is not None else r.usage.submitted_at
            bar = make_bar(
                f"{r.id}[{index}]", r.id, index, r.name, e.state, e.exit_code, e.reason,
                submitted, r.created_at, u.started_at, u.ended_at, as_of,
            )  # fmt: skip
            keyed.append((bar.submitted, number, index, bar))
    keyed.sort(key=lambda k: k[:3])
    return [k[3] for k in keyed]


def counts_over_time(bars: Sequence[Bar], t0: float) -> Counts:
    """Running and pending counts: exact steps, or bucket peaks when there are many."""
    events: list[tuple[float, int, int]] = []  # (time, d_running, d_pending)
    for b in bars:
        w, r = b.waiting, b.running
        if w is not None:
            events += [(w[0] - t0, 0, 1), (w[1] - t0, 0, -1)]
        if r is not None:
            events += [(r[0] - t0, 1, 0), (r[1] - t0, -1, 0)]
    if not events:
        return Counts([], [], [])
    events.sort()
    running = pending = 0
    if len(events) <= MAX_COUNT_POINTS:
        times: list[float] = []
        run_at: list[int] = []
        pend_at: list[int] = []
        for t, dr, dp in events:
            running += dr
            pending += dp
            if times and times[-1] == t:
                run_at[-1], pend_at[-1] = running, pending
            else:
                times.append(t)
                run_at.append(running)
                pend_at.append(pending)
        return Counts(times, run_at, pend_at)
    first, last = events[0][0], events[-1][0]
    width = (last - first) / COUNT_BUCKETS or 1.0
    run_peak = [0] * COUNT_BUCKETS
    pend_peak = [0] * COUNT_BUCKETS
    bucket = 0
    top = COUNT_BUCKETS - 1
    for t, dr, dp in events:
        here = int((t - first) / width)
        if here > top:
            here = top
        while bucket < here:  # the counts carried into each later bucket count there
            bucket += 1
            run_peak[bucket], pend_peak[bucket] = running, pending
        running += dr
        pending += dp
        if running > run_peak[here]:
            run_peak[here] = running
        if pending > pend_peak[here]:
            pend_peak[here] = pending
    times = [first + i * width for i in range(COUNT_BUCKETS)]
    return Counts(times, run_peak, pend_peak, bucket_s=width)


def histogram(bars: Sequence[Bar]) -> Histogram:
    """Run durations in at most :data:`MAX_BINS` equal bins (about sqrt(n) of them)."""
    done = [(b.run_s, b.state) for b in bars if b.run_s is not None]
    if not done:
        return Histogram([], {})
    runs = [d for d, _ in done]
    low, high = min(runs), max(runs)
    bins = max(1, min(MAX_BINS, math.ceil(math.sqrt(len(done)))))
    if high <= low:
        bins, high = 1, low + 1.0
    width = (high - low) / bins
    counts: dict[JobState, list[int]] = {}
    for d, state in done:
        i = min(bins - 1, int((d - low) / width))
        counts.setdefault(state, [0] * bins)[i] += 1
    return Histogram([low + i * width for i in range(bins + 1)], counts)


def _summary(records: Sequence[JobRecord], bars: Sequence[Bar]) -> Summary:
    per_state: dict[JobState, int] = {}
    for b in bars:
        per_state[b.state] = per_state.get(b.state, 0) + 1
    order = list(JobState)
    return Summary(
        len(records),
        dict(sorted(per_state.items(), key=lambda kv: order.index(kv[0]))),
        [b for b in bars if b.state is not JobState.COMPLETED],
    )


def _notes(bars: Sequence[Bar]) -> list[str]:
    def some(n: int, what: str) -> list[str]:
        return [f"{n} of {len(bars)} {what}"] if n else []

    no_submit = no_times = no_start = no_end = 0
    for b in bars:
        no_submit += not b.submit_recorded
        if b.state in TERMINAL and (b.started is None or b.ended is None):
            if b.started is not None:
                no_end += 1
            elif b.ended is not None:
                no_start += 1
            else:
                no_times += 1
    return [
        *some(
            no_submit,
            "had no submit time recorded: the time jobfleet recorded the job is used",
        ),
        *some(no_start, "ended without a recorded start (drawn as waiting only)"),
        *some(no_end, "ended without a recorded end time (no running span drawn)"),
        *some(no_times, "ended with no times recorded (nothing drawn)"),
    ]


def build_report(records: Sequence[JobRecord], *, as_of: float | None = None) -> Report:
    """The report of these jobs (their elements for arrays) as recorded.

    Args:
        records: the jobs, e.g. from :meth:`jobfleet.Fleet.status_report`.
        as_of: the report's time (default now): spans of active bars end there.
    """
    now = time.time() if as_of is None else as_of
    bars = _bars(records, now)
    t0 = min((b.submitted for b in bars), default=now)
    return Report(
        bars,
        t0,
        now,
        counts_over_time(bars, t0),
        histogram(bars),
        _summary(records, bars),
        _notes(bars),
    )
