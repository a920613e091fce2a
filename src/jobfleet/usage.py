"""What a job used: its times, hosts, peak memory and CPU time, where known.

Pure values and helpers, no I/O: backends build a :class:`Usage` from their
accounting (SLURM ``sacct``, Grid Engine ``qacct``, the local agent's ``wait4``),
the registry stores it, ``--json`` prints it (:meth:`Usage.to_dict`). Every field
may be None: unknown, because the backend cannot tell or has not told yet. A newer
report never erases a known value with None (:meth:`Usage.merged`).
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
from dataclasses import dataclass, fields, replace

__all__ = [
    "NO_USAGE",
    "USAGE_KEYS",
    "Usage",
    "expand_hostlist",
    "iso_utc",
    "new_usage",
    "parse_local_time",
]

#: The keys every job (and array element) has in ``--json``, in this order.
USAGE_KEYS = (
    "submitted_at",
    "started_at",
    "ended_at",
    "hosts",
    "max_memory_bytes",
    "cpu_time_s",
    "wall_time_s",
)


@dataclass(frozen=True, slots=True)
class Usage:
    """What a job (or one array element) used, as far as its backend knows.

    Attributes:
        submitted_at: when the scheduler accepted it (Unix time).
        started_at: when it started running (Unix time).
        ended_at: when it ended (Unix time).
        hosts: the hosts it ran on, in the scheduler's order (expanded: ``node[01-02]``
            is ``("node01", "node02")``).
        max_memory_bytes: its peak memory: SLURM's MaxRSS (largest over its steps),
            Grid Engine's maxvmem (virtual memory), the local rusage's ru_maxrss.
        cpu_time_s: user plus system CPU time.
        wall_time_s: how long it ran.
    """

    submitted_at: float | None = None
    started_at: float | None = None
    ended_at: float | None = None
    hosts: tuple[str, ...] | None = None
    max_memory_bytes: int | None = None
    cpu_time_s: float | None = None
    wall_time_s: float | None = None

    @property
    def empty(self) -> bool:
        """True when nothing is known."""
        return (
            self.submitted_at is None
            and self.started_at is None
            and self.ended_at is None
            and self.hosts is None
            and self.max_memory_bytes is None
            and self.cpu_time_s is None
            and self.wall_time_s is None
        )

    def merged(self, newer: Usage | None) -> Usage:
        """This usage updated by ``newer``: its known values win, its None keeps ours.

        >>> Usage(max_memory_bytes=5, cpu_time_s=1.0).merged(Usage(cpu_time_s=2.0))
        Usage(submitted_at=None, started_at=None, ended_at=None, hosts=None, max_memory_bytes=5, cpu_time_s=2.0, wall_time_s=None)
        """  # noqa: E501 - a doctest's output is one line
        if newer is None or newer == self:
            return self
        known = {f.name: v for f in fields(newer) if (v := getattr(newer, f.name)) is not None}
        return replace(self, **known) if known else self

    def to_dict(self) -> dict[str, object]:
        """The seven ``--json`` keys: times as ISO 8601 UTC, None where unknown."""
        return {
            "submitted_at": iso_utc(self.submitted_at),
            "started_at": iso_utc(self.started_at),
            "ended_at": iso_utc(self.ended_at),
            "hosts": list(self.hosts) if self.hosts is not None else None,
            "max_memory_bytes": self.max_memory_bytes,
            "cpu_time_s": self.cpu_time_s,
            "wall_time_s": self.wall_time_s,
        }


#: No usage known: what records without any carry.
NO_USAGE = Usage()

# Usage's slots, set directly: the frozen dataclass's __init__ goes through
# object.__setattr__ field by field, twice the cost (thousands of jobs end in one poll).
_new = object.__new__
_SET_SUBMITTED, _SET_STARTED, _SET_ENDED, _SET_HOSTS, _SET_MEMORY, _SET_CPU, _SET_WALL = (
    getattr(Usage, name).__set__ for name in USAGE_KEYS
)


def new_usage(
    submitted_at: float | None,
    started_at: float | None,
    ended_at: float | None,
    hosts: tuple[str, ...] | None,
    max_memory_bytes: int | None,
    cpu_time_s: float | None,
    wall_time_s: float | None,
) -> Usage:
    """``Usage(...)`` by position (in USAGE_KEYS' order), built at half the cost: for
    parsers that make thousands per poll (a test holds it equal to the constructor).

    >>> new_usage(1.0, 2.0, 3.0, ("vm",), 5, 0.5, 1.0) == Usage(1.0, 2.0, 3.0, ("vm",), 5, 0.5, 1.0)
    True
    """
    usage: Usage = _new(Usage)
    _SET_SUBMITTED(usage, submitted_at)
    _SET_STARTED(usage, started_at)
    _SET_ENDED(usage, ended_at)
    _SET_HOSTS(usage, hosts)
    _SET_MEMORY(usage, max_memory_bytes)
    _SET_CPU(usage, cpu_time_s)
    _SET_WALL(usage, wall_time_s)
    return usage


def iso_utc(when: float | None) -> str | None:
    """A Unix time as ISO 8601 UTC with a trailing Z (whole seconds kept as such).

    >>> iso_utc(0), iso_utc(1.5), iso_utc(None)
    ('1970-01-01T00:00:00Z', '1970-01-01T00:00:01.500000Z', None)
    """
    if when is None:
        return None
    # datetime.fromtimestamp's own rounding (to the microsecond, half to even), with the
    # whole second's text cached: the times of an array's elements come in runs of a
    # second, and 300,000 datetimes were most of ``status ID --json`` on a 100,000-
    # element array (tests/unit/test_usage.py holds it to datetime's output).
    fraction, whole = math.modf(when)
    micro = round(fraction * 1e6)
    second = int(whole)
    if micro >= 1_000_000:
        second, micro = second + 1, micro - 1_000_000
    elif micro < 0:
        second, micro = second - 1, micro + 1_000_000
    text = _second_text(second)
    return f"{text}.{micro:06d}Z" if micro else text + "Z"


@functools.lru_cache(maxsize=4096)
def _second_text(second: int) -> str:
    return dt.datetime.fromtimestamp(second, dt.timezone.utc).replace(tzinfo=None).isoformat()


@functools.lru_cache(maxsize=4096)
def parse_local_time(text: str) -> float | None:
    """A scheduler's ``2026-12-06T12:10:12`` (its local time, as sacct prints it) as
    Unix time; None for ``Unknown``, ``None``, empty or anything unreadable."""
    if len(text) < 19 or not text[0].isdigit():
        return None
    try:
        return dt.datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


_BRACKETS = re.compile(r"^([^\[]*)\[([^\]]*)\](.*)$")


@functools.lru_cache(maxsize=1024)
def expand_hostlist(text: str) -> tuple[str, ...]:
    """Host names from a SLURM node list (``node[01-03,07],gpu1``); empty for
    ``None assigned``, ``(null)`` or an empty list.

    Zero padding is kept (``n[08-10]`` is ``n08 n09 n10``). Ranges in several
    brackets of one name (``r[1-2]n[1-2]``) expand in order, the last fastest.

    >>> expand_hostlist("node[01-03,07],gpu1")
    ('node01', 'node02', 'node03', 'node07', 'gpu1')
    >>> expand_hostlist("vm"), expand_hostlist("None assigned"), expand_hostlist("")
    (('vm',), (), ())
    """
    text = text.strip()
    if not text or text.startswith(("None", "(null)")):
        return ()
    hosts: list[str] = []
    for item in _split_top(text):
        hosts.extend(_expand_one(item))
    return tuple(hosts)


def _split_top(text: str) -> list[str]:
    """Split at the commas outside brackets."""
    items, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        elif char == "," and depth == 0:
            items.append(text[start:i])
            start = i + 1
    items.append(text[start:])
    return [item for item in items if item]


def _expand_one(name: str) -> list[str]:
    match = _BRACKETS.match(name)
    if match is None:
        return [name]
    prefix, ranges, rest = match.groups()
    out: list[str] = []
    for part in ranges.split(","):
        first, sep, last = part.partition("-")
        if not sep:
            numbers = [first]
        elif first.isdigit() and last.isdigit():
            width = len(first)
            numbers = [str(n).zfill(width) for n in range(int(first), int(last) + 1)]
        else:
            numbers = [part]
        for number in numbers:
            out.extend(prefix + number + tail for tail in _expand_one(rest) or [""])
    return out
