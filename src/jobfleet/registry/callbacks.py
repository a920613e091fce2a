"""Which process fires a job's callbacks, and which were fired: each fires once.

A callback ``(job_id, key)`` is claimed by one process (its owner string, see
:mod:`jobfleet.owner`) before it fires, and marked done with its outcome after.
Functions over a :class:`sqlite3.Connection` in a transaction the caller opened.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from jobfleet import owner
from jobfleet.registry.records import row_id

__all__ = ["claim", "done", "fired", "release"]


def claim(
    conn: sqlite3.Connection, wanted: Sequence[tuple[str, str]], claimant: str, now: float
) -> list[tuple[str, str]]:
    """Claim ``(job_id, key)`` callbacks for ``claimant``; return those won.

    Won: nobody claimed it, or its claimant died before it finished; never one
    fired already or being fired by a live process.
    """
    won: list[tuple[str, str]] = []
    for job_id, key in wanted:
        row = conn.execute(
            "SELECT owner, done_at FROM callbacks WHERE job_id = ? AND key = ?",
            (row_id(job_id), key),
        ).fetchone()
        if row is not None and (row[1] is not None or not owner.is_gone(row[0])):
            continue
        conn.execute(
            "INSERT INTO callbacks (job_id, key, owner, claimed_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (job_id, key) DO UPDATE SET owner = excluded.owner,"
            " claimed_at = excluded.claimed_at",
            (row_id(job_id), key, claimant, now),
        )
        won.append((job_id, key))
    return won


def release(conn: sqlite3.Connection, claimed: Sequence[tuple[str, str]], claimant: str) -> None:
    """Give back ``(job_id, key)`` callbacks ``claimant`` claimed and did not fire."""
    conn.executemany(
        "DELETE FROM callbacks WHERE job_id = ? AND key = ? AND owner = ? AND done_at IS NULL",
        [(row_id(job_id), key, claimant) for job_id, key in claimed],
    )


def done(conn: sqlite3.Connection, outcomes: Sequence[tuple[str, str, str]], now: float) -> None:
    """Record ``(job_id, key, outcome)`` callbacks as fired at ``now``."""
    conn.executemany(
        "UPDATE callbacks SET done_at = ?, outcome = ? WHERE job_id = ? AND key = ?",
        [(now, outcome, row_id(job_id), key) for job_id, key, outcome in outcomes],
    )


def fired(conn: sqlite3.Connection, job_id: str) -> dict[str, str | None]:
    """The callbacks of a job fired so far: key -> outcome."""
    rows = conn.execute(
        "SELECT key, outcome FROM callbacks WHERE job_id = ? AND done_at IS NOT NULL",
        (row_id(job_id),),
    ).fetchall()
    return {key: outcome for key, outcome in rows}
