"""What can go wrong with a registry, said once: SQLite's and the operating system's
errors about the registry become one-line :class:`~jobfleet.errors.RegistryError`
messages here, each naming the file and the fix.

=====================================  ==========================================
condition                              error (CLI exit status)
=====================================  ==========================================
home is a file, or under one           RegistryUnusableError (2)
file damaged, empty, not a registry    RegistryUnusableError (2): nothing changed
written by a newer jobfleet            NewerRegistryError (2): nothing changed
disk full                              RegistryError (1): the transaction undone
locked longer than the busy time-out   RegistryError (1)
home or file not writable              RegistryError (1); reads still work
=====================================  ==========================================
"""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path

from jobfleet import sqlite
from jobfleet.errors import RegistryError, RegistryUnusableError

__all__ = ["damaged", "explain", "is_disk_full", "is_unwritable", "not_a_directory"]

_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
_UNWRITABLE_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS}


def _sqlite_code(exc: BaseException) -> str:
    return str(getattr(exc, "sqlite_errorname", "")) if isinstance(exc, sqlite3.Error) else ""


def _detail(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def is_disk_full(exc: BaseException, home: Path) -> bool:
    """Whether ``exc`` means the registry's file system has no space left (SQLite may
    only say "disk I/O error" when it cannot even make its shared-memory file)."""
    if isinstance(exc, OSError):
        return exc.errno in _FULL_ERRNOS
    code = _sqlite_code(exc)
    if code == "SQLITE_FULL":
        return True
    if code.startswith("SQLITE_IOERR"):
        try:
            return os.statvfs(home).f_bavail == 0
        except OSError:
            return False
    return False


def is_unwritable(exc: BaseException, db_path: Path) -> bool:
    """Whether ``exc`` means this process may not write the registry's file or home."""
    if isinstance(exc, OSError):
        return exc.errno in _UNWRITABLE_ERRNOS
    code = _sqlite_code(exc)
    if code.startswith(("SQLITE_READONLY", "SQLITE_PERM")):
        return True
    if code.startswith("SQLITE_CANTOPEN"):
        home = db_path.parent
        return not os.access(home, os.W_OK) or (
            db_path.exists() and not os.access(db_path, os.W_OK)
        )
    return False


def damaged(db_path: Path, why: str) -> RegistryUnusableError:
    """The file is not a jobfleet registry (any more): say so, and how to start afresh."""
    return RegistryUnusableError(
        f"{db_path} is damaged or is not a jobfleet registry ({why}); it was left as it is: "
        f"move it aside (e.g. rename it {db_path.name}.damaged) to start an empty registry "
        "there; the jobs' directories in jobs/ beside it stay"
    )


def not_a_directory(home: Path, detail: str) -> RegistryUnusableError:
    """The home (or a directory it should be in) is a file."""
    return RegistryUnusableError(
        f"the jobfleet home {home} cannot be a directory ({detail}): set JOBFLEET_HOME "
        "to a directory (it is created if missing), or move the file in the way"
    )


def explain(exc: BaseException, db_path: Path, action: str) -> RegistryError:
    """``exc``, met while trying to ``action`` (open, read, write, create) the registry
    at ``db_path``, as the :class:`RegistryError` to raise from it."""
    if isinstance(exc, RegistryError):
        return exc
    home = db_path.parent
    code = _sqlite_code(exc)
    detail = _detail(exc)
    where = f"cannot {action} the job registry {db_path}"
    if code.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")):
        return damaged(db_path, detail)
    if isinstance(exc, OSError) and exc.errno == errno.ENOTDIR:
        return not_a_directory(home, detail)
    if is_disk_full(exc, home):
        return RegistryError(
            f"{where}: no space left on its file system ({detail}); nothing was "
            "recorded by this step: free some space and try again"
        )
    if code.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return RegistryError(
            f"{where}: another process kept it locked for {sqlite.BUSY_TIMEOUT_S:g}s "
            f"({detail}); try again, or find the process holding it (fuser {db_path})"
        )
    if is_unwritable(exc, db_path):
        return RegistryError(
            f"{where}: {home} is not writable for this user ({detail}); make it "
            "writable, or set JOBFLEET_HOME to a directory that is"
        )
    return RegistryError(f"{where}: {detail}")
