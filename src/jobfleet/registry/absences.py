"""The bookkeeping of the lost rule: how long, and in how many answered polls,
a scheduler has known nothing of a job or an element.

Counts live in the ``absences`` table (idx -1 for a single job); the last time
each backend's scheduler did not answer lives in ``meta`` (``outage.<backend>``).
Functions over a :class:`sqlite3.Connection` in a write transaction the caller
opened; the times are the caller's (the monitor's clock), never read here.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence

__all__ = ["forget", "note_outage", "track"]

#: The idx of a single job in the absences table.
_WHOLE_JOB = -1


def note_outage(conn: sqlite3.Connection, backend: str, at: float) -> None:
    """Record that ``backend``'s scheduler did not answer at ``at``."""
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (f"outage.{backend}", repr(at)),
    )


def track(
    conn: sqlite3.Connection,
    backend: str,
    polled: Sequence[str],
    absent: Mapping[str, Sequence[int | None]],
    *,
    at: float,
    lost_after_s: float,
    min_polls: int,
    natives: Mapping[str, str] | None,
) -> dict[str, list[int | None]]:
    """Count one answered poll; return the jobs (and indices) now lost.

    See ``Registry.track_absence`` for the rule and the arguments.
    """
    lost: dict[str, list[int | None]] = {}
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (f"outage.{backend}",)).fetchone()
    outage = float(row[0]) if row else 0.0
    if natives and absent:
        # A report about an attempt the job is no longer on says nothing of it.
        current = dict(
            conn.execute(
                "SELECT id, native_id FROM jobs WHERE id IN (SELECT value FROM json_each(?))",
                (json.dumps([int(j) for j in absent]),),
            ).fetchall()
        )
        absent = {j: ix for j, ix in absent.items() if current.get(int(j)) == natives[j]}
    wanted = {(int(j), _WHOLE_JOB if i is None else i) for j, ix in absent.items() for i in ix}
    known = {
        (job, idx): (since, polls)
        for job, idx, since, polls in conn.execute(
            "SELECT job_id, idx, since, polls FROM absences"
            " WHERE job_id IN (SELECT value FROM json_each(?))",
            (json.dumps([int(j) for j in polled]),),
        )
    }
    conn.executemany(
        "DELETE FROM absences WHERE job_id = ? AND idx = ?",
        [key for key in known if key not in wanted],
    )
    counts = []
    for key in wanted:
        since, polls = known.get(key, (at, 0))
        if since < outage:  # the scheduler was unreachable since: start again
            since, polls = at, 0
        polls += 1
        counts.append((since, polls, *key))
        if polls >= min_polls and at - since >= lost_after_s:
            job, idx = key
            lost.setdefault(str(job), []).append(None if idx == _WHOLE_JOB else idx)
    conn.executemany(
        "INSERT INTO absences (since, polls, job_id, idx) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (job_id, idx) DO UPDATE SET since = excluded.since,"
        " polls = excluded.polls",
        [c for c in counts if str(c[2]) not in lost],
    )
    # Lost is final: nothing left to count for them.
    conn.executemany(
        "DELETE FROM absences WHERE job_id = ? AND idx = ?",
        [(c[2], c[3]) for c in counts if str(c[2]) in lost],
    )
    return lost


def forget(conn: sqlite3.Connection, job_id: int) -> None:
    """Drop the counts of a job (row id) that starts a new attempt."""
    conn.execute("DELETE FROM absences WHERE job_id = ?", (job_id,))
