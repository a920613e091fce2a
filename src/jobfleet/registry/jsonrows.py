"""An array's elements as plain rows for ``--json``, without a record of each.

``status ID --json`` of an ended 100,000-element array spent most of its time making a
record, a usage and a dict of each element before encoding them. The caller formats
these rows straight to text (:func:`jobfleet.states.element_json`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

__all__ = ["element_rows"]

_ROWS = (
    "SELECT idx, state, exit_code, reason, submitted_at, started_at, ended_at, hosts,"
    " max_memory_bytes, cpu_time_s, wall_time_s FROM elements WHERE job_id = ? ORDER BY idx"
)


def element_rows(conn: sqlite3.Connection, row_id: int) -> Iterator[tuple[Any, ...]]:
    """Each element of job ``row_id`` in index order: ``(idx, state, exit_code, reason,
    submitted_at, started_at, ended_at, hosts (a JSON list's text), max_memory_bytes,
    cpu_time_s, wall_time_s)``."""
    yield from conn.execute(_ROWS, (row_id,))
