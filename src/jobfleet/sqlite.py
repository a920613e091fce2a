"""Opening jobfleet's SQLite databases the same way everywhere.

Every database is in WAL mode with a busy time-out, shared by many processes.
Switching a new database to WAL needs a lock SQLite does not wait for through
its busy handler, so several processes opening the same new file at once can
get "database is locked" at once: that step is retried here until the time-out.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

__all__ = ["BUSY_TIMEOUT_S", "connect"]

#: How long any statement waits for another process's lock.
BUSY_TIMEOUT_S = 30.0


def connect(path: Path, *, synchronous: str = "FULL") -> sqlite3.Connection:
    """A connection in autocommit mode (callers BEGIN IMMEDIATE themselves), WAL journal.

    Raises:
        sqlite3.Error: the file cannot be opened, or stayed locked for
            :data:`BUSY_TIMEOUT_S`.
    """
    conn = sqlite3.connect(
        path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
    )
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        pause = 0.005
        while True:
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(pause)
                pause = min(pause * 2, 0.2)
        conn.execute(f"PRAGMA synchronous = {synchronous}")
        conn.execute("PRAGMA foreign_keys = ON")
    except BaseException:
        conn.close()
        raise
    return conn
