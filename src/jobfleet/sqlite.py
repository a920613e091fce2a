"""Opening jobfleet's SQLite databases the same way everywhere.

Every database is in WAL mode with a busy time-out, shared by many processes.
Switching a new database to WAL needs a lock SQLite does not wait for through
its busy handler, so several processes opening the same new file at once can
get "database is locked" at once: that step is retried here until the time-out.

:func:`describe` is the one place where SQLite's and the operating system's
errors about a database become words and a fix (disk full, locked, not
writable, damaged); the registry adds its own cases (:mod:`jobfleet.registry.problems`).
"""

from __future__ import annotations

import errno
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

__all__ = ["BUSY_TIMEOUT_S", "connect", "describe", "is_damage", "is_disk_full", "is_unwritable"]

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


_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
_UNWRITABLE_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS}


def _code(exc: BaseException) -> str:
    return str(getattr(exc, "sqlite_errorname", "")) if isinstance(exc, sqlite3.Error) else ""


def is_damage(exc: BaseException) -> bool:
    """Whether ``exc`` says the file is not a database or is damaged."""
    return _code(exc).startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT"))


def is_disk_full(exc: BaseException, path: Path) -> bool:
    """Whether ``exc`` means the file system of ``path`` has no space left (SQLite may
    only say "disk I/O error" when it cannot even size its shared-memory file)."""
    if isinstance(exc, OSError):
        return exc.errno in _FULL_ERRNOS
    code = _code(exc)
    if code == "SQLITE_FULL":
        return True
    if code.startswith("SQLITE_IOERR"):
        try:
            return os.statvfs(path.parent).f_bavail == 0
        except OSError:
            return False
    return False


def is_unwritable(exc: BaseException, path: Path) -> bool:
    """Whether ``exc`` means this process may not write ``path`` or its directory."""
    if isinstance(exc, OSError):
        return exc.errno in _UNWRITABLE_ERRNOS
    code = _code(exc)
    if code.startswith(("SQLITE_READONLY", "SQLITE_PERM")):
        return True
    if code.startswith("SQLITE_CANTOPEN"):
        return not os.access(path.parent, os.W_OK) or (
            path.exists() and not os.access(path, os.W_OK)
        )
    return False


def describe(exc: BaseException, path: Path) -> str:
    """What ``exc``, met using the database ``path``, means, and what to do: one line
    to follow "cannot <do what> <path>: "."""
    detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    if isinstance(exc, OSError) and exc.filename and str(exc.filename) != str(path):
        detail = f"{detail}: {exc.filename}"
    detail = detail or type(exc).__name__
    if is_damage(exc):
        return f"the file is damaged or is not a database ({detail})"
    if is_disk_full(exc, path):
        return (
            f"no space left on its file system ({detail}); nothing was written by this "
            "step: free some space and try again"
        )
    if _code(exc).startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return (
            f"another process kept it locked for {BUSY_TIMEOUT_S:g}s ({detail}); try again, "
            f"or find the process holding it (fuser {path})"
        )
    if is_unwritable(exc, path):
        return (
            f"{path.parent} is not writable for this user ({detail}); make it writable, "
            "or set JOBFLEET_HOME to a directory that is"
        )
    return detail
