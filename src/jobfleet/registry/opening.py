"""Opening a registry's database without ever harming it.

* An existing file is judged before SQLite writes anything to it: its header
  (:func:`~jobfleet.registry.files.db_file_problem`), then its schema version and
  tables (:func:`~jobfleet.registry.schema.check`), and only then is it switched
  to WAL or migrated. A file that is damaged, is not a registry or was written by
  a newer jobfleet is refused and left byte for byte as it was.
* A home this process cannot write to (or a full disk) still lets the registry
  be read: it is opened read-only, and writing raises the reason.
* A new database is made whole under a temporary name and then linked into
  place, so no process ever sees a half-made registry, and an empty
  ``registry.db`` is never one jobfleet made.
* The header is read only while this process has no connection to the file:
  closing any descriptor of a file drops every POSIX lock the process holds on
  it, SQLite's included. Another process then believed itself the last one,
  checkpointed and reset the write-ahead log under this process's open
  connections, which failed with "disk I/O error" (at worst, lost what they
  wrote). :class:`Opened` counts this process's connections to each file.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import threading
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from jobfleet.errors import RegistryError, RegistryUnusableError
from jobfleet.registry.files import (
    create_private_file,
    db_file_problem,
    home_problem,
    make_private_home,
)
from jobfleet.registry.problems import damaged, explain, not_a_directory
from jobfleet.registry.schema import SCHEMA_VERSION, check, migrate, new_database
from jobfleet.sqlite import connect, is_disk_full, is_unwritable

__all__ = ["NO_TOKEN_YET", "Opened", "create", "empty", "open_existing"]

#: The token of the registry that does not exist yet (each real one draws its own).
NO_TOKEN_YET = "00000000"  # noqa: S105 - a name part, not a secret

#: A file system without hard links says so with one of these.
_NO_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS}


#: (device, inode) of each database file -> this process's open connections to it.
_OPEN_HERE: dict[tuple[int, int], int] = {}
_OPEN_HERE_LOCK = threading.Lock()


def _file_key(path: Path) -> tuple[int, int] | None:
    try:
        found = path.stat()  # a stat opens no descriptor
    except OSError:
        return None
    return found.st_dev, found.st_ino


def _open_here(key: tuple[int, int] | None) -> bool:
    with _OPEN_HERE_LOCK:
        return key is not None and _OPEN_HERE.get(key, 0) > 0


@dataclass(slots=True)
class Opened:
    """An open registry database; :meth:`close` it (this process's connections to each
    file are counted: see the module's notes).

    Attributes:
        conn: the connection.
        read_only: why it can only be read (the error a write raises), else None.
    """

    conn: sqlite3.Connection
    read_only: RegistryError | None = None
    key: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.key is not None:
            with _OPEN_HERE_LOCK:
                _OPEN_HERE[self.key] = _OPEN_HERE.get(self.key, 0) + 1

    def close(self) -> None:
        """Close the connection (once)."""
        self.conn.close()
        if self.key is not None:
            with _OPEN_HERE_LOCK:
                left = _OPEN_HERE.get(self.key, 0) - 1
                if left > 0:
                    _OPEN_HERE[self.key] = left
                else:
                    _OPEN_HERE.pop(self.key, None)
            self.key = None


def open_existing(db_path: Path) -> Opened | None:
    """The registry at ``db_path`` checked, migrated if older; None if there is none.

    Raises:
        RegistryUnusableError: the home is a file; the database is damaged, is not a
            jobfleet registry, or was written by a newer jobfleet (NewerRegistryError).
        RegistryError: it cannot be opened even for reading, or an older one cannot
            be upgraded.
    """
    home = db_path.parent
    problem = home_problem(home)
    if problem:
        raise not_a_directory(home, problem)
    if not os.path.lexists(db_path):
        return None
    key = _file_key(db_path)
    if not _open_here(key):  # else it was judged when first opened here
        try:
            why = db_file_problem(db_path)
        except OSError as exc:
            raise explain(exc, db_path, "open") from exc
        if why:
            raise damaged(db_path, why)
    versions: list[int] = []

    def judge(conn: sqlite3.Connection) -> None:
        try:
            versions.append(check(conn, db_path))
        except ValueError as exc:
            raise damaged(db_path, str(exc)) from None

    try:
        opened = Opened(connect(db_path, check=judge), key=key)
    except (sqlite3.Error, OSError) as exc:
        error = explain(exc, db_path, "open")
        if isinstance(error, RegistryUnusableError) or not (
            is_unwritable(exc, db_path) or is_disk_full(exc, db_path)
        ):
            raise error from exc
        opened = Opened(_read_only(db_path, judge, error), explain(exc, db_path, "write"), key)
    if versions[-1] < SCHEMA_VERSION:
        try:
            _upgrade(opened, db_path)
        except BaseException:
            opened.close()
            raise
    return opened


def _read_only(
    db_path: Path, judge: Callable[[sqlite3.Connection], None], error: RegistryError
) -> sqlite3.Connection:
    """A read-only connection, or ``error`` (why it could not be opened for writing)."""
    try:
        return connect(db_path, check=judge, read_only=True)
    except (sqlite3.Error, OSError) as exc:
        if isinstance(explain(exc, db_path, "open"), RegistryUnusableError):
            raise explain(exc, db_path, "open") from exc
        wal = db_path.with_name(db_path.name + "-wal")
        # Without a -shm file only an immutable file can be read: safe when nobody can
        # write here (no -wal can appear) and there is no -wal to read.
        if os.access(db_path.parent, os.W_OK) or os.path.lexists(wal):
            raise error from exc
    try:
        return connect(db_path, check=judge, read_only=True, immutable=True)
    except (sqlite3.Error, OSError) as exc:
        raise error from exc


def _upgrade(opened: Opened, db_path: Path) -> None:
    """Bring a registry of an older schema up to date (in one write transaction)."""
    if opened.read_only is not None:
        raise opened.read_only
    conn = opened.conn
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            migrate(conn, db_path)
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    except (sqlite3.Error, OSError) as exc:
        raise explain(exc, db_path, "upgrade") from exc


def create(db_path: Path) -> None:
    """Make a new registry at ``db_path`` (and its home), unless one is there already.

    Raises:
        RegistryError: the home or the file cannot be made (saying why and what to do).
    """
    home = db_path.parent
    try:
        make_private_home(home)
    except OSError as exc:
        raise explain(exc, db_path, "create") from exc
    import secrets  # making a registry; opening one needs none

    new = home / f".{db_path.name}.{os.getpid()}.{secrets.token_hex(4)}.new"
    try:
        # SQLite gives its -wal and -shm files the mode of the database file.
        create_private_file(new)
        conn = connect(new)
        try:
            new_database(conn)
        finally:
            conn.close()  # the last connection: everything is in the file, no -wal left
        try:
            os.link(new, db_path)
        except FileExistsError:
            pass  # another process made one first: that one is the registry
        except OSError as exc:
            if exc.errno not in _NO_LINKS:
                raise
            if not os.path.lexists(db_path):
                new.rename(db_path)
    except (sqlite3.Error, OSError) as exc:
        raise explain(exc, db_path, "create") from exc
    finally:
        for leftover in (new, Path(f"{new}-wal"), Path(f"{new}-shm")):
            with suppress(OSError):
                leftover.unlink()


def empty() -> sqlite3.Connection:
    """An empty registry in memory: what reads see while there is no registry file."""
    conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    new_database(conn)
    # Not random: two dry runs before the first submission show the same names.
    conn.execute("UPDATE meta SET value = ? WHERE key = 'token'", (NO_TOKEN_YET,))
    return conn
