"""Opening jobfleet's SQLite databases the same way everywhere.

Every database is in WAL mode with a busy time-out, shared by many processes.
Switching a new database to WAL needs a lock SQLite does not wait for through
its busy handler, so several processes opening the same new file at once can
get "database is locked" at once: that step is retried here until the time-out.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

__all__ = ["BUSY_TIMEOUT_S", "connect"]

#: How long any statement waits for another process's lock.
BUSY_TIMEOUT_S = 30.0


def connect(
    path: Path,
    *,
    synchronous: str = "FULL",
    check: Callable[[sqlite3.Connection], None] | None = None,
    read_only: bool = False,
    immutable: bool = False,
) -> sqlite3.Connection:
    """A connection in autocommit mode (callers BEGIN IMMEDIATE themselves), WAL journal.

    Args:
        path: the database file.
        synchronous: SQLite's ``synchronous`` setting.
        check: called before anything is written (the switch to WAL writes to a
            database that is not in WAL mode yet): it raises to refuse the file.
        read_only: open without writing anything (``mode=ro``), in whatever
            journal mode the file is; writes fail with "readonly database".
        immutable: (read-only) the file cannot change while open, so no ``-shm``
            file is needed: a WAL database in a directory nobody can write to.

    Raises:
        sqlite3.Error: the file cannot be opened, or stayed locked for
            :data:`BUSY_TIMEOUT_S`.
        Exception: whatever ``check`` raises.
    """
    if read_only:
        uri = f"file:{quote(str(path.absolute()))}?mode=ro" + ("&immutable=1" if immutable else "")
        conn = sqlite3.connect(
            uri, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False, uri=True
        )
    else:
        conn = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        if check is not None:
            check(conn)
        if not read_only:
            _switch_to_wal(conn)
            conn.execute(f"PRAGMA synchronous = {synchronous}")
        conn.execute("PRAGMA foreign_keys = ON")
    except BaseException:
        conn.close()
        raise
    return conn


def _switch_to_wal(conn: sqlite3.Connection) -> None:
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    pause = 0.005
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.2)
