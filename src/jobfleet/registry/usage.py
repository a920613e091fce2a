"""What jobs and array elements used, as registry rows (schema 4's usage columns).

Functions over a :class:`sqlite3.Connection` in a transaction the caller opened.
A report never erases a known value with None (:meth:`jobfleet.usage.Usage.merged`),
and never changes a state or an exit code: usage is not an event.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from jobfleet.usage import NO_USAGE, USAGE_KEYS, Usage

__all__ = ["COLUMNS", "LIST", "clear_job", "from_row", "store_elements", "store_job", "to_row"]

#: The usage columns of ``jobs`` and ``elements``: the keys of --json, in :class:`Usage`'s order.
COLUMNS = USAGE_KEYS
# Spelled out, so that no SQL is built at run time (a test checks them against COLUMNS).
LIST = "submitted_at, started_at, ended_at, hosts, max_memory_bytes, cpu_time_s, wall_time_s"
_JOB = (
    "SELECT submitted_at, started_at, ended_at, hosts, max_memory_bytes, cpu_time_s,"
    " wall_time_s FROM jobs WHERE id = ?"
)
_ELEMENT = (
    "SELECT submitted_at, started_at, ended_at, hosts, max_memory_bytes, cpu_time_s,"
    " wall_time_s FROM elements WHERE job_id = ? AND idx = ?"
)
_SET_JOB = (
    "UPDATE jobs SET submitted_at = ?, started_at = ?, ended_at = ?, hosts = ?,"
    " max_memory_bytes = ?, cpu_time_s = ?, wall_time_s = ? WHERE id = ?"
)
_SET_ELEMENT = (
    "UPDATE elements SET submitted_at = ?, started_at = ?, ended_at = ?, hosts = ?,"
    " max_memory_bytes = ?, cpu_time_s = ?, wall_time_s = ? WHERE job_id = ? AND idx = ?"
)


def from_row(values: Sequence[Any]) -> Usage:
    """The usage stored in the seven :data:`COLUMNS` values (cheap when all are NULL,
    as they are for most rows)."""
    if values.count(None) == len(COLUMNS):  # in C: this runs for every element read
        return NO_USAGE
    submitted, started, ended, hosts, memory, cpu, wall = values
    return Usage(
        submitted,
        started,
        ended,
        _hosts(hosts) if hosts is not None else None,
        memory,
        cpu,
        wall,
    )


@functools.lru_cache(maxsize=1024)
def _hosts(text: str) -> tuple[str, ...]:
    """The hosts stored as ``text`` (a JSON list): an array's elements share a few."""
    return tuple(json.loads(text))


def to_row(usage: Usage) -> tuple[Any, ...]:
    """The seven column values of ``usage``."""
    hosts = json.dumps(list(usage.hosts)) if usage.hosts is not None else None
    return (
        usage.submitted_at,
        usage.started_at,
        usage.ended_at,
        hosts,
        usage.max_memory_bytes,
        usage.cpu_time_s,
        usage.wall_time_s,
    )


def store_job(conn: sqlite3.Connection, row_id: int, given: Usage) -> bool:
    """Merge ``given`` into the job's usage; True when that changed anything."""
    row = conn.execute(_JOB, (row_id,)).fetchone()
    if row is None:
        return False
    old = from_row(row)
    new = old.merged(given)
    if new == old:
        return False
    conn.execute(_SET_JOB, (*to_row(new), row_id))
    return True


def store_elements(conn: sqlite3.Connection, row_id: int, given: Mapping[int, Usage]) -> list[int]:
    """Merge each element's usage; the indices whose usage that changed (unknown
    indices are ignored: the state update already warned about them)."""
    changed = []
    for idx, usage in given.items():
        row = conn.execute(_ELEMENT, (row_id, idx)).fetchone()
        if row is None:
            continue
        old = from_row(row)
        new = old.merged(usage)
        if new != old:
            changed.append((*to_row(new), row_id, idx))
    conn.executemany(_SET_ELEMENT, changed)
    return [row[-1] for row in changed]


def clear_job(conn: sqlite3.Connection, row_id: int) -> None:
    """Forget a job's usage (a new attempt starts)."""
    conn.execute(_SET_JOB, (*to_row(NO_USAGE), row_id))
