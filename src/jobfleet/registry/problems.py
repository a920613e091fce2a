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

The words for the last three are :func:`jobfleet.sqlite.describe`'s, shared with
the local backend's queue.
"""

from __future__ import annotations

import errno
from pathlib import Path

from jobfleet import sqlite
from jobfleet.errors import RegistryError, RegistryUnusableError

__all__ = ["damaged", "explain", "not_a_directory"]


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
    if sqlite.is_damage(exc):
        return damaged(db_path, str(exc))
    if isinstance(exc, OSError) and exc.errno == errno.ENOTDIR:
        return not_a_directory(db_path.parent, exc.strerror or str(exc))
    return RegistryError(
        f"cannot {action} the job registry {db_path}: {sqlite.describe(exc, db_path)}"
    )
